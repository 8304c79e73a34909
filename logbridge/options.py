"""Handler options: defaults, environment fallbacks and validation, in one place.

Every option is a keyword argument of ``AnalyticsHandler`` (and so a key of a
``dictConfig`` handler entry or of a ``fileConfig`` ``kwargs=`` line). Values are
checked here, when the handler is built, so a configuration mistake fails at start-up
with a message that names the option, never later inside a logging call.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["DESTINATIONS", "Options"]

#: The per-message limit of the Segment-compatible APIs: the smallest useful byte bound.
MAX_MESSAGE_SIZE = 32 * 1024

#: Endpoints of the Segment-compatible services, from their SDKs' documentation.
DESTINATIONS: dict[str, str] = {
    "segment": "https://api.segment.io/v1/batch",
    "dreamdata": "https://api.dreamdata.cloud/v1/batch",
    "rudderstack": "{data_plane_url}/v1/batch",
}

DEFAULT_FLUSH_AT = 100
DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_MAX_QUEUE_SIZE = 100_000
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 10
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_RETRY_BUDGET = 600.0
DEFAULT_BLOCK_TIMEOUT = 1.0
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}

Callback = Callable[..., object]


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated handler options. Build with :meth:`from_kwargs`."""

    endpoint: str | None
    write_key: str | None = dataclasses.field(repr=False)
    flush_at: int = DEFAULT_FLUSH_AT
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    gzip: bool = True
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_error: Callback | None = None
    on_success: Callback | None = None
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    disabled: bool = False
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    retry_budget: float = DEFAULT_RETRY_BUDGET
    block: bool = False
    block_timeout: float = DEFAULT_BLOCK_TIMEOUT
    sync: bool = False
    spool: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    dead_letter: str | None = None
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    session: Any = None

    def __repr__(self) -> str:
        key = "None" if self.write_key is None else "'***'"
        return (
            f"Options(endpoint={self.endpoint!r}, write_key={key}, flush_at={self.flush_at}, "
            f"flush_interval={self.flush_interval}, max_queue_size={self.max_queue_size}, "
            f"gzip={self.gzip}, timeout={self.timeout}, max_retries={self.max_retries}, "
            f"shutdown_timeout={self.shutdown_timeout}, disabled={self.disabled}, "
            f"max_queue_bytes={self.max_queue_bytes}, retry_budget={self.retry_budget}, "
            f"block={self.block}, sync={self.sync}, spool={self.spool!r}, "
            f"dead_letter={self.dead_letter!r}, verify={self.verify!r})"
        )

    @classmethod
    def from_kwargs(
        cls,
        *,
        write_key: str | None = None,
        destination: str | None = None,
        data_plane_url: str | None = None,
        endpoint: str | None = None,
        flush_at: int | str = DEFAULT_FLUSH_AT,
        flush_interval: float | str = DEFAULT_FLUSH_INTERVAL,
        max_queue_size: int | str = DEFAULT_MAX_QUEUE_SIZE,
        gzip: bool | str = True,
        timeout: float | str = DEFAULT_TIMEOUT,
        max_retries: int | str = DEFAULT_MAX_RETRIES,
        context: Mapping[str, Any] | None = None,
        on_error: Callback | str | None = None,
        on_success: Callback | str | None = None,
        shutdown_timeout: float | str = DEFAULT_SHUTDOWN_TIMEOUT,
        disabled: bool | str | None = None,
        max_queue_bytes: int | str = DEFAULT_MAX_QUEUE_BYTES,
        retry_budget: float | str = DEFAULT_RETRY_BUDGET,
        block: bool | str = False,
        block_timeout: float | str = DEFAULT_BLOCK_TIMEOUT,
        sync: bool | str = False,
        spool: str | os.PathLike[str] | None = None,
        spool_max_bytes: int | str = DEFAULT_SPOOL_MAX_BYTES,
        dead_letter: str | os.PathLike[str] | None = None,
        verify: bool | str = True,
        proxies: Mapping[str, str] | None = None,
        session: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> Options:
        """Validate keyword options, filling gaps from the ``LOGBRIDGE_*`` environment."""
        env = os.environ if environ is None else environ
        disabled_flag = (
            _boolean("disabled", env.get("LOGBRIDGE_DISABLED", ""))
            if disabled is None
            else _boolean("disabled", disabled)
        )
        write_key = _optional_str("write_key", write_key) or env.get("LOGBRIDGE_WRITE_KEY") or None
        given_endpoint = _optional_str("endpoint", endpoint)
        given_destination = _optional_str("destination", destination)
        if given_endpoint is None and given_destination is None:
            given_endpoint = env.get("LOGBRIDGE_ENDPOINT") or None
            given_destination = env.get("LOGBRIDGE_DESTINATION") or None
        url = _endpoint(
            endpoint=given_endpoint,
            destination=given_destination or "segment",
            data_plane_url=_optional_str("data_plane_url", data_plane_url)
            or env.get("LOGBRIDGE_DATA_PLANE_URL")
            or None,
        )
        if not disabled_flag and write_key is None and not is_loopback(url):
            raise ConfigurationError(
                "write_key is required to send to "
                f"{url}: pass write_key=... or set LOGBRIDGE_WRITE_KEY "
                "(or disabled=True / LOGBRIDGE_DISABLED=1 to send nothing)"
            )
        options = cls(
            endpoint=url,
            write_key=write_key,
            flush_at=_integer("flush_at", flush_at, minimum=1),
            flush_interval=_number("flush_interval", flush_interval, positive=True),
            max_queue_size=_integer("max_queue_size", max_queue_size, minimum=1),
            gzip=_boolean("gzip", gzip),
            timeout=_number("timeout", timeout, positive=True),
            max_retries=_integer("max_retries", max_retries, minimum=0),
            context=_plain_mapping("context", context),
            on_error=_callback("on_error", on_error),
            on_success=_callback("on_success", on_success),
            shutdown_timeout=_number("shutdown_timeout", shutdown_timeout, positive=False),
            disabled=disabled_flag,
            max_queue_bytes=_integer("max_queue_bytes", max_queue_bytes, minimum=MAX_MESSAGE_SIZE),
            retry_budget=_number("retry_budget", retry_budget, positive=True),
            block=_boolean("block", block),
            block_timeout=_number("block_timeout", block_timeout, positive=False),
            sync=_boolean("sync", sync),
            spool=_path("spool", spool),
            spool_max_bytes=_integer("spool_max_bytes", spool_max_bytes, minimum=MAX_MESSAGE_SIZE),
            dead_letter=_path("dead_letter", dead_letter),
            verify=_verify(verify),
            proxies=_proxies(proxies),
            session=_session(session),
        )
        return options


def _path(option: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"{option} must be a file path, got {type(value).__name__}")
    path = os.fspath(value)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"{option}: the folder {directory!r} does not exist")
    return str(path)


