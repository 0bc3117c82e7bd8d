"""Binary frames: a JSON message whose numpy arrays and bytes travel as raw buffers.

The layout (docs/protocol.md, "Binary frames")::

    bytes 0-3    L, the length of the JSON header, uint32 little-endian
    4 .. 4+L     the message as UTF-8 JSON, with "buffers": [[offset, nbytes], ...]
    offsets      each buffer, at an offset (from the frame's start) that is a multiple of 8

In the JSON each array is ``{"$buffer": i, "dtype": "float64", "shape": [2, 3]}`` (C
order, little-endian) and each bytes value ``{"$buffer": i, "dtype": "bytes"}``; a
client may also send a JSON array of numbers as ``{"$buffer": i, "dtype": "float64",
"as": "list", ...}`` (decoded by :mod:`.number_lists`). The
top-level ``evt`` (a reply's echo of the peer's message) is neither encoded nor decoded:
its placeholders, if any, refer to the peer's own frame.

Pure functions, no I/O; numpy is only touched when a message holds an array, so
importing this module does not import it.
"""

from __future__ import annotations

import sys
from typing import Any

from .encoding import JSONDecodeError, dumps, loads
from .errors import InvalidMessage, json_type_name
from .number_lists import decode_number_list

__all__ = ["DTYPES", "Frame", "decode_frame", "encode_frame", "resolve_buffers", "split_frame"]

# The dtypes that travel as buffers: those with a JavaScript typed array. Other arrays
# (float16, complex, datetime, str, object, ...) stay JSON.
DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float32", "float64"]
)  # fmt: skip
_BYTES = "bytes"
_RESERVED = "buffers"
_ECHO = "evt"
_SCALARS = frozenset([str, int, float, bool, type(None)])


class Frame(bytearray):
    """An encoded binary frame (a bytearray, so it can be filled in place).

    Its type is what tells a transport to send it as a binary WebSocket frame rather
    than as JSON text.
    """


def _align8(n: int) -> int:
    return (n + 7) & ~7


# -- encoding -----------------------------------------------------------------------------


class _Extractor:
    """Replaces arrays and bytes in a message by placeholders, collecting their buffers."""

    def __init__(self) -> None:
        numpy = sys.modules.get("numpy")  # no array can exist unless numpy is imported
        self.numpy = numpy
        self.array_types: tuple[type, ...] = (
            (numpy.ndarray, numpy.memmap) if numpy is not None else ()
        )
        self.buffers: list[Any] = []
        self._path: set[int] = set()  # containers being walked, against cycles

    def replace(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind in self.array_types:
            if value.dtype.name in DTYPES:
                return self._array(value)
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._bytes(value)
        if isinstance(value, (dict, list, tuple)):
            if id(value) in self._path:
                return value  # a cycle: left to the JSON encoder, which names it
            self._path.add(id(value))
            try:
                return self._container(value)
            finally:
                self._path.discard(id(value))
        return value

    def _container(self, value: Any) -> Any:
        replace = self.replace
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for key, item in value.items():
                if type(item) in _SCALARS:
                    continue
                new = replace(item)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        items: list[Any] | None = None
        for i, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            new = replace(item)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items

    def _array(self, array: Any) -> dict[str, Any]:
        numpy = self.numpy
        assert numpy is not None
        dtype = array.dtype
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
            array = array.astype(dtype.newbyteorder("<"))
        if not array.flags.c_contiguous:
            array = numpy.ascontiguousarray(array)
        self.buffers.append(array.reshape(-1).view(numpy.uint8))
        return {"$buffer": len(self.buffers) - 1, "dtype": dtype.name, "shape": list(array.shape)}

    def _bytes(self, value: bytes | bytearray | memoryview) -> dict[str, Any]:
        view = memoryview(value)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        self.buffers.append(view.cast("B") if view.format != "B" or view.ndim != 1 else view)
        return {"$buffer": len(self.buffers) - 1, "dtype": _BYTES}


def encode_frame(message: dict[str, Any]) -> Frame | None:
    """``message`` as a binary frame, or None if it holds no array or bytes to send raw.

    Numpy arrays of a dtype in :data:`DTYPES` and bytes, bytearray and memoryview values,
    anywhere in dicts, lists and tuples of the message except its top-level ``evt``,
    become buffers; everything else is encoded as :func:`~.encoding.dumps` does. A
    top-level ``"buffers"`` key is reserved (ValueError).
    """
    if _RESERVED in message:
        raise ValueError(f"a message sent as a binary frame cannot have a {_RESERVED!r} key")
    extractor = _Extractor()
    body = {
        key: value if key == _ECHO else extractor.replace(value) for key, value in message.items()
    }
    buffers = extractor.buffers
    if not buffers:
        return None
    sizes = [buffer.nbytes for buffer in buffers]
    encoded = dumps(body)  # b"{...}"
    head = encoded[:-1] + (b',"buffers":' if len(encoded) > 2 else b'"buffers":')

    # The offsets depend on the header's length, which depends on the offsets: grow the
    # guess until it holds (it only grows, so this ends), padding with spaces if needed.
    length = 0
    while True:
        offsets = []
        position = _align8(4 + length)
        for size in sizes:
            offsets.append([position, size])
            position = _align8(position + size)
        header = head + dumps(offsets) + b"}"
        if len(header) <= length:
            header = header.ljust(length)
            break
        length = len(header)
    last_offset, last_size = offsets[-1]
    frame = Frame(last_offset + last_size)  # zero-filled: the padding is zeros
    # Through a memoryview: assigning a buffer to a bytearray slice would copy it first.
    with memoryview(frame) as out:
        out[0:4] = length.to_bytes(4, "little")
        out[4 : 4 + length] = header
        for (offset, size), buffer in zip(offsets, buffers, strict=True):
            out[offset : offset + size] = buffer
    return frame


# -- decoding -----------------------------------------------------------------------------


def split_frame(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], list[memoryview]]:
    """The JSON header of a binary frame (placeholders intact) and its buffers' bytes.

    Raises :class:`InvalidMessage` naming what is wrong with the frame.
    """
    frame = memoryview(data)
    if frame.format != "B" or frame.ndim != 1:
        frame = frame.cast("B")
    size = frame.nbytes
    if size < 4:
        raise InvalidMessage(f"binary frame of {size} bytes is too short for its header length")
    length = int.from_bytes(frame[0:4], "little")
    if length > size - 4:
        raise InvalidMessage(
            f"binary frame header length is {length} bytes, but only {size - 4} follow it"
        )
    try:
        header = loads(frame[4 : 4 + length])
    except JSONDecodeError as error:
        raise InvalidMessage(f"binary frame header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise InvalidMessage(
            f"binary frame header must be a JSON object, got {json_type_name(header)}"
        )
    specs = header.get(_RESERVED, [])
    if not isinstance(specs, list):
        raise InvalidMessage(
            f"binary frame 'buffers' must be an array, got {json_type_name(specs)}"
        )
    buffers = []
    for i, spec in enumerate(specs):
        if not (
            isinstance(spec, list)
            and len(spec) == 2
            and all(type(n) is int and n >= 0 for n in spec)
        ):
            raise InvalidMessage(
                f"binary frame buffer {i} must be [offset, nbytes] (two non-negative "
                f"integers), got {spec!r}"
            )
        offset, nbytes = spec
        if offset < 4 + length or offset + nbytes > size:
            raise InvalidMessage(
                f"binary frame buffer {i} [{offset}, {offset + nbytes}) lies outside the "
                f"frame's data, bytes [{4 + length}, {size})"
            )
        buffers.append(frame[offset : offset + nbytes])
    return header, buffers


