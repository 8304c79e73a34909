"""A logging config loaded for inspection: every AnalyticsHandler in it stands in, inert.

``check`` and ``--config`` must read an application's logging config exactly as the
stdlib does (fileConfig, dictConfig, ``cfg://`` and ``ext://`` included) without
starting a thread, opening a spool or sending anything. While the config loads, every
construction of :class:`~logbridge.AnalyticsHandler` (or of a subclass) yields a
:class:`HandlerProbe` instead: a plain ``logging.Handler`` that keeps the options it
was given and does nothing else.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib
import json
import logging
import logging.config
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._cli_common import CommandError
from .handler import AnalyticsHandler, _dropped_class_options
from .listener import AnalyticsListener
from .options import plain

__all__ = ["HandlerProbe", "ListenerProbe", "LoadedConfig", "Probe", "load_config", "probing"]

_MODULE_ATTRIBUTE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class HandlerProbe(logging.Handler):
    """Stands in for an AnalyticsHandler while a config loads: keeps its options, sends nothing."""

    def __init__(self, handler_class: type, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.handler_class = handler_class
        self.given: dict[str, Any] = {
            key: plain(kwargs[key]) for key in kwargs
            if key not in ("queue", "handlers", "respect_handler_level", "listener")
        }
        #: Options this Python's dictConfig dropped (3.12.0-3.12.3, a 'class' entry).
        self.dropped = [] if self.given else _dropped_class_options()

    def __repr__(self) -> str:
        return f"<HandlerProbe {self.name!r} for {self.class_path}>"

    @property
    def class_path(self) -> str:
        """The dotted name of the class the config asked for."""
        cls = self.handler_class
        module = "logbridge" if cls is AnalyticsHandler else cls.__module__
        return f"{module}.{cls.__qualname__}"

    def emit(self, record: logging.LogRecord) -> None:
        """Nothing: a probe never sends."""

    def close(self) -> None:
        """Closed by a later configuration (which replaced it): no longer reported."""
        self.closed = True
        super().close()

    closed = False


class ListenerProbe:
    """Stands in for a standalone AnalyticsListener (the stdlib QueueHandler form).

    dictConfig builds that listener as ``AnalyticsListener(queue, *handlers)``: it gets
    no options but the ``LOGBRIDGE_*`` environment, and would start at once.
    """

    handler_class = AnalyticsListener
    class_path = "logbridge.AnalyticsListener"
    def __init__(self, queue: Any, *handlers: logging.Handler, **kwargs: Any) -> None:
        self.dropped: list[str] = []
        self.queue = queue
        self.handlers = handlers
        self.given: dict[str, Any] = {}
        self.name: str | None = None  # the QueueHandler's, once the config is loaded
        self.level = logging.NOTSET
        self.closed = False

    def start(self) -> None:
        """Nothing: a probe never starts."""

    def stop(self) -> None:
        """Nothing to stop."""


Probe = HandlerProbe | ListenerProbe


@contextlib.contextmanager
def probing() -> Iterator[list[Probe]]:
    """While inside, building an AnalyticsHandler (or subclass) gives a HandlerProbe,
    and building a standalone AnalyticsListener gives a ListenerProbe.

    Yields the list of the probes made, in order.
    """
    made: list[Probe] = []

    def handler_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # Not an instance of ``cls``, so Python does not call ``cls.__init__`` on it.
        made.append(HandlerProbe(cls, *args, **kwargs))
        return made[-1]

    def listener_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("options") is not None:  # a handler's own listener: not probed
            return object.__new__(cls)
        made.append(ListenerProbe(*args, **kwargs))
        return made[-1]

    with _replaced_new(AnalyticsHandler, handler_new), \
            _replaced_new(AnalyticsListener, listener_new):
        yield made


@contextlib.contextmanager
def _replaced_new(cls: type, new: Callable[..., Any]) -> Iterator[None]:
    had_own = "__new__" in vars(cls)
    previous = vars(cls).get("__new__")
    setattr(cls, "__new__", new)  # noqa: B010  (mypy refuses a plain assignment)
    try:
        yield
    finally:
        if had_own:
            setattr(cls, "__new__", previous)  # noqa: B010
        else:
            delattr(cls, "__new__")


class LoadedConfig:
    """What a config set up: its kind, the probes and the loggers it configured."""

    def __init__(self, kind: str, probes: list[Probe], loggers: list[logging.Logger]):
        self.kind = kind
        self.probes = probes
        self.loggers = loggers

    def attached(self, probe: Probe) -> list[logging.Logger]:
        """The loggers ``probe`` is a handler of (or the listener of one of its handlers)."""
        return [
            logger for logger in all_loggers()
            if any(h is probe or getattr(h, "listener", None) is probe for h in logger.handlers)
        ]

    def choose(self, name: str | None, source: str) -> Probe:
        """The probe named ``name`` (or the only one); CommandError otherwise."""
        names = [probe.name or "?" for probe in self.probes]
        if name is not None:
            for probe in self.probes:
                if probe.name == name:
                    return probe
            raise CommandError(f"{source} has no AnalyticsHandler {name!r} (it has {names})")
        if not self.probes:
            raise CommandError(f"{source} configures no AnalyticsHandler")
        if len(self.probes) > 1:
            raise CommandError(f"{source} has {len(self.probes)} AnalyticsHandlers {names}: "
                               "pick one with --handler NAME")
        return self.probes[0]


def load_config(source: str, *, defaults: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load the logging config ``source`` with every AnalyticsHandler probed.

    ``source`` is an ``.ini`` (fileConfig, with ``defaults``), a ``.json`` or ``.yaml``
    dictConfig, or ``module:ATTRIBUTE`` naming a dict. Raises CommandError.
    """
    before = {id(logger): _state(logger) for logger in all_loggers()}
    with probing() as probes:
        kind = _configure(source, defaults or {})
    loggers = [
        logger for logger in all_loggers()
        if before.get(id(logger)) != _state(logger) and _is_configured(logger)
    ]
    for probe in probes:
        if isinstance(probe, ListenerProbe):
            _name_listener(probe)
    return LoadedConfig(kind, [probe for probe in probes if not probe.closed], loggers)


