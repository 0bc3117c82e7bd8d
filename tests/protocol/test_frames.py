"""Binary frames: round trips of every dtype and shape, the layout, and every bad frame."""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.core import InvalidMessage, RejectedMessage, dumps, parse_message
from liaison.protocol.frames import DTYPES, Frame, decode_frame, encode_frame, split_frame
from liaison.protocol.replies import partial_message, progress_message, success_reply
from liaison.protocol.request import parse_frame

SHAPES = [(), (0,), (5,), (2, 3), (2, 0, 4), (3, 1, 2)]


def roundtrip(message: dict[str, Any]) -> dict[str, Any]:
    frame = encode_frame(message)
    assert isinstance(frame, Frame)
    return decode_frame(bytes(frame))


def header_of(frame: bytes | bytearray) -> dict[str, Any]:
    (length,) = struct.unpack_from("<I", frame)
    header: dict[str, Any] = json.loads(bytes(frame[4 : 4 + length]))
    return header


def frame_of(header: Any, *buffers: bytes, raw_header: bytes | None = None) -> bytes:
    """A frame made by hand: the header, then ``buffers`` from byte 1024 on, each at a
    multiple of 8; the header's "buffers" say where, unless the header has its own."""
    offsets, position = [], 1024
    for buffer in buffers:
        offsets.append([position, len(buffer)])
        position += (len(buffer) + 7) // 8 * 8
    if isinstance(header, dict) and buffers and "buffers" not in header:
        header = {**header, "buffers": offsets}
    text = raw_header if raw_header is not None else orjson.dumps(header)
    out = bytearray(struct.pack("<I", len(text)) + text)
    for (offset, _), buffer in zip(offsets, buffers, strict=True):
        out += b"\0" * (offset - len(out)) + buffer
    return bytes(out)


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_dtype_and_shape_round_trips(dtype: str, shape: tuple[int, ...]) -> None:
    array = (np.arange(int(np.prod(shape))) % 7).astype(dtype).reshape(shape)
    out = roundtrip({"response": array})["response"]
    assert isinstance(out, np.ndarray)
    assert (out.dtype, out.shape) == (array.dtype, array.shape)
    assert np.array_equal(out, array)
    assert out.flags.writeable


def test_extreme_values_keep_their_bits() -> None:
    values = {
        "float64": np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]),
        "int64": np.array([-(2**63), 2**63 - 1]),
        "uint64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "bool": np.array([True, False, True]),
    }
    out = roundtrip(values)
    for name, array in values.items():
        assert out[name].tobytes() == array.tobytes(), name


def test_placeholders_say_dtype_and_shape_in_c_order_little_endian() -> None:
    big_endian_fortran = np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3))
    frame = encode_frame({"response": big_endian_fortran})
    assert frame is not None
    header = header_of(frame)
    assert header["response"] == {"$buffer": 0, "dtype": "int32", "shape": [2, 3]}
    offset, nbytes = header["buffers"][0]
    assert bytes(frame[offset : offset + nbytes]) == np.arange(6, dtype="<i4").tobytes()
    assert np.array_equal(decode_frame(frame)["response"], big_endian_fortran)


def test_non_contiguous_arrays_are_sent_as_their_values() -> None:
    array = np.arange(24.0).reshape(4, 6)[::2, 1::3]
    assert np.array_equal(roundtrip({"r": array})["r"], array)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00\xffabc", bytearray(b"xyz"), memoryview(b"abcdef")[::2]],
    ids=["bytes-empty", "bytes", "bytearray", "memoryview-strided"],  # stable across processes
)
def test_bytes_like_values_round_trip_as_bytes(value: Any) -> None:
    frame = encode_frame({"r": value})
    assert frame is not None
    assert header_of(frame)["r"] == {"$buffer": 0, "dtype": "bytes"}
    out = decode_frame(frame)["r"]
    assert type(out) is bytes and out == bytes(value)


