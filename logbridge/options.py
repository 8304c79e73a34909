"""Handler options: defaults, environment fallbacks and validation, in one place.

Every option is a keyword argument of ``AnalyticsHandler`` (and so a key of a
``dictConfig`` handler entry or of a ``fileConfig`` ``kwargs=`` line). Each is declared
once, as a field of :class:`Options` with its default; :meth:`Options.from_kwargs`
checks the values when the handler is built, so a configuration mistake fails at
start-up with a message that names the option, never later inside a logging call.
``Options`` validates and builds; the components get what they need from it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .destinations.registry import Preset, is_destination, presets
from .errors import ConfigurationError
from .urls import is_loopback

__all__ = ["OPTION_NAMES", "Options", "is_loopback", "plain"]

#: The smallest useful byte bound for the outbox and the spool: one large message.
MIN_BUFFER_BYTES = 32 * 1024

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

Callback = Callable[..., object]


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated handler options. Build with :meth:`from_kwargs`.

    ``endpoint`` is the effective URL of a network destination (``None`` for a local
    one or an instance); ``sources`` tells, for each option, where its value came from:
    ``"config"``, ``"environment"`` or ``"default"``.
    """

    destination: Any = "segment"
    endpoint: str | None = None
    write_key: str | None = dataclasses.field(default=None, repr=False)
    data_plane_url: str | None = None
    flush_at: int = 100
    flush_interval: float = 5.0
    max_queue_size: int = 100_000
    max_queue_bytes: int = 64 * 1024 * 1024
    gzip: bool = True
    timeout: float = 10.0
    max_retries: int = 10
    retry_budget: float = 600.0
    shutdown_timeout: float = 5.0
    #: At 50 ms a request, 4 kept a burst's delivery ahead of what the listener produces
    #: on 2 cores (benchmarks/PROFILE.md: 1: 6,900 ev/s, 2: 15,500, 4: 27,800, 8: 22,300).
    max_in_flight: int = 4
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_error: Callback | None = None
    on_success: Callback | None = None
    disabled: bool = False
    block: bool = False
    block_timeout: float = 1.0
    sync: bool = False
    spool: str | None = None
    spool_max_bytes: int = 256 * 1024 * 1024
    dead_letter: str | None = None
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    session: Any = None
    amplitude_api: str = "http"
    amplitude_group_type: str = "company"
    amplitude_usermap: bool = False
    min_id_length: int | None = None
    oauth_client_id: str | None = None
    oauth_client_key: str | None = dataclasses.field(default=None, repr=False)
    oauth_key_id: str | None = None
    oauth_auth_server: str = "https://oauth2.segment.io"
    oauth_scope: str = "tracking_api:write"
    jsonl_path: str | None = None
    sources: Mapping[str, str] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )

    def __repr__(self) -> str:
        shown = []
        for field in dataclasses.fields(self):
            if field.name in ("sources", "session", "context"):
                continue
            value = getattr(self, field.name)
            if field.name in _SECRETS:
                shown.append(f"{field.name}={'None' if value is None else repr('***')}")
            elif not callable(value) or isinstance(value, str):
                shown.append(f"{field.name}={value!r}")
        return f"Options({', '.join(shown)})"

    @property
    def preset(self) -> Preset | None:
        """The preset of a named destination; None for an instance or a user's class."""
        return presets().get(self.destination) if isinstance(self.destination, str) else None

    @classmethod
    def from_kwargs(cls, *, environ: Mapping[str, str] | None = None, **given: Any) -> Options:
        """Validate keyword options, filling gaps from the ``LOGBRIDGE_*`` environment."""
        unknown = sorted(set(given) - OPTION_NAMES)
        if unknown:
            raise ConfigurationError(unknown_options_message(unknown))
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, value in given.items():
            if value is not None and value != "":
                values[name] = value
                sources[name] = "config"
        # The endpoint and the destination come from the environment only as a pair's
        # fallback: an explicit destination is not overridden by LOGBRIDGE_ENDPOINT.
        pair_given = "endpoint" in values or "destination" in values
        for name, variable in _ENVIRONMENT.items():
            if name in values or (pair_given and name in ("endpoint", "destination")):
                continue
            if env.get(variable):
                values[name] = env[variable]
                sources[name] = "environment"
        checked = {name: _VALIDATORS[name](name, values[name]) for name in values}
        checked = {name: value for name, value in checked.items() if value is not None}
        for name in OPTION_NAMES:
            sources.setdefault(name, "default")
        checked.update(_destination(checked))
        options = cls(**checked, sources=sources)
        _require_key(options)
        return options


