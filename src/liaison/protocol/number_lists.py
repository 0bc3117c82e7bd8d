"""List placeholders: a JSON array of numbers that travelled as a raw buffer.

A client may send a long array of numbers in a binary frame as
``{"$buffer": i, "dtype": "float64", "as": "list", "ints": j, "nulls": k}``
(docs/protocol.md, "Binary frames"); the liaison rebuilds the Python list that the
same array, sent as JSON text, would have given: floats, ints where the JSON text had
an integer, None where it had ``null``. Buffer ``i`` holds the values (float64 or
int32, little-endian); the optional buffers ``j`` and ``k`` hold uint32 little-endian
indices of the float64 elements that become ints and None. The rules are those of a
JavaScript client's ``JSON.stringify`` read by the liaison's ``encoding.loads``:

- an integral float64 below 1e21 in magnitude prints without ``.`` or exponent, as
  its shortest round-trip digits padded with zeros (``2**60`` prints
  ``1152921504606847000``; ``-0`` prints ``0``), which the liaison reads as that
  exact int, whatever its size;
- NaN and the infinities print ``null``.

Pure functions, no numpy: the standard ``array`` module does the conversion.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from .errors import InvalidMessage

__all__ = ["LIST_DTYPES", "decode_number_list", "json_integer", "native_items"]

# The dtypes a list placeholder may have, and their array typecodes of that item size.
LIST_DTYPES = {
    "float64": "d",
    "int32": next(code for code in "ihl" if array(code).itemsize == 4),
}
_UINT32 = next(code for code in "IHL" if array(code).itemsize == 4)
_INDEX_KEYS = ("ints", "nulls")
_EXACT = 2.0**53  # below it (in magnitude) every integral float64 prints as itself
_JSON_INTEGER_LIMIT = 1e21  # from here on JavaScript prints an exponent: a float


def json_integer(value: float) -> int:
    """What the liaison reads from JavaScript's printing of the integral ``value``
    (finite, below 1e21 in magnitude): the printed digits, as an int."""
    if -_EXACT <= value <= _EXACT:
        return int(value)
    from decimal import Decimal  # only for integers past 2**53: rare

    # Python's repr, like JavaScript, gives the shortest digits that round-trip.
    return int(Decimal(repr(value)))


def native_items(typecode: str, data: memoryview, byteorder: str = sys.byteorder) -> array[Any]:
    """The little-endian items of ``data`` as an array of ``typecode`` (copied)."""
    items = array(typecode)
    items.frombytes(data)
    if byteorder == "big":
        items.byteswap()
    return items


def decode_number_list(spec: dict[str, Any], index: int, buffers: list[memoryview]) -> list[Any]:
    """The list a ``"as": "list"`` placeholder (naming buffer ``index``, in range) stands for.

    Raises :class:`InvalidMessage` naming what is wrong with the placeholder.
    """
    where = f"binary frame buffer {index}"
    if spec["as"] != "list":
        raise InvalidMessage(f"{where} has unknown 'as' {spec['as']!r}; known: 'list'")
    dtype = spec.get("dtype")
    typecode = LIST_DTYPES.get(dtype) if isinstance(dtype, str) else None
    if typecode is None:
        raise InvalidMessage(
            f"{where} is a list of dtype {dtype!r}; a list placeholder's dtype is one of "
            + ", ".join(repr(name) for name in LIST_DTYPES)
        )
    data = buffers[index]
    itemsize = array(typecode).itemsize
    if data.nbytes % itemsize:
        raise InvalidMessage(
            f"{where} holds {data.nbytes} bytes, not a whole number of {itemsize}-byte "
            f"{dtype} items"
        )
    count = data.nbytes // itemsize
    shape = spec.get("shape", [count])
    if shape != [count] or type(shape[0]) is not int:
        raise InvalidMessage(f"{where} is a list of {count} items, but its shape is {shape!r}")
    values = native_items(typecode, data).tolist()
    for key in _INDEX_KEYS:
        if key not in spec:
            continue
        if dtype != "float64":
            raise InvalidMessage(f"{where}: {key!r} is for float64 lists, not {dtype}")
        positions = _indices(spec[key], key, where, count, buffers)
        if key == "nulls":
            for i in positions:
                values[i] = None
        else:
            _make_integers(values, positions, where)
    return values


def _indices(name: Any, key: str, where: str, count: int, buffers: list[memoryview]) -> list[int]:
    if type(name) is not int or not 0 <= name < len(buffers):
        raise InvalidMessage(
            f"{where}: {key!r} names buffer {name!r}, but the frame has {len(buffers)} "
            f"buffer{'' if len(buffers) == 1 else 's'}"
        )
    data = buffers[name]
    if data.nbytes % 4:
        raise InvalidMessage(
            f"{where}: its {key!r} buffer {name} holds {data.nbytes} bytes, not a whole "
            "number of uint32 indices"
        )
    positions: list[int] = native_items(_UINT32, data).tolist()
    if positions and max(positions) >= count:
        raise InvalidMessage(
            f"{where}: its {key!r} buffer {name} holds index {max(positions)}, past the "
            f"list's {count} items"
        )
    return positions


def _make_integers(values: list[Any], positions: list[int], where: str) -> None:
    for i in positions:
        value = values[i]
        if type(value) is float and value.is_integer() and abs(value) < _JSON_INTEGER_LIMIT:
            values[i] = json_integer(value)
        else:
            raise InvalidMessage(
                f"{where}: item {i}, listed in 'ints', is {value!r}, not an integer below "
                "1e21 in magnitude"
            )