def test_arrays_and_bytes_anywhere_in_dicts_lists_and_tuples() -> None:
    message = {
        "response": {"a": [1, (np.arange(3), "x"), {"b": b"raw"}], "c": None, "d": [2.5]},
        "tag": "response",
        "id": 7,
    }
    out = roundtrip(message)
    assert out["tag"] == "response" and out["id"] == 7
    inner = out["response"]
    assert inner["c"] is None and inner["d"] == [2.5] and inner["a"][0] == 1
    assert np.array_equal(inner["a"][1][0], np.arange(3)) and inner["a"][1][1] == "x"
    assert inner["a"][2] == {"b": b"raw"}


def test_the_message_given_is_not_changed() -> None:
    array = np.arange(3)
    message = {"response": [array, {"k": b"v"}]}
    encode_frame(message)
    assert message["response"][0] is array and message["response"][1] == {"k": b"v"}


def test_messages_without_arrays_or_bytes_are_not_frames() -> None:
    assert encode_frame({"response": [1, "two", {"three": 3.0}, None]}) is None


@pytest.mark.parametrize(
    "array",
    [
        np.array(["a", "b"]),
        np.array([{}, 1], dtype=object),
        np.array([1, 2], dtype=np.float16),
        np.array([1j]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.zeros(2, dtype=[("x", "i4")]),
        np.ma.masked_array([1, 2], mask=[0, 1]),
    ],
    ids=lambda a: f"{type(a).__name__}-{a.dtype}",
)
def test_other_arrays_stay_json(array: Any) -> None:
    assert encode_frame({"response": array}) is None
    frame = encode_frame({"response": [array, b"x"]})
    assert frame is not None
    assert header_of(frame)["response"][0] == orjson.loads(orjson.dumps(success_reply_value(array)))


def success_reply_value(value: Any) -> Any:
    return orjson.loads(dumps(value))


def test_scalars_and_json_values_keep_the_ordinary_encoding() -> None:
    frame = encode_frame({"r": [np.float64(1.5), np.int32(2), float("nan"), b"x"]})
    assert frame is not None
    assert header_of(frame)["r"][:3] == [1.5, 2, None]


def test_evt_is_neither_encoded_nor_decoded() -> None:
    placeholder = {"$buffer": 0, "dtype": "float64", "shape": [3]}
    frame = encode_frame({"response": b"x", "evt": {"args": [np.arange(2), placeholder]}})
    assert frame is not None
    assert header_of(frame)["evt"] == {"args": [[0, 1], placeholder]}
    assert decode_frame(frame)["evt"] == {"args": [[0, 1], placeholder]}


def test_a_buffers_key_is_reserved() -> None:
    with pytest.raises(ValueError, match="'buffers'"):
        encode_frame({"buffers": 1, "r": b"x"})


def test_cycles_are_left_to_the_json_encoder() -> None:
    cycle: list[Any] = [np.arange(2)]
    cycle.append(cycle)
    frame = encode_frame({"r": cycle})
    assert frame is not None
    out = decode_frame(frame)["r"]
    assert np.array_equal(out[0], np.arange(2))
    assert "circular" in out[1][1]


def test_decoded_arrays_of_a_bytearray_frame_are_views_of_it() -> None:
    frame = encode_frame({"r": np.arange(4)})
    assert frame is not None
    out = decode_frame(frame)["r"]
    assert out.flags.writeable and np.shares_memory(out, np.frombuffer(frame, np.uint8))


def test_an_empty_body_gets_just_the_buffers() -> None:
    frame = encode_frame({"": b"x"})
    assert frame is not None
    assert decode_frame(frame) == {"": b"x"}


# -- layout -------------------------------------------------------------------------------


def check_layout(frame: Frame, sizes: list[int]) -> None:
    (length,) = struct.unpack_from("<I", frame)
    header = header_of(frame)
    offsets = header["buffers"]
    assert [nbytes for _, nbytes in offsets] == sizes
    assert all(offset % 8 == 0 for offset, _ in offsets)
    assert offsets[0][0] >= 4 + length
    for (offset, nbytes), (following, _) in itertools.pairwise(offsets):
        assert offset + nbytes <= following
    assert len(frame) == offsets[-1][0] + offsets[-1][1]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    padding=st.text(max_size=300),
)
def test_every_buffer_starts_at_a_multiple_of_8_after_the_header(
    sizes: list[int], padding: str
) -> None:
    """Header lengths of every remainder mod 8, and offsets whose digits grow."""
    buffers = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
    frame = encode_frame({"pad": padding, "r": buffers})
    assert frame is not None
    check_layout(frame, sizes)
    assert decode_frame(frame) == {"pad": padding, "r": buffers}