def _name_listener(probe: ListenerProbe) -> None:
    """Give a listener probe the name and level of the QueueHandler it belongs to."""
    live = list(logging._handlers.values())  # type: ignore[attr-defined]
    for handler in live + [h for logger in all_loggers() for h in logger.handlers]:
        if getattr(handler, "listener", None) is probe:
            probe.name, probe.level = handler.name, handler.level
            return
    probe.closed = True  # its QueueHandler was replaced by a later configuration


def _configure(source: str, defaults: Mapping[str, str]) -> str:
    if not os.path.exists(source) and _MODULE_ATTRIBUTE.match(source):
        config = _import_attribute(source)
        _dict_config(config, source)
        return "dictConfig"
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise CommandError(f"cannot read {source}: {exc.strerror or exc}") from None
    suffix = os.path.splitext(source)[1].lower()
    if suffix in (".yaml", ".yml"):
        _dict_config(_yaml(text, source), source)
        return "dictConfig (YAML)"
    if suffix == ".json" or (suffix not in (".ini", ".cfg", ".conf") and text.lstrip()[:1] == "{"):
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{source} is not valid JSON: {exc}") from None
        _dict_config(config, source)
        return "dictConfig (JSON)"
    try:
        logging.config.fileConfig(source, defaults=dict(defaults))
    except configparser.InterpolationMissingOptionError as exc:
        raise CommandError(
            f"{source}: %({exc.reference})s in [{exc.section}] has no value: give it with "
            f"--define {exc.reference}=VALUE (fileConfig's defaults)"
        ) from None
    except Exception as exc:
        raise CommandError(f"{source}: fileConfig failed: {_reasons(exc)}") from None
    return "fileConfig"


def _dict_config(config: Any, source: str) -> None:
    if not isinstance(config, dict):
        raise CommandError(f"{source} is not a dictConfig dict (got {type(config).__name__})")
    try:
        logging.config.dictConfig(config)
    except Exception as exc:
        raise CommandError(f"{source}: dictConfig failed: {_reasons(exc)}") from None


def _yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise CommandError(
            f"reading {source} needs PyYAML, which is not installed: "
            "pip install pyyaml (or give the dictConfig as JSON)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CommandError(f"{source} is not valid YAML: {exc}") from None


def _import_attribute(source: str) -> Any:
    module_name, _, attribute = source.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except Exception as exc:
        raise CommandError(f"cannot load {source}: {type(exc).__name__}: {exc}") from None
    return value


def _reasons(exc: BaseException) -> str:
    """``exc`` and the exceptions that caused it, in one line."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        text = str(current) or type(current).__name__
        if text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return ": ".join(parts)


def all_loggers() -> list[logging.Logger]:
    """The root logger and every logger made so far."""
    found = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            found.append(logger)
    return found


def _state(logger: logging.Logger) -> tuple[object, ...]:
    return (logger.level, logger.propagate, tuple(map(id, logger.handlers)))


def _is_configured(logger: logging.Logger) -> bool:
    return bool(logger.handlers) or logger.level != logging.NOTSET or not logger.propagate
