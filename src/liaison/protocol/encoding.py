"""Encode results and replies as JSON that ``JSON.parse`` accepts, whatever the value.

orjson handles the common types natively (numpy arrays, dataclasses, datetimes, enums,
NaN as null); ``default`` converts the rest; what orjson refuses outright (integers
past 64 bits, lone surrogates, cycles, keys it cannot write) goes to
:mod:`.json_fallback`, which writes orjson's bytes with the standard library. Without
orjson (Pyodide), :mod:`.json_fallback` does it all, with the same output: the choice
is made once, here, at import. Only a value nested more than ``MAX_DEPTH`` arrays and
objects deep cannot be encoded (:class:`~.errors.EncodingError`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import enum
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from json import JSONDecodeError  # orjson's JSONDecodeError is a subclass
from pathlib import PurePath
from typing import Any

from . import json_fallback
from .errors import EncodingError
from .json_fallback import MAX_DEPTH, date_text

try:
    import orjson
except ImportError:  # Pyodide, unless the page loads orjson: the standard library's json
    orjson = None  # type: ignore[assignment]
HAS_ORJSON = orjson is not None  # a flag, not the module: both branches below type-check

__all__ = ["MAX_DEPTH", "JSONDecodeError", "NotPlainJSON", "check_plain", "dumps",
           "fallback_dumps", "fallback_loads", "format_exception", "import_string", "loads",
           "loads_inexact", "may_hold_long_integer",
           "plain_json_default"]  # fmt: skip

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
        if isinstance(obj, (datetime.date, datetime.time)):  # orjson passes them on
            text = date_text(obj)
            if text is not None:
                return text
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


def _total_default(obj: Any) -> Any:
    """``_default`` for the fallback encoder, which lets exceptions through: never raises."""
    try:
        return _default(obj)
    except Exception:
        return _safe_str(obj)


def fallback_dumps(value: Any) -> bytes:
    """:func:`dumps` with the standard library alone: what it is without orjson, and the
    same bytes wherever orjson encodes the value (importable either way, for the tests)."""
    return json_fallback.dumps(value, _total_default)


fallback_loads = json_fallback.loads
"""`loads` with the standard library alone: what it is without orjson."""


def check_plain(value: Any) -> None:
    """Raise :class:`NotPlainJSON` if encoding ``value`` would name, print or drain
    something (see :data:`plain_json_default`); return if it is plain data."""
    if HAS_ORJSON:
        try:
            orjson.dumps(value, default=plain_json_default, option=_OPTIONS)
            return
        except TypeError as error:  # orjson wraps what `default` raised
            if isinstance(error.__cause__, NotPlainJSON):
                raise error.__cause__ from None
    with contextlib.suppress(EncodingError):  # too deep is still data
        json_fallback.dumps(value, plain_json_default)


# An integer literal that may lie outside 64 bits, which orjson reads as a float: 19
# digits in a row after what can precede a JSON number. Digits become "0" and those
# bytes "|"; a fraction's digits follow a ".", so they are skipped.
_NUMBER_SHAPES = bytes.maketrans(b"123456789[,: \t\n\r-|", b"000000000||||||||#")
_LONG_DIGITS = b"0" * 19
_NUMBER_START = ord("|")


def may_hold_long_integer(data: str | bytes | bytearray | memoryview) -> bool:
    """False only if the JSON text ``data`` holds no integer literal of 19 digits or more
    (~0.5 ns a byte and ~0.2 us a call)."""
    raw = data.encode() if isinstance(data, str) else data if type(data) is bytes else bytes(data)
    shapes = raw.translate(_NUMBER_SHAPES)
    position = shapes.find(_LONG_DIGITS)
    while position >= 0:
        if position == 0 or shapes[position - 1] == _NUMBER_START:
            return True
        position = shapes.find(_LONG_DIGITS, position + len(_LONG_DIGITS))
    return False


if HAS_ORJSON:
    # Dates are written by `default` (json_fallback.date_text), on both paths alike.
    _NATIVE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
    _OPTIONS = _NATIVE | orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        """``value`` as UTF-8 JSON bytes. Raises :class:`EncodingError` only for a value
        nested more than ``MAX_DEPTH`` arrays and objects deep."""
        try:
            # Most replies hold only types orjson encodes itself, with str keys: tried
            # first, without the fallback and OPT_NON_STR_KEYS (~100 ns less a reply,
            # ~40%). Nothing of the value is called on the way, so a failed try changes
            # nothing.
            return orjson.dumps(value, option=_NATIVE)
        except TypeError:
            pass
        try:
            return orjson.dumps(value, default=_default, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError too: the values orjson refuses
            return fallback_dumps(value)

    # Integers past 64 bits may come out as floats: for callers that check where it
    # matters (core/request.py) and would rather not scan every text.
    loads_inexact = orjson.loads

    def loads(data: str | bytes | bytearray | memoryview) -> Any:
        """One JSON text decoded, integers of any size exact. Raises
        :class:`JSONDecodeError`."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            if str(error).startswith("depth limit exceeded"):
                # Past orjson's 1,024 levels: refused on every Python alike (the json
                # module reads deeper from 3.12 on, where C recursion has its own limit).
                raise
            try:  # what orjson cannot hold (an integer of 309 digits...) but json can
                return fallback_loads(data)
            except JSONDecodeError:
                raise error from None
        if may_hold_long_integer(data):
            return fallback_loads(data)
        return value

else:
    _OPTIONS = 0

    dumps = fallback_dumps

    loads = loads_inexact = fallback_loads
