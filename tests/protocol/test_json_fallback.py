"""Without orjson (Pyodide) the encoding is the standard library's, with the same bytes:
both paths run here, in one process, on generated protocol values (issue 22)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import subprocess
import sys
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liaison.protocol import encoding
from liaison.protocol.encoding import dumps, fallback_dumps, fallback_loads, loads
from liaison.protocol.errors import EncodingError
from liaison.protocol.json_fallback import MAX_DEPTH


class Colour(enum.Enum):
    RED = "red"
    PAIR = (1, 2)


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: Any
    _hidden: int = 0


ZONES = st.one_of(
    st.none(),
    st.just(datetime.timezone.utc),
    st.integers(-23 * 3600, 23 * 3600).map(
        lambda s: datetime.timezone(datetime.timedelta(seconds=s))
    ),
)
DATES = st.one_of(
    st.dates(),
    st.datetimes(timezones=ZONES),
    st.times(),
    st.times(timezones=st.just(datetime.timezone.utc)),
)
FLOATS = st.one_of(
    st.floats(),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([1e16, 1e15, 1e-5, 1e-6, -0.0, 5e-324, 1.7976931348623157e308, 2.0**63]),
)
INTEGERS = st.one_of(
    st.integers(-(2**63), 2**64 - 1), st.integers(-(2**200), 2**200), st.booleans()
)
TEXT = st.one_of(
    st.text(), st.text(alphabet=st.characters(categories=["Cs", "Ll", "Cc"]), max_size=6)
)  # lone surrogates too
NUMPY_ARRAYS = hnp.arrays(
    dtype=st.sampled_from(
        [
            "bool",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
            "complex64",
        ]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
)
NUMPY_VALUES = st.one_of(
    NUMPY_ARRAYS,
    NUMPY_ARRAYS.filter(lambda a: a.ndim > 0 and a.shape[0] > 1).map(lambda a: a[::-1]),
    NUMPY_ARRAYS.filter(lambda a: a.size > 0).map(lambda a: a.flat[0]),  # scalars
)


# orjson 3.13 writes a time key of 10,000 to 99,999 us a zero short (`00:00:00.10000`)
# and a key's offset of 22:59:30 as `+22:60`; as values, liaison writes dates itself
# (json_fallback.date_text), but keys are orjson's: those keys are left out here.
def orjson_writes_right(key: Any) -> bool:
    if isinstance(key, datetime.time):
        return not 10_000 <= key.microsecond < 100_000
    offset = key.utcoffset() if isinstance(key, datetime.datetime) else None
    return offset is None or offset.total_seconds() % 60 == 0


KEY_DATES = DATES.filter(orjson_writes_right)
KEYS = st.one_of(
    st.text(max_size=5),
    st.integers(-(2**70), 2**70),
    FLOATS,
    st.booleans(),
    st.none(),
    KEY_DATES,
    st.tuples(st.integers()),
    st.sampled_from(list(Colour) + list(Level)),
    st.uuids(),
)
LEAVES = st.one_of(
    st.none(),
    INTEGERS,
    FLOATS,
    TEXT,
    DATES,
    st.binary(max_size=8),
    st.uuids(),
    st.sampled_from(list(Colour) + list(Level)),
    st.complex_numbers(allow_nan=False),
    st.builds(PurePosixPath, st.text(max_size=5)),
    NUMPY_VALUES,
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
        st.frozensets(st.integers(), max_size=3),
        st.builds(Point, children),
    ),
    max_leaves=12,
)


def nest(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


def both(value: Any) -> tuple[bytes | str, bytes | str]:
    """What dumps (orjson first) and the fallback alone give, or the error each raised."""
    results = []
    for encode in (dumps, fallback_dumps):
        try:
            results.append(encode(value))
        except EncodingError as error:
            results.append(f"EncodingError: {error}")
    return results[0], results[1]


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_the_fallback_writes_what_orjson_writes(value: Any) -> None:
    with_orjson, fallback = both(value)
    assert with_orjson == fallback


def holds_tuple(value: Any) -> bool:
    if isinstance(value, tuple):
        return True
    if isinstance(value, enum.Enum):
        return holds_tuple(value.value)
    if isinstance(value, (list, Point)):
        return any(holds_tuple(item) for item in (value if isinstance(value, list) else [value.x]))
    return isinstance(value, dict) and any(holds_tuple(item) for item in value.values())


# orjson 3.13 does not count tuples against its depth limit (and corrupts its heap past
# ~1000 nested tuples): only lists and dicts here.
@settings(max_examples=100, deadline=None)
@given(
    VALUES.filter(lambda value: not holds_tuple(value)), st.integers(MAX_DEPTH - 4, MAX_DEPTH + 2)
)
def test_both_stop_at_the_same_depth(value: Any, levels: int) -> None:
    with_orjson, fallback = both(nest(value, levels))
    assert with_orjson == fallback


def test_one_datetime_one_encoding() -> None:
    # The datetime was written `2024-01-02 03:04:05` when a tuple key sent the whole
    # value down the slow path (issue 23, item 7).
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert dumps([when]) == b'["2024-01-02T03:04:05"]'
    assert dumps([when, {(1, 2): "tuple key"}]) == b'["2024-01-02T03:04:05",{"(1, 2)":"tuple key"}]'
    assert dumps([when, 2**70]) == b'["2024-01-02T03:04:05",1180591620717411303424]'


def test_what_orjson_refuses_is_still_written() -> None:
    assert dumps("\ud800x") == b'"\\ud800x"'
    loop: list[Any] = [1]
    loop.append(loop)
    assert dumps(loop) == b'[1,"<circular reference to list>"]'
    assert dumps({(1,): 1, 2**70: 2}) == b'{"(1,)":1,"1180591620717411303424":2}'
    with pytest.raises(EncodingError):
        dumps(nest(0, MAX_DEPTH + 1))
    assert dumps(nest(0, MAX_DEPTH)) == b"[" * MAX_DEPTH + b"0" + b"]" * MAX_DEPTH


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**100), 2**100) | FLOATS | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


def read(decode: Any, text: str | bytes) -> str:
    """The decoded value's repr (tells -0.0 from 0, 1 from 1.0), or that it failed."""
    try:
        return repr(decode(text))
    except json.JSONDecodeError:
        return "JSONDecodeError"