def resolve_buffers(value: Any, buffers: list[memoryview]) -> Any:
    """``value`` with every placeholder replaced by its numpy array, bytes or list.

    Arrays are writable: a read-only buffer (a ``bytes`` frame) is copied. Containers
    holding no placeholder are returned as they are. Raises :class:`InvalidMessage`.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        if "$buffer" in value:
            return _placeholder(value, buffers)
        out: dict[str, Any] | None = None
        for key, item in value.items():
            if type(item) in _SCALARS:
                continue
            new = resolve_buffers(item, buffers)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if kind is list:
        items: list[Any] | None = None
        for i, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            new = resolve_buffers(item, buffers)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    return value


def _placeholder(spec: dict[str, Any], buffers: list[memoryview]) -> Any:
    index = spec["$buffer"]
    if type(index) is not int or not 0 <= index < len(buffers):
        raise InvalidMessage(
            f"binary frame placeholder names buffer {index!r}, but the frame has "
            f"{len(buffers)} buffer{'' if len(buffers) == 1 else 's'}"
        )
    if "as" in spec:  # a JSON array of numbers, sent raw
        return decode_number_list(spec, index, buffers)
    buffer = buffers[index]
    dtype = spec.get("dtype", _BYTES)  # as the JavaScript client reads it
    if dtype == _BYTES:
        return bytes(buffer)
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidMessage(
            f"binary frame buffer {index} has unknown dtype {dtype!r}; known: "
            + ", ".join([_BYTES, *sorted(DTYPES)])
        )
    try:
        import numpy
    except ImportError:
        raise InvalidMessage(
            f"decoding a {dtype} array needs numpy, which is not installed"
        ) from None
    itemsize = numpy.dtype(dtype).itemsize
    shape = spec.get("shape")
    if shape is None:  # one-dimensional, as the JavaScript client reads it
        if buffer.nbytes % itemsize:
            raise InvalidMessage(
                f"binary frame buffer {index} holds {buffer.nbytes} bytes, not a whole "
                f"number of {itemsize}-byte {dtype} items"
            )
        shape = [buffer.nbytes // itemsize]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise InvalidMessage(
            f"binary frame buffer {index} shape must be an array of non-negative integers, "
            f"got {shape!r}"
        )
    count = 1
    for n in shape:
        count *= n
    if count * itemsize != buffer.nbytes:
        raise InvalidMessage(
            f"binary frame buffer {index} holds {buffer.nbytes} bytes, but {dtype} of "
            f"shape {shape} needs {count * itemsize}"
        )
    try:
        array = numpy.frombuffer(buffer, dtype=numpy.dtype(dtype).newbyteorder("<"), count=count)
        shaped = array.reshape(shape)
    except (ValueError, OverflowError, MemoryError) as error:  # a shape numpy refuses
        raise InvalidMessage(
            f"binary frame buffer {index} shape {_shape_text(shape)} is refused by numpy: {error}"
        ) from None
    return shaped if shaped.flags.writeable else shaped.copy()


def _shape_text(shape: list[int]) -> str:
    text = repr(shape)
    return text if len(text) <= 80 else text[:77] + "..."


def decode_frame(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The message a binary frame holds, with its arrays and bytes in place.

    The inverse of :func:`encode_frame`: the ``buffers`` key is removed, and the
    top-level ``evt`` is left as it is. Raises :class:`InvalidMessage` naming what is
    wrong with a malformed frame.
    """
    header, buffers = split_frame(data)
    header.pop(_RESERVED, None)
    for key, value in header.items():
        if key != _ECHO:
            header[key] = resolve_buffers(value, buffers)
    return header