def test_offsets_reach_past_a_digit_boundary() -> None:
    # 4 + header length near 10,000 makes the first offset gain a digit mid-iteration.
    for pad in range(9890, 9990, 7):
        frame = encode_frame({"pad": "x" * pad, "r": [b"a", b"bc"]})
        assert frame is not None
        check_layout(frame, [1, 2])


def test_frames_are_laid_out_as_the_javascript_client_reads_them() -> None:
    frame = encode_frame({"response": np.array([1.5, 2.5]), "tag": "response", "id": "i"})
    assert frame is not None
    (length,) = struct.unpack_from("<I", frame)
    header = json.loads(bytes(frame[4 : 4 + length]))
    [[offset, nbytes]] = header["buffers"]
    assert (offset, nbytes) == ((4 + length + 7) // 8 * 8, 16)
    assert struct.unpack_from("<2d", frame, offset) == (1.5, 2.5)


# -- bad frames ---------------------------------------------------------------------------

PAD = b"\0" * 16


def placeholder(dtype: str | None = None, shape: Any = None, index: Any = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"$buffer": index}
    if dtype is not None:
        spec["dtype"] = dtype
    if shape is not None:
        spec["shape"] = shape
    return spec


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"", "0 bytes is too short"),
        (b"\x01\x00\x00", "3 bytes is too short"),
        (b"\xff\xff\xff\xff{}", "header length is 4294967295 bytes, but only 2 follow it"),
        (b"\x03\x00\x00\x00{}", "header length is 3 bytes, but only 2 follow it"),
        (frame_of(None, raw_header=b"{not json"), "header is not valid JSON"),
        (frame_of(None, raw_header=b"\xff\xfe"), "header is not valid JSON"),
        (frame_of([1, 2]), "header must be a JSON object, got array"),
        (frame_of({"buffers": {}}), "'buffers' must be an array, got object"),
        (frame_of({"buffers": [[8]]}), r"buffer 0 must be \[offset, nbytes\]"),
        (frame_of({"buffers": [[8, -1]]}), r"buffer 0 must be \[offset, nbytes\]"),
        (frame_of({"buffers": [["8", 1]]}), r"buffer 0 must be \[offset, nbytes\]"),
        (frame_of({"buffers": [[1024, 2.0]]}), r"buffer 0 must be \[offset, nbytes\]"),
        (frame_of({"buffers": [[1024, 16]]}, PAD[:8]), r"buffer 0 \[1024, 1040\) lies outside"),
        (frame_of({"buffers": [[0, 4]]}, PAD), r"buffer 0 \[0, 4\) lies outside"),
        (frame_of({"r": placeholder(index=1)}, b""), "names buffer 1, but the frame has 1 buffer$"),
        (frame_of({"r": placeholder(index="0")}), "names buffer '0', but the frame has 0 buffers"),
        (frame_of({"r": placeholder(index=True)}, b""), "names buffer True"),
        (frame_of({"r": [{"a": placeholder()}]}), "names buffer 0, but the frame has 0 buffers"),
        (
            frame_of({"r": placeholder("complex128")}, PAD),
            "buffer 0 has unknown dtype 'complex128'; known: bytes, bool, float32, float64",
        ),
        (frame_of({"r": placeholder("<f8")}, PAD), "unknown dtype '<f8'"),
        (
            frame_of({"r": placeholder("float64", [3])}, PAD),
            r"buffer 0 holds 16 bytes, but float64 of shape \[3\] needs 24",
        ),
        (
            frame_of({"r": placeholder("int16")}, b"abc"),
            "buffer 0 holds 3 bytes, not a whole number of 2-byte int16 items",
        ),
        (
            frame_of({"r": placeholder("uint8", [-1])}, b"a"),
            r"shape must be an array of non-negative integers, got \[-1\]",
        ),
        (
            frame_of({"r": placeholder("uint8", 1)}, b"a"),
            "shape must be an array of non-negative integers, got 1",
        ),
    ],
)
def test_bad_frames_say_what_is_wrong(frame: bytes, expected: str) -> None:
    with pytest.raises(InvalidMessage, match=expected):
        decode_frame(frame)