@settings(max_examples=400, deadline=None)
@given(st.builds(lambda v, ascii: json.dumps(v, ensure_ascii=ascii), JSON_VALUES, st.booleans()))
def test_the_fallback_reads_what_the_liaison_reads(text: str) -> None:
    assert read(loads, text) == read(fallback_loads, text)
    assert read(loads, text.encode("utf-8", "surrogatepass")) == read(
        fallback_loads, text.encode("utf-8", "surrogatepass")
    )


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.binary(max_size=30),
        st.text(alphabet='[]{}",:0123456789.eE+-tnrufalse \\u', max_size=30),
    )
)
def test_both_refuse_the_same_text(text: str | bytes) -> None:
    assert read(loads, text) == read(fallback_loads, text)


@pytest.mark.parametrize(
    "text", ["NaN", "[Infinity]", "-Infinity", '"\\ud800"', '["\\udc00"]', b'"\xff"', "\ufeff{}"]
)
def test_what_orjson_refuses_the_fallback_refuses(text: str | bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)
    with pytest.raises(json.JSONDecodeError):
        fallback_loads(text)


def test_integers_past_64_bits_are_read_exactly() -> None:
    assert loads("[18446744073709551616, -9223372036854775809, 1.5]") == [2**64, -(2**63) - 1, 1.5]
    assert loads("[0.000123456789012345678901, 12345678901234567890]")[1] == 12345678901234567890
    assert loads('["12345678901234567890123"]') == ["12345678901234567890123"]
    assert type(loads("1" + "0" * 400)) is int


def test_without_orjson_the_fallback_is_the_encoding() -> None:
    # A child where `import orjson` fails, as in Pyodide: the choice is made at import.
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from liaison.protocol import encoding\n"
        "assert encoding.orjson is None and encoding.dumps is encoding.fallback_dumps\n"
        "from liaison.core.routing import route\n"
        "from liaison.core import Companion\n"
        'action, reply = route(\'{"command": {"command": "nope"}, "id": 1}\', Companion())\n'
        "sys.stdout.write(reply.decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, check=True
    ).stdout
    reply = json.loads(out)
    assert reply["exception"]["type"] == "UnknownCommand" and reply["id"] == 1
    assert encoding.orjson is not None  # here, CPython: orjson stays the fast path


def test_format_float_is_orjsons() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000),
            rng.integers(0, 2**63, 2000).astype(np.uint64).view(np.float64),
        ]
    )
    for value in values.tolist():
        if math.isfinite(value):
            assert fallback_dumps(value) == orjson.dumps(value), value
