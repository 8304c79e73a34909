"""Messages become JSON bytes, whatever their values hold.

Values JSON cannot hold as they are become JSON like this (an event never disappears
because one value could not be encoded):

====================================  =============================================
value                                 JSON
====================================  =============================================
``datetime``                          ISO-8601 string in UTC with milliseconds
                                      (``2026-11-22T06:30:00.123Z``); naive = UTC
``date`` / ``time``                   ``"2026-11-22"`` / ``"06:30:00"``
``timedelta``                         seconds, a number
``Decimal``                           a number (``float``); NaN and infinities: null
``float`` NaN, Infinity               null
``UUID``, ``Path``                    their string
``set``, ``frozenset``, ``tuple``     an array (sets sorted when their items sort)
``bytes``                             UTF-8 text, or base64 when not valid UTF-8
``Enum``                              its value
dataclass, pydantic model             an object of its fields
numpy scalar / array                  ``.item()`` / ``.tolist()``
dict key that is not a string         ``str(key)``
a container holding itself            ``"<recursive>"``
anything else                         ``str(value)`` (``repr`` if that fails), counted
====================================  =============================================
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

_orjson: Any
try:  # the optional fast path
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the installed extras
    _orjson = None

__all__ = ["Encoder", "to_jsonable"]

_MAX_DEPTH = 64


class Encoder:
    """Serialises messages to compact UTF-8 JSON and counts coerced values.

    Uses ``orjson`` when it is installed (``logbridge[orjson]``) and the stdlib ``json``
    otherwise; both give the same JSON for the same message (byte for byte, except the
    spelling of floats in exponent form: ``1e+16`` against ``1e16``, the same number).
    ``coerced`` counts lossy conversions; orjson writes NaN and infinities as null
    without telling, so those are counted on the stdlib path only.
    Not thread-safe: each listener owns one.
    """

    __slots__ = ("_dumps", "_fast", "coerced")

    def __init__(self, *, use_orjson: bool | None = None) -> None:
        self.coerced = 0
        self._dumps: Callable[[Any], str] = json.JSONEncoder(
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            default=self._default,
        ).encode
        self._fast: Callable[[Any], bytes] | None = None
        if use_orjson is not False and _orjson is not None:
            options = (
                _orjson.OPT_NON_STR_KEYS
                | _orjson.OPT_PASSTHROUGH_DATETIME
                | _orjson.OPT_PASSTHROUGH_DATACLASS
            )
            dumps = _orjson.dumps
            default = self._default

            def fast(message: Any) -> bytes:
                # orjson's bytes keep the capacity of its output buffer (4 KiB for a
                # message of a few hundred bytes); a message may wait in the outbox, so
                # keep an exact-size copy.
                return memoryview(dumps(message, default=default, option=options)).tobytes()

            self._fast = fast
        elif use_orjson:
            raise ImportError("orjson is not installed: pip install 'logbridge[orjson]'")

    @property
    def uses_orjson(self) -> bool:
        """Whether this encoder serialises with orjson."""
        return self._fast is not None

    def encode(self, message: Mapping[str, Any]) -> bytes:
        """The message as JSON bytes. Never raises for any value a message can hold."""
        before = self.coerced
        try:
            if self._fast is not None:
                return self._fast(message)
            return self._dumps(message).encode("utf-8")
        except Exception:
            self.coerced = before
            # NaN, a non-string key, a cycle, deep nesting, a lone surrogate, an integer
            # beyond 64 bits (orjson): clean a copy.
            cleaned, coerced = to_jsonable(message)
            self.coerced += coerced
            return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode(
                "utf-8", "replace"
            )

    def _default(self, value: Any) -> Any:
        converted, exact = convert(value)
        if not exact:
            self.coerced += 1
        return converted


def convert(value: Any) -> tuple[Any, bool]:
    """One value JSON cannot hold as it is, as one it can; and whether that was exact."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        ), True
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat(), True
    if isinstance(value, dt.timedelta):
        return value.total_seconds(), True
    if isinstance(value, decimal.Decimal):
        return (float(value) if value.is_finite() else None), True
    if isinstance(value, enum.Enum):
        return value.value, True
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value), True
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value), True
        except Exception:
            return list(value), True
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), True
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii"), True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, True
    if isinstance(value, Mapping):
        return dict(value), True
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return model_dump(), True
        except Exception:
            pass
    for method in ("tolist", "item"):  # numpy arrays and scalars
        convert_method = getattr(value, method, None)
        if callable(convert_method) and hasattr(value, "dtype"):
            try:
                return convert_method(), True
            except Exception:
                pass
    return _text(value), False


def to_jsonable(value: Any) -> tuple[Any, int]:
    """A copy of ``value`` made only of JSON types, and how many values were coerced."""
    coerced = [0]

    def clean(item: Any, depth: int, path: frozenset[int]) -> Any:
        if item is None or isinstance(item, (str, bool, int)):
            if isinstance(item, str):
                return item.encode("utf-8", "replace").decode("utf-8")
            return item
        if isinstance(item, float):
            if math.isfinite(item):
                return item
            coerced[0] += 1
            return None
        if depth > _MAX_DEPTH:
            coerced[0] += 1
            return "<too deep>"
        if id(item) in path:
            coerced[0] += 1
            return "<recursive>"
        inner = path | {id(item)}
        if isinstance(item, dict):
            return {_key(k): clean(v, depth + 1, inner) for k, v in list(item.items())}
        if isinstance(item, (list, tuple)):
            return [clean(v, depth + 1, inner) for v in list(item)]
        try:
            converted, exact = convert(item)
        except Exception:
            coerced[0] += 1
            return _text(item)
        if not exact:
            coerced[0] += 1
            return converted
        return clean(converted, depth + 1, inner)

    def _key(key: Any) -> str:
        if isinstance(key, str):
            return key
        if key is None or isinstance(key, (bool, int, float)):
            return json.dumps(key)
        return str(clean(key, _MAX_DEPTH, frozenset()))

    return clean(value, 0, frozenset()), coerced[0]


def _text(value: Any) -> str:
    for render in (str, repr):
        try:
            text = render(value)
            if isinstance(text, str):
                return text
        except Exception:
            continue
    return f"<unencodable {type(value).__name__}>"