def test_a_frame_made_elsewhere_decodes() -> None:
    frame = frame_of({"r": placeholder("float64", [2, 1])}, struct.pack("<2d", 1.0, 2.0))
    out = decode_frame(frame)["r"]
    assert out.shape == (2, 1) and out.tolist() == [[1.0], [2.0]] and out.flags.writeable


def test_without_dtype_a_buffer_is_bytes_and_without_shape_one_dimensional() -> None:
    frame = frame_of({"a": placeholder(), "b": placeholder("int16", index=1)},
                     b"abc", struct.pack("<2h", -1, 7))  # fmt: skip
    out = decode_frame(frame)
    assert out["a"] == b"abc"
    assert out["b"].dtype == np.int16 and out["b"].tolist() == [-1, 7]


def test_a_buffer_may_be_listed_and_not_used() -> None:
    header, buffers = split_frame(frame_of({"r": 1}, PAD))
    assert header == {"r": 1, "buffers": [[1024, 16]]} and [b.nbytes for b in buffers] == [16]


# -- requests and replies -----------------------------------------------------------------


def test_a_request_frame_resolves_args_and_kwargs_and_echoes_the_placeholders() -> None:
    message = {
        "command": {"command": "run", "args": ["numpy:sum", np.arange(4.0)],
                    "kwargs": {"where": np.array([True, False, True, True]), "b": b"\x01"}},
        "id": "f",
        "binary": True,
        "extra": {"kept": [1]},
    }  # fmt: skip
    frame = encode_frame(message)
    assert frame is not None
    request = parse_frame(bytes(frame))
    assert (request.command, request.id, request.binary) == ("run", "f", True)
    assert request.args[0] == "numpy:sum" and np.array_equal(request.args[1], np.arange(4.0))
    assert request.args[1].flags.writeable
    assert request.kwargs["b"] == b"\x01" and request.kwargs["where"].dtype == np.bool_
    assert request.evt["command"]["args"][1] == {"$buffer": 0, "dtype": "float64", "shape": [4]}
    assert "buffers" not in request.evt and request.evt["extra"] == {"kept": [1]}


def test_a_bad_request_frame_is_rejected_with_what_could_be_read() -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_frame(b"\x00\x01")
    assert isinstance(caught.value.error, InvalidMessage)
    assert (caught.value.message, caught.value.id) == (None, None)
    frame = frame_of({"command": {"command": "run", "args": [{"$buffer": 3}]}, "id": "q"})
    with pytest.raises(RejectedMessage, match="names buffer 3") as caught:
        parse_frame(frame)
    assert caught.value.id == "q" and caught.value.message is not None


def test_a_request_frame_of_the_wrong_shape_is_rejected_like_json() -> None:
    with pytest.raises(RejectedMessage, match=r"command\.args must be an array"):
        parse_frame(frame_of({"command": {"command": "run", "args": 1}, "id": 1}))