def _verify(value: object) -> bool | str:
    if isinstance(value, str) and value.strip().lower() not in _TRUE | _FALSE:
        if not os.path.exists(value):
            raise ConfigurationError(f"verify: no CA bundle at {value!r}")
        return value
    return _boolean("verify", value)


def _proxies(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError("proxies must map URL schemes to proxy URLs, like requests")
    return {str(k): str(v) for k, v in plain(value).items()}


def _session(value: object) -> Any:
    if value is None:
        return None
    if not callable(getattr(value, "post", None)):
        raise ConfigurationError("session must be a requests.Session (or have its post method)")
    return value


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the local collector)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _endpoint(*, endpoint: str | None, destination: str, data_plane_url: str | None) -> str:
    if endpoint is not None:
        return _checked_url("endpoint", endpoint)
    if "://" in destination:
        return _checked_url("destination", destination)
    preset = DESTINATIONS.get(destination.lower())
    if preset is None:
        names = ", ".join(sorted(DESTINATIONS))
        raise ConfigurationError(
            f"unknown destination {destination!r}: use one of {names}, or a full URL"
        )
    if "{data_plane_url}" in preset:
        if not data_plane_url:
            raise ConfigurationError(
                f"destination {destination!r} needs data_plane_url=... "
                "(or LOGBRIDGE_DATA_PLANE_URL), the data plane URL from its dashboard"
            )
        base = _checked_url("data_plane_url", data_plane_url).rstrip("/")
        if base.endswith("/v1/batch"):
            return base
        return preset.format(data_plane_url=base)
    return preset


def _checked_url(option: str, value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise ConfigurationError(f"{option} must be an http(s) URL, got {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{option} must be an http(s) URL, got {value!r}")
    if parts.path in ("", "/"):
        return value.rstrip("/") + "/v1/batch"
    return value


def _optional_str(option: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{option} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _boolean(option: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigurationError(f"{option} must be true or false, got {value!r}")


def _integer(option: str, value: object, *, minimum: int) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)  # type: ignore[call-overload]
        assert isinstance(number, int)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{option} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigurationError(f"{option} must be at least {minimum}, got {number}")
    return number


def _number(option: str, value: object, *, positive: bool) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"{option} must be a number of seconds, got {value!r}") from None
    if math.isnan(number) or math.isinf(number) or number < 0 or (positive and number == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ConfigurationError(f"{option} must be {bound} seconds, got {value!r}")
    return number


def _plain_mapping(option: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{option} must be a mapping, got {type(value).__name__}")
    copied: dict[str, Any] = plain(value)
    return copied


def _callback(option: str, value: object) -> Callback | None:
    """Accept a callable, or a dotted path (``pkg.module.function``) for fileConfig."""
    if value is None:
        return None
    if isinstance(value, str):
        module_name, _, attribute = value.replace(":", ".").rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(f"{option}: cannot import {value!r}: {exc}") from None
    if not callable(value):
        raise ConfigurationError(f"{option} must be callable, got {type(value).__name__}")
    return value
