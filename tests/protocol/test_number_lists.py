"""List placeholders: a number array sent raw becomes the list its JSON text would give."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from liaison.core import InvalidMessage, RejectedMessage
from liaison.protocol.encoding import loads
from liaison.protocol.frames import decode_frame
from liaison.protocol.number_lists import json_integer, native_items
from liaison.protocol.request import parse_frame

from .test_frames import frame_of

# (float64 value, what JavaScript's JSON.stringify prints for it: node's own output)
JS_PRINTS = [
    (0.0, "0"),
    (-0.0, "0"),
    (3.0, "3"),
    (-7.0, "-7"),
    (2.0**31, "2147483648"),
    (2.0**53, "9007199254740992"),
    (2.0**53 + 2, "9007199254740994"),
    (-(2.0**53) - 2, "-9007199254740994"),
    (2.0**60, "1152921504606847000"),
    (2.0**63, "9223372036854776000"),
    (-(2.0**63), "-9223372036854776000"),
    (2.0**64, "18446744073709552000"),
    (1.5e20, "150000000000000000000"),
    (123456789012345680000.0, "123456789012345680000"),
    (1e21 - 131072, "999999999999999900000"),
    (1e21, "1e+21"),
    (0.5, "0.5"),
    (5e-324, "5e-324"),
    (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    (math.nan, "null"),
    (math.inf, "null"),
    (-math.inf, "null"),
]


def js_indices(values: list[float]) -> tuple[list[int], list[int]]:
    """The 'ints' and 'nulls' a JavaScript client lists, by JavaScript's rules."""
    ints = [i for i, x in enumerate(values) if math.isfinite(x) and x % 1 == 0 and abs(x) < 1e21]
    nulls = [i for i, x in enumerate(values) if not math.isfinite(x)]
    return ints, nulls


def list_frame(values: list[float], **fields: Any) -> bytes:
    """A request frame whose one argument is ``values`` as a float64 list placeholder
    with the indices JavaScript would list; ``fields`` override the placeholder's."""
    ints, nulls = js_indices(values)
    spec: dict[str, Any] = {"$buffer": 0, "dtype": "float64", "as": "list", "ints": 1,
                            "nulls": 2}  # fmt: skip
    spec.update(fields)
    spec = {key: value for key, value in spec.items() if value is not None}
    message = {"command": {"command": "run", "args": ["f", spec]}, "id": "n"}
    buffers = [struct.pack(f"<{len(values)}d", *values), struct.pack(f"<{len(ints)}I", *ints),
               struct.pack(f"<{len(nulls)}I", *nulls)]  # fmt: skip
    return frame_of(message, *buffers)


def test_every_value_becomes_what_its_json_text_gives() -> None:
    values = [value for value, _ in JS_PRINTS]
    expected = loads("[" + ",".join(text for _, text in JS_PRINTS) + "]")
    got = parse_frame(list_frame(values)).args[1]
    assert [(type(x), x) for x in got] == [(type(x), x) for x in expected]
    assert repr(got) == repr(expected)  # also tells 0.0 from -0.0


@pytest.mark.parametrize(("value", "text"), [p for p in JS_PRINTS if p[1][0] != "n" and
                                             "e" not in p[1] and "." not in p[1]])  # fmt: skip
def test_json_integer_reads_as_the_liaison_does(value: float, text: str) -> None:
    expected = loads(text)
    assert type(json_integer(value)) is type(expected) and json_integer(value) == expected


def test_an_int32_list_is_all_ints_and_the_request_is_literal() -> None:
    message = {"command": {"command": "run", "args": ["f", {"$buffer": 0, "dtype": "int32",
                                                           "as": "list"}]}}  # fmt: skip
    request = parse_frame(frame_of(message, struct.pack("<3i", -(2**31), 0, 2**31 - 1)))
    assert request.args[1] == [-(2**31), 0, 2**31 - 1]
    assert all(type(x) is int for x in request.args[1])
    assert request.literal  # nothing but placeholders held a `$`: no reference walk


