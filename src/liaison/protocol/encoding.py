"""Encode results and replies as JSON that ``JSON.parse`` accepts, whatever the value.

orjson handles the common types natively (numpy arrays, dataclasses, datetimes, enums,
NaN as null); :func:`to_jsonable` covers the rest, and nothing makes encoding fail.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

import orjson

__all__ = ["NotPlainJSON", "dumps", "format_exception", "import_string", "plain_json_default",
           "to_jsonable"]  # fmt: skip

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_LIAISON_PACKAGE = __name__.rsplit(".", 2)[0]


def import_string(obj: Any) -> str:
    """``python:///pkg.mod:qualname`` for a module, class or function."""
    if isinstance(obj, types.ModuleType):
        return f"python:///{obj.__name__}"
    module = getattr(obj, "__module__", None) or "builtins"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    return f"python:///{module}:{qualname}"


def format_exception(error: BaseException) -> list[str]:
    """Traceback lines of ``error``, without the frames of liaison's own machinery."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith(
        _LIAISON_PACKAGE + "."
    ):
        tb = tb.tb_next
    return traceback.format_exception(type(error), error, tb)


_CODE_TYPES = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
               types.MethodType)  # fmt: skip


def _make_default(
    for_code: Callable[[Any], Any],
    for_iterator: Callable[[Any], Any],
    for_other: Callable[[Any], Any],
) -> Callable[[Any], Any]:
    """An orjson fallback: data types are converted; modules, classes and functions go to
    ``for_code``, iterators to ``for_iterator`` (consuming them) and any other object to
    ``for_other`` (the cases that lose the object)."""

    def default(obj: Any) -> Any:
        """orjson's fallback: called for every value it does not encode natively."""
        get_json = getattr(obj, "getJSON", None)
        if callable(get_json) and not isinstance(obj, type):
            try:
                return get_json()
            except Exception:  # a broken getJSON falls through to the generic rules
                pass
        if isinstance(obj, tuple):  # namedtuples and scipy's result tuples
            return list(obj)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return base64.b64encode(obj).decode("ascii")
        if isinstance(obj, PurePath):
            return str(obj)
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, _CODE_TYPES):
            return for_code(obj)
        if isinstance(obj, BaseException):
            return "".join(format_exception(obj))
        if isinstance(obj, enum.Enum):
            return obj.value
        if isinstance(obj, Mapping):
            return dict(obj)
        if isinstance(obj, (types.GeneratorType, Iterator)) and not hasattr(obj, "read"):
            return for_iterator(obj)
        tolist = getattr(obj, "tolist", None)  # numpy arrays orjson declines (non-contiguous, ...)
        if callable(tolist) and type(obj).__module__.startswith("numpy"):
            return tolist()
        if isinstance(obj, complex):
            return [obj.real, obj.imag]
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)  # type: ignore[arg-type]
        return for_other(obj)

    return default


class NotPlainJSON(Exception):
    """Raised by :func:`plain_json_default` at a value that JSON would only name or print."""


def _not_plain(obj: Any) -> Any:
    raise NotPlainJSON(type(obj).__name__)


def dumps(value: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes. Never raises for any value."""
    try:
        # Most replies hold only types orjson encodes itself, with str keys: tried
        # first, without the fallback and OPT_NON_STR_KEYS (~100 ns less a reply, ~40%).
        # Nothing of the value is called on the way, so a failed try changes nothing.
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        pass
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        # Rare values orjson refuses outright (integers past 64 bits, cycles, odd keys):
        # rebuild in plain Python and try once more.
        return orjson.dumps(to_jsonable(value), option=_OPTIONS)


def to_jsonable(value: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """A copy of ``value`` made only of JSON types (the slow, total path)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if id(value) in _seen:
        return f"<circular reference to {type(value).__name__}>"
    seen = _seen | {id(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v, seen) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, seen) for v in value]
    try:
        converted = _default(value)
    except Exception:
        converted = None
    if converted is value or isinstance(converted, str):
        return converted if isinstance(converted, str) else _safe_str(value)
    try:
        # The converted value may itself be native to orjson (numpy arrays, dates, ...).
        return orjson.loads(orjson.dumps(converted, option=_OPTIONS))
    except (TypeError, orjson.JSONEncodeError):
        return to_jsonable(converted, seen)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else _safe_str(key)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


_default = _make_default(import_string, list, _safe_str)
# The same conversions, but raising NotPlainJSON where _default would encode a module,
# class or function as its import string, drain an iterator (which only a check must
# not do), or encode another object as str(value): what `"ref": "auto"` makes a
# reference of.
plain_json_default = _make_default(_not_plain, _not_plain, _not_plain)