def unknown_options_message(unknown: list[str]) -> str:
    """Name the unknown options, with the closest known one for each."""
    import difflib  # only on this error path: applications don't pay for it

    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(OPTION_NAMES), n=1)
        hints.append(f"{name!r} (did you mean {close[0]}?)" if close else repr(name))
    return (
        f"unknown option(s) {', '.join(hints)} for AnalyticsHandler; "
        f"the options are {sorted(OPTION_NAMES)}"
    )


def _destination(values: Mapping[str, Any]) -> dict[str, Any]:
    """The destination and the effective endpoint, from the three options that name them."""
    chosen = values.get("destination", "segment")
    endpoint = values.get("endpoint")
    if not isinstance(chosen, str):
        if not is_destination(chosen):
            raise ConfigurationError(
                f"destination must be a name, a URL, a dotted path or a Destination, "
                f"got {type(chosen).__name__}"
            )
        return {"destination": chosen, "endpoint": endpoint and _url("endpoint", endpoint, "")}
    if "://" in chosen:  # a Segment-compatible endpoint given as the destination
        chosen, endpoint = "segment", endpoint or _url("destination", chosen, "/v1/batch")
    name = chosen.lower()
    preset = presets().get(name)
    if preset is None:
        if "." in chosen or ":" in chosen:  # a user's class, imported when the handler starts
            return {"destination": chosen, "endpoint": endpoint}
        names = ", ".join(sorted(presets()))
        raise ConfigurationError(
            f"unknown destination {chosen!r}: use one of {names}, a URL, or the dotted path "
            "of a Destination class"
        )
    if endpoint is not None:
        return {"destination": name, "endpoint": _url("endpoint", endpoint, preset.default_path)}
    url = preset.url
    if url is not None and "{data_plane_url}" in url:
        base = values.get("data_plane_url")
        if not base:
            raise ConfigurationError(
                f"destination {name!r} needs data_plane_url=... (or LOGBRIDGE_DATA_PLANE_URL), "
                "the data plane URL from its dashboard"
            )
        base = _url("data_plane_url", base, "").rstrip("/")
        suffix = url.replace("{data_plane_url}", "")
        url = base if base.endswith(suffix) else base + suffix
    return {"destination": name, "endpoint": url}


def _require_key(options: Options) -> None:
    preset = options.preset
    if options.disabled or preset is None or not preset.needs_key:
        return
    if options.write_key:
        return
    url = options.endpoint or ""
    if is_loopback(url):
        return
    also = " (with OAuth too: it travels in the body)" if options.oauth_client_id else ""
    raise ConfigurationError(
        f"write_key is required to send to {url}{also}: pass write_key=... or set "
        "LOGBRIDGE_WRITE_KEY (or disabled=True / LOGBRIDGE_DISABLED=1 to send nothing)"
    )


# Validators: (option name, given value) -> checked value ---------------------------