def test_a_reference_beside_a_list_is_still_resolved() -> None:
    spec = {"$buffer": 0, "dtype": "int32", "as": "list"}
    message = {"command": {"command": "run", "args": ["f", "$x", spec]}}
    assert not parse_frame(frame_of(message, struct.pack("<i", 1))).literal


def test_without_index_buffers_every_item_is_a_float() -> None:
    got = parse_frame(list_frame([1.0, math.nan], ints=None, nulls=None)).args[1]
    assert got[0] == 1.0 and type(got[0]) is float and math.isnan(got[1])


def test_empty_lists_and_nested_placeholders_decode() -> None:
    spec = {"$buffer": 0, "dtype": "float64", "as": "list"}
    assert decode_frame(frame_of({"r": [{"k": spec}]}, b""))["r"] == [{"k": []}]


def test_big_endian_items_are_swapped() -> None:
    data = memoryview(struct.pack(">2d", 1.5, -2.0))
    assert native_items("d", data, "big").tolist() == [1.5, -2.0]
    assert native_items("d", memoryview(struct.pack("<d", 1.5)), "little").tolist() == [1.5]


def placeholder(**fields: Any) -> dict[str, Any]:
    return {"$buffer": 0, "dtype": "float64", "as": "list", **fields}


F64 = struct.pack("<2d", 0.5, 2.0)
INDEX = struct.pack("<I", 1)


@pytest.mark.parametrize(
    ("spec", "buffers", "expected"),
    [
        (placeholder(**{"as": "tuple"}), [F64], "buffer 0 has unknown 'as' 'tuple'; known: 'list'"),
        (
            placeholder(dtype="float32"),
            [F64],
            "list of dtype 'float32'; a list placeholder's dtype is one of 'float64', 'int32'",
        ),
        (placeholder(dtype=None), [F64], "list of dtype None"),
        (placeholder(), [b"abc"], "holds 3 bytes, not a whole number of 8-byte float64 items"),
        (placeholder(shape=[3]), [F64], r"list of 2 items, but its shape is \[3\]"),
        (placeholder(shape=[True, 2]), [F64], "but its shape is"),
        (placeholder(**{"$buffer": 1}), [F64], "names buffer 1, but the frame has 1 buffer"),
        (placeholder(ints=5), [F64], "'ints' names buffer 5, but the frame has 1 buffer"),
        (placeholder(nulls="1"), [F64, INDEX], "'nulls' names buffer '1'"),
        (placeholder(ints=1), [F64, b"abc"], "'ints' buffer 1 holds 3 bytes, not a whole number"),
        (placeholder(ints=1), [F64, struct.pack("<I", 2)], "holds index 2, past the list's 2"),
        (placeholder(ints=1), [F64, struct.pack("<I", 0)], "item 0, listed in 'ints', is 0.5"),
        (
            placeholder(dtype="int32", ints=1),
            [F64, INDEX],
            "'ints' is for float64 lists, not int32",
        ),
    ],
)
def test_bad_list_placeholders_say_what_is_wrong(
    spec: dict[str, Any], buffers: list[bytes], expected: str
) -> None:
    spec = {key: value for key, value in spec.items() if value is not None or key == "dtype"}
    message = {"command": {"command": "run", "args": ["f", spec]}, "id": 7}
    with pytest.raises(RejectedMessage, match=expected) as caught:
        parse_frame(frame_of(message, *buffers))
    assert isinstance(caught.value.error, InvalidMessage) and caught.value.id == 7


def test_a_non_finite_item_listed_in_ints_is_refused() -> None:
    message = {"command": {"command": "run", "args": ["f", placeholder(ints=1)]}}
    with pytest.raises(RejectedMessage, match="item 0, listed in 'ints', is inf"):
        parse_frame(frame_of(message, struct.pack("<d", math.inf), struct.pack("<I", 0)))