def test_json_text_in_a_binary_frame_is_still_read_as_json() -> None:
    for text in [
        b'{"command": {"command": "ping"}, "id": "b"}',
        b'\r\n {"command": {"command": "ping"}, "id": "b"}',
    ]:
        request = parse_frame(text)
        assert (request.command, request.id) == ("ping", "b")
    with pytest.raises(RejectedMessage) as caught:
        parse_frame(b"{not json")
    assert type(caught.value.error).__name__ == "JSONDecodeError"


def test_replies_are_frames_only_for_binary_requests_with_arrays() -> None:
    plain = parse_message({"command": {"command": "run", "args": ["f"]}, "id": 1})
    binary = parse_message({"command": {"command": "run", "args": ["f"]}, "id": 1, "binary": True})
    array = np.arange(3)
    assert type(success_reply(plain, array)) is bytes
    assert type(success_reply(binary, [1])) is bytes
    reply = success_reply(binary, array)
    assert isinstance(reply, Frame)
    decoded = decode_frame(reply)
    assert np.array_equal(decoded["response"], array) and decoded["evt"]["binary"] is True
    progress = progress_message(1, {"a": array}, binary=True)
    assert isinstance(progress, Frame)
    assert decode_frame(progress)["tag"] == "progress"
    assert isinstance(partial_message(1, b"x", binary=True), Frame)
    assert type(partial_message(1, b"x")) is bytes


def test_importing_the_server_does_not_import_numpy() -> None:
    code = (
        "import sys, liaison.protocol.frames, liaison.protocol.replies, liaison.server.dispatch, "
        "liaison.server.transports.websocket.transport\n"
        "from liaison.protocol.frames import encode_frame, decode_frame\n"
        "frame = encode_frame({'r': b'x'})\n"
        "assert decode_frame(frame) == {'r': b'x'}\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_request_frame_without_references_skips_the_walk_and_one_with_one_does_not() -> None:
    plain = parse_frame(frame_of({"command": {"command": "run", "args": ["m:f", [[1.5]]]}}, PAD))
    assert plain.literal and plain.args == ["m:f", [[1.5]]]
    nested = frame_of(
        {"command": {"command": "run", "args": ["m:f", [[{"$buffer": 0, "dtype": "bytes"}]]],
                     "kwargs": {"k": {"l": [{"$buffer": 1, "dtype": "int16"}]}}}},
        b"abc", struct.pack("<2h", -1, 7),
    )  # fmt: skip
    request = parse_frame(nested)
    # placeholders are resolved, and what they become holds no reference: no walk
    assert request.literal and request.args[1] == [[b"abc"]]
    assert request.kwargs["k"]["l"][0].tolist() == [-1, 7]
    referring = frame_of({"command": {"command": "run", "args": ["m:f", "$x", {"$buffer": 0}]}},
                         b"abc")  # fmt: skip
    assert not parse_frame(referring).literal


@pytest.mark.parametrize("key", ["\\u0024buffer", "\\u0024\\u0062uffer", "\\u0024BUFFER"])
def test_a_placeholder_key_spelled_with_escapes_is_still_a_placeholder(key: str) -> None:
    raw = ('{"command": {"command": "run", "args": ["m:f", {"' + key + '": 0}]},'
           ' "buffers": [[1024, 3]]}').encode()  # fmt: skip
    frame = frame_of(None, b"abc", raw_header=raw)
    if key.endswith("BUFFER"):  # another key, kept as it is: JSON keys are case-sensitive
        assert parse_frame(frame).args[1] == {"$BUFFER": 0}
    else:
        assert parse_frame(frame).args[1] == b"abc"


def test_a_reference_in_a_frame_without_buffers_is_not_mistaken_for_literal() -> None:
    escaped = b'{"command": {"command": "run", "args": ["m:f", ["\\u0024x"]]}}'
    request = parse_frame(frame_of(None, raw_header=escaped))
    assert request.args[1] == ["$x"] and not request.literal
