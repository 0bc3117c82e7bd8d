"""JSON with the standard library alone, byte for byte as orjson writes it.

Two uses (core/encoding.py chooses once, at import): the whole encoding where orjson is
missing (Pyodide), and, next to orjson, the slow path for the values orjson refuses
(integers past 64 bits, lone surrogates, cycles, keys it cannot write). Wherever orjson
(with ``OPT_SERIALIZE_NUMPY | OPT_NON_STR_KEYS`` and encoding's ``default``) writes a
value, :func:`dumps` writes the same bytes: tests/protocol/test_json_fallback.py compares
them on generated values. :func:`loads` reads what ``orjson.loads`` reads, the same way,
except that it keeps integers of any size exact (docs/protocol.md, "Numbers").
"""

from __future__ import annotations

import codecs
import datetime
import enum
import json
import re
import sys
import uuid
from collections.abc import Callable
from json.encoder import encode_basestring  # C-accelerated; writes UTF-8 as is
from typing import Any

from .errors import EncodingError

__all__ = ["MAX_DEPTH", "date_text", "dumps", "format_float", "loads"]

# orjson writes at most 254 nested arrays and objects; so does this module.
MAX_DEPTH = 254

_SURROGATE_ERRORS = "liaison-json-surrogate"


def _escape_surrogates(error: UnicodeError) -> tuple[str, int]:
    """A lone surrogate, which UTF-8 cannot hold, as its JSON escape (``\\ud800``)."""
    assert isinstance(error, UnicodeEncodeError)
    escapes = "".join(f"\\u{ord(c):04x}" for c in error.object[error.start : error.end])
    return escapes, error.end


codecs.register_error(_SURROGATE_ERRORS, _escape_surrogates)