def _url(option: str, value: object, default_path: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{option} must be an http(s) URL, got {type(value).__name__}")
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise ConfigurationError(f"{option} must be an http(s) URL, got {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{option} must be an http(s) URL, got {value!r}")
    if parts.path in ("", "/") and default_path:
        return value.rstrip("/") + default_path
    return value


def _text(option: str, value: object) -> str | None:
    if not isinstance(value, str):
        raise ConfigurationError(f"{option} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _destination_value(option: str, value: object) -> object:
    return value if not isinstance(value, str) else (_text(option, value) or "segment")


def _boolean(option: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigurationError(f"{option} must be true or false, got {value!r}")


def _integer(minimum: int) -> Callable[[str, object], int]:
    def check(option: str, value: object) -> int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number: int = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ConfigurationError(f"{option} must be a whole number, got {value!r}") from None
        if number < minimum:
            raise ConfigurationError(f"{option} must be at least {minimum}, got {number}")
        return number

    return check


def _seconds(positive: bool) -> Callable[[str, object], float]:
    def check(option: str, value: object) -> float:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"{option} must be a number of seconds, got {value!r}"
            ) from None
        if math.isnan(number) or math.isinf(number) or number < 0 or (positive and number == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise ConfigurationError(f"{option} must be {bound} seconds, got {value!r}")
        return number

    return check


def _choice(*allowed: str) -> Callable[[str, object], str]:
    def check(option: str, value: object) -> str:
        text = _text(option, value)
        if text is None or text.lower() not in allowed:
            raise ConfigurationError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
        return text.lower()

    return check


def _path(option: str, value: object) -> str | None:
    if value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"{option} must be a file path, got {type(value).__name__}")
    path = os.fspath(value)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"{option}: the folder {directory!r} does not exist")
    return str(path)


def _verify(option: str, value: object) -> bool | str:
    if isinstance(value, str) and value.strip().lower() not in _TRUE | _FALSE:
        if not os.path.exists(value):
            raise ConfigurationError(f"{option}: no CA bundle at {value!r}")
        return value
    return _boolean(option, value)


def _proxies(option: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(f"{option} must map URL schemes to proxy URLs, like requests")
    return {str(k): str(v) for k, v in plain(value).items()}


def _session(option: str, value: object) -> Any:
    if not callable(getattr(value, "post", None)):
        raise ConfigurationError(f"{option} must be a requests.Session (or have its post method)")
    return value


def _mapping(option: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{option} must be a mapping, got {type(value).__name__}")
    copied: dict[str, Any] = plain(value)
    return copied


def _callback(option: str, value: object) -> Callback:
    """Accept a callable, or a dotted path (``pkg.module.function``) for fileConfig."""
    if isinstance(value, str):
        module_name, _, attribute = value.replace(":", ".").rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(f"{option}: cannot import {value!r}: {exc}") from None
    if not callable(value):
        raise ConfigurationError(f"{option} must be callable, got {type(value).__name__}")
    return value


def plain(value: Any) -> Any:
    """Copy ``value`` into plain dicts and lists.

    dictConfig hands options over as ``ConvertingDict``/``ConvertingList``, which
    resolve ``ext://`` and ``cfg://`` only when an item is looked up by key: reading
    each item by key forces the conversion that iterating ``.items()`` would skip.
    """
    if isinstance(value, Mapping):
        return {key: plain(value[key]) for key in value}
    if isinstance(value, (list, tuple)):
        return [plain(value[index]) for index in range(len(value))]
    return value


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "destination": _destination_value,
    "endpoint": _text,  # completed with the destination's path in _destination()
    "write_key": _text,
    "data_plane_url": _text,
    "flush_at": _integer(1),
    "flush_interval": _seconds(positive=True),
    "max_queue_size": _integer(1),
    "max_queue_bytes": _integer(MIN_BUFFER_BYTES),
    "gzip": _boolean,
    "timeout": _seconds(positive=True),
    "max_retries": _integer(0),
    "retry_budget": _seconds(positive=True),
    "shutdown_timeout": _seconds(positive=False),
    "max_in_flight": _integer(1),
    "context": _mapping,
    "on_error": _callback,
    "on_success": _callback,
    "disabled": _boolean,
    "block": _boolean,
    "block_timeout": _seconds(positive=False),
    "sync": _boolean,
    "spool": _path,
    "spool_max_bytes": _integer(MIN_BUFFER_BYTES),
    "dead_letter": _path,
    "verify": _verify,
    "proxies": _proxies,
    "session": _session,
    "amplitude_api": _choice("http", "batch"),
    "amplitude_group_type": _text,
    "amplitude_usermap": _boolean,
    "min_id_length": _integer(1),
    "oauth_client_id": _text,
    "oauth_client_key": _text,
    "oauth_key_id": _text,
    "oauth_auth_server": _text,
    "oauth_scope": _text,
    "jsonl_path": _path,
}

#: Every option a handler takes, by name.
OPTION_NAMES = frozenset(_VALIDATORS)

#: The options the ``LOGBRIDGE_*`` environment can set.
_ENVIRONMENT = {
    "write_key": "LOGBRIDGE_WRITE_KEY",
    "endpoint": "LOGBRIDGE_ENDPOINT",
    "destination": "LOGBRIDGE_DESTINATION",
    "data_plane_url": "LOGBRIDGE_DATA_PLANE_URL",
    "disabled": "LOGBRIDGE_DISABLED",
    "max_in_flight": "LOGBRIDGE_MAX_IN_FLIGHT",
}

_SECRETS = frozenset({"write_key", "oauth_client_key"})

assert {f.name for f in dataclasses.fields(Options)} - {"sources"} == OPTION_NAMES
