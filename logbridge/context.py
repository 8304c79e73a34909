"""Request-scoped identity: bind fields once, every event in that scope carries them.

Built on :mod:`contextvars`, so a binding is seen by the thread or asyncio task that
made it (and tasks it starts), never by concurrent requests::

    with logbridge.bind(user_id="u1", context={"ip": "203.0.113.9"}):
        log.info("Order Completed", extra={"order_id": "o1"})   # carries user_id and ip

Keys given on a logging call win over bound ones; a bound ``context`` is merged
under the call's ``context``.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Mapping
from typing import Any

from .message import FIELD_NAMES

__all__ = ["bind", "bound", "capture", "clear", "merge_bound", "unbind"]

_BOUND: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "logbridge_bound", default=None
)


class _Binding:
    """What :func:`bind` returns: usable as a context manager, or undone with ``reset()``."""

    __slots__ = ("_token",)

    def __init__(self, token: contextvars.Token[Mapping[str, Any] | None]) -> None:
        self._token: contextvars.Token[Mapping[str, Any] | None] | None = token

    def __enter__(self) -> _Binding:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def reset(self) -> None:
        """Restore the bindings in force before this one.

        Calling it again does nothing, and so does calling it from another context (a
        copied one, another task or thread): the binding was only ever seen in the
        context that made it.
        """
        token = self._token
        if token is None:
            return
        try:
            _BOUND.reset(token)
        except ValueError:  # "created in a different Context": the owner can still reset
            return
        except RuntimeError:  # "already been used" (reset through a copy of this object)
            pass
        self._token = None


def bind(**fields: Any) -> _Binding:
    """Bind ``fields`` (user_id, anonymous_id, context, or any event field) to this scope.

    Adds to what is already bound (``context`` dicts are merged). Use it as a context
    manager, or keep the result and call ``reset()``; middleware does this per request.
    """
    current = _BOUND.get() or {}
    merged = dict(current)
    for key, value in fields.items():
        if key == "context" and isinstance(value, Mapping):
            previous = merged.get("context")
            merged["context"] = {**(previous if isinstance(previous, Mapping) else {}), **value}
        else:
            merged[key] = value
    return _Binding(_BOUND.set(merged))


def unbind(*keys: str) -> None:
    """Remove ``keys`` from this scope's bindings."""
    current = _BOUND.get()
    if current:
        _BOUND.set({k: v for k, v in current.items() if k not in keys})


def clear() -> None:
    """Remove every binding from this scope."""
    _BOUND.set(None)


def bound() -> Mapping[str, Any]:
    """The fields bound in this scope (empty when none), as a read-only mapping."""
    return types.MappingProxyType(dict(_BOUND.get() or {}))


def capture() -> Mapping[str, Any] | None:
    """The current bindings, cheaply (``None`` when nothing is bound): for ``emit``."""
    return _BOUND.get()


def merge_bound(fields: dict[str, Any], bound_fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """``fields`` with ``bound_fields`` underneath: explicit keys win, contexts merge.

    A key given explicitly hides the bound key for the same spec field in either
    spelling: an explicit ``userId`` wins over a bound ``user_id``.
    """
    if not bound_fields:
        return fields
    given = {_spec_field(key) for key in fields}
    merged = {
        k: v for k, v in bound_fields.items() if k != "context" and _spec_field(k) not in given
    }
    merged.update(fields)
    bound_context = bound_fields.get("context")
    explicit = fields.get("context")
    if isinstance(bound_context, Mapping) and (explicit is None or isinstance(explicit, Mapping)):
        merged["context"] = {**bound_context, **(explicit or {})}
    return merged


def _spec_field(key: object) -> object:
    """The spec field a key fills (``user_id`` and ``userId``: ``userId``), else the key."""
    if key in ("page_name", "screen_name") or not isinstance(key, str):
        return key  # each belongs to its own message type
    return FIELD_NAMES.get(key, key)