def dumps(value: Any, default: Callable[[Any], Any]) -> bytes:
    """``value`` as UTF-8 JSON; ``default`` converts what JSON has no type for.

    Raises :class:`EncodingError` if ``value`` nests more than :data:`MAX_DEPTH` arrays
    and objects, and what ``default`` raises.
    """
    writer = _Writer(default)
    writer.write(value, 0)
    text = "".join(writer.out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", _SURROGATE_ERRORS)


def format_float(value: float, low: int = -5, high: int = 16) -> str:
    """orjson's text of a finite float: the shortest digits that round-trip, in decimal
    notation for decimal exponents in [low, high), else as ``1.5e-7`` / ``1e+16``."""
    negative, digits, point = _shortest_digits(repr(value))
    return _layout(negative, digits, point, low, high)


def _shortest_digits(text: str) -> tuple[bool, str, int]:
    """From a shortest repr: the sign, the significant digits, and the decimal point's
    position (the value is 0.DIGITS x 10**position)."""
    negative = text.startswith("-")
    text = text.lstrip("-")
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    point = len(whole) - (len(all_digits) - len(significant)) + int(exponent or 0)
    return negative, significant.rstrip("0") or "0", point


def _layout(negative: bool, digits: str, point: int, low: int, high: int) -> str:
    sign = "-" if negative else ""
    if digits == "0":
        return sign + "0.0"
    exponent = point - 1
    if low <= exponent < high:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _format_float32(value: Any) -> str:
    """orjson's text of a finite numpy float32 (or float16, written as its float32)."""
    import numpy

    text = numpy.format_float_scientific(numpy.float32(value), unique=True, trim="-")
    negative, digits, point = _shortest_digits(text.replace("e+", "e"))
    return _layout(negative, digits, point, -6, 13)


def _float_text(value: float) -> str:
    if value != value or value in (_INF, -_INF):
        return "null"
    return format_float(value)


_INF = float("inf")
_NUMPY_NATIVE_KINDS = frozenset("biuf")  # bool, int, uint, float: orjson writes them
_DATE_TYPES = (datetime.date, datetime.time)


class _Writer:
    """Appends JSON text to ``out``; ``depth`` counts the arrays and objects around a value."""

    def __init__(self, default: Callable[[Any], Any]) -> None:
        self.default = default
        self.out: list[str] = []
        self._path: set[int] = set()  # containers being written, against cycles
        self._defaults = 0  # calls of default under way, one inside another
        self._numpy = sys.modules.get("numpy")  # no array exists unless numpy is imported

    def write(self, value: Any, depth: int) -> None:
        out = self.out
        kind = type(value)
        if kind is str:
            out.append(encode_basestring(value))
        elif value is None:
            out.append("null")
        elif value is True or value is False:
            out.append("true" if value else "false")
        elif kind is float:
            out.append(_float_text(value))
        elif kind is int:
            out.append(_int_text(value))
        elif kind is tuple or isinstance(value, (list, dict)):  # not a tuple's subclass
            self._container(value, depth)
        elif isinstance(value, str):
            out.append(encode_basestring(str.__str__(value)))
        elif isinstance(value, enum.Enum):
            self.write(value.value, depth)
        elif isinstance(value, int):
            out.append(_int_text(int(value)))
        elif isinstance(value, _DATE_TYPES) and (date := date_text(value)) is not None:
            out.append(f'"{date}"')
        elif isinstance(value, uuid.UUID):
            out.append(f'"{value}"')
        elif self._numpy is not None and self._write_numpy(value, depth):
            pass
        elif _is_dataclass_instance(value):
            self._container(_dataclass_fields(value), depth, value)
        else:
            self._defaults += 1  # a getJSON that returns its own object would never end
            if self._defaults > MAX_DEPTH:
                raise EncodingError(f"the value's conversions nest more than {MAX_DEPTH} deep")
            try:
                self.write(self.default(value), depth)
            finally:
                self._defaults -= 1

    def _container(self, value: Any, depth: int, identity: Any = None) -> None:
        out = self.out
        key = id(value if identity is None else identity)
        if key in self._path:
            kind = type(value if identity is None else identity).__name__
            out.append(encode_basestring(f"<circular reference to {kind}>"))
            return
        if depth >= MAX_DEPTH and value:  # as orjson: an empty one is still written
            raise EncodingError(f"the value nests more than {MAX_DEPTH} arrays and objects")
        self._path.add(key)
        try:
            if isinstance(value, dict):
                out.append("{")
                first = True
                for item_key, item in value.items():
                    if not first:
                        out.append(",")
                    first = False
                    out.append(encode_basestring(_key_text(item_key)))
                    out.append(":")
                    self.write(item, depth + 1)
                out.append("}")
            else:
                out.append("[")
                for i, item in enumerate(value):
                    if i:
                        out.append(",")
                    self.write(item, depth + 1)
                out.append("]")
        finally:
            self._path.discard(key)

    def _write_numpy(self, value: Any, depth: int) -> bool:
        """Write a numpy array or scalar as orjson does; False if orjson would not."""
        numpy = self._numpy
        assert numpy is not None
        if isinstance(value, numpy.generic):
            if value.dtype.kind not in _NUMPY_NATIVE_KINDS:
                return False
            self.out.append(_numpy_item_text(value.dtype, value.item()))
            return True
        if type(value) is not numpy.ndarray:
            return False
        if (
            value.dtype.kind not in _NUMPY_NATIVE_KINDS
            or not value.flags.c_contiguous
            or value.ndim == 0
        ):
            return False
        dtype = value.dtype  # its dimensions (64 at most) count for no depth, as in orjson
        self._nested(value.tolist(), lambda item: _numpy_item_text(dtype, item))
        return True

    def _nested(self, items: list[Any], text: Callable[[Any], str]) -> None:
        out = self.out
        out.append("[")
        for i, item in enumerate(items):
            if i:
                out.append(",")
            if type(item) is list:
                self._nested(item, text)
            else:
                out.append(text(item))
        out.append("]")


def _numpy_item_text(dtype: Any, item: Any) -> str:
    if dtype.kind == "b":
        return "true" if item else "false"
    if dtype.kind != "f":
        return str(item)
    if item != item or item in (_INF, -_INF):
        return "null"
    return format_float(item) if dtype.itemsize == 8 else _format_float32(item)


def _int_text(value: int) -> str:
    try:
        return int.__repr__(value)
    except ValueError:  # past sys.get_int_max_str_digits (4300 by default)
        raise EncodingError(
            f"an integer of about {value.bit_length() * 3 // 10} digits is too long to write"
        ) from None


def date_text(value: datetime.date | datetime.time) -> str | None:
    """ISO 8601 text as orjson writes it (an offset's seconds rounded to a minute); None
    for a time with a zone, which orjson does not write. Used for values on both paths:
    orjson 3.13 drops a zero of a time's microseconds (`00:00:00.10000` for 10,000 µs)."""
    if isinstance(value, datetime.datetime):
        offset = value.utcoffset()
        text = value.replace(tzinfo=None).isoformat()
        if offset is None:
            return text
        seconds = int(offset.total_seconds())
        sign = "-" if seconds < 0 else "+"
        minutes = (abs(seconds) + 30) // 60  # orjson rounds the seconds of an offset
        return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    if isinstance(value, datetime.time) and value.tzinfo is not None:
        return None
    return value.isoformat()


def _key_text(key: Any) -> str:
    """A dict key as orjson's OPT_NON_STR_KEYS writes it; ``str(key)`` for the keys it
    refuses."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None:
        return "null"
    if key is True or key is False:
        return "true" if key else "false"
    if isinstance(key, enum.Enum) and type(key.value) in (str, int):
        return _key_text(key.value)
    if isinstance(key, int):
        try:
            return int.__repr__(key)
        except ValueError:
            return _safe_str(key)
    if type(key) is float:
        return _float_text(key)
    if isinstance(key, _DATE_TYPES):
        text = date_text(key)
        if text is not None:
            return text
    return _safe_str(key)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _is_dataclass_instance(value: Any) -> bool:
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def _dataclass_fields(value: Any) -> dict[str, Any]:
    """The fields orjson writes: ``__dict__`` if any, else the declared fields; names
    starting with ``_`` left out."""
    attributes = getattr(value, "__dict__", None)
    if attributes is not None:
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    names = type(value).__dataclass_fields__
    return {name: getattr(value, name) for name in names if not name.startswith("_")}


# -- decoding -----------------------------------------------------------------------------

# A surrogate escape: the only way a lone surrogate can get into JSON text as str.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Decode one JSON text as ``orjson.loads`` does, but with exact integers of any size.

    Raises ``json.JSONDecodeError`` (the base of ``orjson.JSONDecodeError``): for invalid
    UTF-8, NaN and Infinity, a lone surrogate escape, nesting past the interpreter's reach.
    """
    if isinstance(data, str):
        text = data
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise json.JSONDecodeError("str is not valid UTF-8: surrogates", text, 0) from None
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise json.JSONDecodeError(
                f"not valid UTF-8: {error.reason}", "", error.start
            ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise json.JSONDecodeError("depth limit exceeded", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # an integer past sys.get_int_max_str_digits
        raise json.JSONDecodeError(str(error), text, 0) from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(value):
        raise json.JSONDecodeError("lone surrogate escape in a string", text, 0)
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return False
