"""Destinations by name: the presets of every service, and how a configured one is built.

``destination=`` takes a preset name (``"segment"``, ``"amplitude"``, ``"console"``...),
a URL (a Segment-compatible endpoint), a dotted path to a class of the user's (made
with no arguments), or an instance. ``endpoint=`` overrides a preset's URL; the
destination still chooses the wire format.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .base import Destination

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["Preset", "build_destination", "presets"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """A service's configured name: its URL (None off the network) and how it is built.

    ``build(options, url)`` gets the validated options and the effective URL (the
    ``endpoint`` override, else ``url``). ``default_path`` completes an ``endpoint``
    given without a path (``http://127.0.0.1:8765`` + ``/v1/batch``). ``needs_key``:
    a write key or API key is required off loopback.
    """

    url: str | None
    build: Callable[[Options, str | None], Destination]
    default_path: str = "/v1/batch"
    needs_key: bool = True


#: The modules that declare ``PRESETS``, imported on first use.
_MODULES = (
    "logbridge.destinations.segment",
    "logbridge.destinations.amplitude",
    "logbridge.destinations.sinks",
)
_presets: dict[str, Preset] = {}


def presets() -> Mapping[str, Preset]:
    """Every preset by name."""
    if not _presets:
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            _presets.update(module.PRESETS)
    return _presets


def is_destination(value: object) -> bool:
    """Whether ``value`` implements the :class:`Destination` protocol."""
    return isinstance(value, Destination)


def load_destination(path: str) -> Destination:
    """Import ``pkg.module.Class`` (or ``pkg.module:Class``) and make one, or an instance."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    try:
        target: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"destination: cannot import {path!r}: {exc}") from None
    made: Destination = target() if isinstance(target, type) else target
    if not is_destination(made):
        raise ConfigurationError(
            f"destination: {path!r} does not implement the Destination protocol "
            "(name, wire_format, limits, map_message, send, warm_up, reset_after_fork, close)"
        )
    return made


def build_destination(options: Options) -> Destination:
    """The destination ``options`` describe, ready to send."""
    chosen = options.destination
    if not isinstance(chosen, str):
        instance: Destination = chosen
        return instance
    preset = presets().get(chosen)
    if preset is None:
        return load_destination(chosen)
    return preset.build(options, options.endpoint)
