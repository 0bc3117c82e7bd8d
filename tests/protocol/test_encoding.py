"""Results of every kind encode to JSON that JSON.parse accepts; nothing makes encoding fail."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liaison.core import dumps


def roundtrip(value: Any) -> Any:
    text = dumps(value).decode()
    # Python's json with allow_nan=False is as strict as JSON.parse about NaN/Infinity.
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Colour(enum.Enum):
    RED = "red"


class WithGetJSON:
    def getJSON(self) -> dict[str, int]:
        return {"custom": 1}


class BrokenGetJSON:
    def getJSON(self) -> None:
        raise RuntimeError("boom")

    def __str__(self) -> str:
        return "broken-but-printable"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, "a"), [1, "a"]),
        (namedtuple("P", "a b")(1, 2), [1, 2]),
        (np.arange(4).reshape(2, 2), [[0, 1], [2, 3]]),
        (np.arange(6).reshape(2, 3)[:, 1], [1, 4]),  # not C-contiguous
        (np.float32(1.5), 1.5),
        (np.int64(7), 7),
        (np.array([1.5, np.nan, np.inf]), [1.5, None, None]),
        (np.array(["a", "b"]), ["a", "b"]),
        (float("nan"), None),
        (-math.inf, None),
        (b"\x00\xff", "AP8="),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
        (Path("/tmp/x"), "/tmp/x"),
        ({3}, [3]),
        (Point(1, 2.5), {"x": 1, "y": 2.5}),
        (Colour.RED, "red"),
        (WithGetJSON(), {"custom": 1}),
        (BrokenGetJSON(), "broken-but-printable"),
        (Unprintable(), "<unprintable Unprintable>"),
        (json, "python:///json"),
        (json.dumps, "python:///json:dumps"),
        (json.JSONDecoder, "python:///json.decoder:JSONDecoder"),
        ({1: "a", (1, 2): "b"}, {"1": "a", "(1, 2)": "b"}),
        (2**80, 2**80),  # exact, as it is read (docs/protocol.md, "Numbers")
        (complex(1, 2), [1.0, 2.0]),
        ((x for x in range(3)), [0, 1, 2]),
    ],
)
def test_values_encode(value: Any, expected: Any) -> None:
    assert roundtrip(value) == expected


def test_a_failed_fast_try_consumes_nothing() -> None:
    # dumps tries orjson without its fallback first: an iterator met before the key
    # that makes that try fail must still be whole for the second.
    assert roundtrip({"a": iter([1, 2]), 1: "b"}) == {"a": [1, 2], "1": "b"}


def test_scipy_result_tuples_are_arrays() -> None:
    from scipy import stats

    result = stats.ttest_ind(
        [0.5982758, 0.67019733, 0.68617796, 0.28764011],
        [0.41138649, 1.67023998, 1.0420896, 1.49671732],
        equal_var=False,
    )
    assert roundtrip(result) == [-2.008309436290938, 0.1217799378120249]


def test_exceptions_encode_as_their_formatted_text() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError as error:
        text = roundtrip(error)
    assert "ZeroDivisionError: division by zero" in text


def test_cycles_do_not_break_encoding() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert roundtrip({"loop": loop})["loop"][1].startswith("<circular reference")
