"""Binary frames over real sockets: replies with arrays, requests carrying arrays, bad frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from conftest import RawClient
from liaison.protocol.frames import decode_frame, encode_frame


def binary_reply(client: RawClient, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message`` (as a binary frame if it holds arrays or bytes); its binary reply."""
    frame = encode_frame(message)
    client.send_raw(frame if frame is not None else orjson.dumps(message).decode())
    data = client.recv(10)
    assert isinstance(data, bytes), f"expected a binary frame, got text {data[:200]!r}"
    return decode_frame(data)


def text_reply(client: RawClient, message: dict[str, Any]) -> dict[str, Any]:
    frame = encode_frame(message)
    client.send_raw(frame if frame is not None else orjson.dumps(message).decode())
    data = client.recv(10)
    assert isinstance(data, str), f"expected a text frame, got {len(data)} bytes"
    reply: dict[str, Any] = orjson.loads(data)
    return reply


def test_an_array_result_comes_as_one_binary_frame(client: RawClient) -> None:
    message = client.command("run", "numpy:arange", 1_000_000, binary=True, id="arange")
    reply = binary_reply(client, message)
    assert reply["tag"] == "response" and reply["id"] == "arange"
    response = reply["response"]
    assert response.dtype == np.int64 and np.array_equal(response, np.arange(1_000_000))
    assert reply["evt"]["command"]["args"] == ["numpy:arange", 1_000_000]


def test_without_binary_the_same_result_is_json_text(client: RawClient) -> None:
    reply = text_reply(client, client.command("run", "numpy:arange", 1_000_000))
    assert reply["response"] == list(range(1_000_000))


def test_binary_results_without_arrays_are_json_text(client: RawClient) -> None:
    reply = text_reply(client, client.command("run", "builtins:abs", -2, binary=True))
    assert reply["response"] == 2
    error = text_reply(client, client.command("run", "numpy:nope", binary=True))
    assert error["exception"]["type"] == "NameNotFound"


def test_shapes_dtypes_and_bytes_in_nested_results(client: RawClient) -> None:
    value = {
        "m": np.arange(6, dtype=np.float32).reshape(2, 3),
        "flags": np.array([True, False]),
        "blob": b"\x00\x01\xff",
        "empty": np.zeros((0, 2), dtype=np.uint16),
        "scalar": np.array(3.5),
        "words": np.array(["a", "b"]),
    }
    reply = binary_reply(client, client.command("run", "remote_helpers:echo", value, binary=True))
    out = reply["response"]
    for key in ("m", "flags", "empty", "scalar"):
        assert out[key].dtype == value[key].dtype and np.array_equal(out[key], value[key]), key
    assert out["blob"] == b"\x00\x01\xff"
    assert out["words"] == ["a", "b"]  # not numeric: JSON as always


def test_a_request_frame_carries_array_arguments(client: RawClient) -> None:
    array = np.arange(10.0)
    reply = text_reply(client, client.command("run", "numpy:sum", array, binary=True))
    assert reply["response"] == 45.0
    placeholder = {"$buffer": 0, "dtype": "float64", "shape": [10]}
    assert reply["evt"]["command"]["args"] == ["numpy:sum", placeholder]
    assert "buffers" not in reply["evt"]


def test_array_arguments_arrive_as_writable_arrays_and_bytes_as_bytes(client: RawClient) -> None:
    array = np.arange(4, dtype=np.int16).reshape(2, 2)
    info = text_reply(client, client.command("run", "remote_helpers:kind_of", array))["response"]
    assert info == {"type": "ndarray", "dtype": "int16", "shape": [2, 2], "writeable": True}
    info = text_reply(client, client.command("run", "remote_helpers:kind_of", b"xy"))["response"]
    assert info == {"type": "bytes"}


def test_arrays_in_kwargs_and_a_round_trip_through_store(client: RawClient) -> None:
    weights = np.array([0.0, 1.0, 3.0])
    message = client.command(
        "run", "numpy:average", np.array([1.0, 2.0, 4.0]), kwargs={"weights": weights}
    )
    reply = text_reply(client, message)
    assert reply["response"] == (2.0 + 12.0) / 4.0
    data = np.random.default_rng(0).random((50, 40))
    assert text_reply(client, client.command("store", "stored", data))["response"] == "stored"
    back = binary_reply(client, client.command("get", "stored", binary=True, echo=False))
    assert np.array_equal(back["response"], data)


def test_streamed_items_and_progress_of_a_binary_request_are_frames(client: RawClient) -> None:
    client.send(client.command("run", "remote_helpers:arrays", 3, stream=True, binary=True, id="s"))
    partials = [decode_frame(client.recv(10)) for _ in range(3)]
    assert [p["tag"] for p in partials] == ["partial"] * 3
    for i, partial in enumerate(partials):
        assert partial["id"] == "s" and np.array_equal(partial["partial"], np.arange(i))
    assert orjson.loads(client.recv(10))["response"] == 3
    client.send(client.command("run", "remote_helpers:array_progress", 5, binary=True, id="p"))
    progress = decode_frame(client.recv(10))
    assert progress["tag"] == "progress" and progress["id"] == "p"
    assert np.array_equal(progress["progress"]["values"], np.arange(5))
    assert orjson.loads(client.recv(10))["response"] == "done"


def test_a_malformed_binary_frame_gets_an_error_reply_and_the_connection_goes_on(
    client: RawClient,
) -> None:
    for frame, text in [
        (b"\x00\x01", "too short"),
        (b"\x10\x00\x00\x00[1]", "header length is 16 bytes, but only 3 follow it"),
        (b"\x03\x00\x00\x00[1]", "header must be a JSON object, got array"),
    ]:
        client.send_raw(frame)
        reply = orjson.loads(client.recv(10))
        assert reply["exception"]["type"] == "InvalidMessage"
        assert text in reply["exception"]["message"]
        assert (reply["evt"], reply["id"]) == (None, None)
    assert client.call("ping") == "pong"


def test_a_bad_placeholder_is_an_error_reply_with_the_id(client: RawClient) -> None:
    placeholder = {"$buffer": 0, "dtype": "float128"}
    message = {"command": {"command": "run", "args": ["numpy:sum", placeholder]}, "id": "bad"}
    header = orjson.dumps({**message, "buffers": [[256, 16]]})
    frame = len(header).to_bytes(4, "little") + header
    client.send_raw(frame + bytes(256 - len(frame)) + bytes(16))
    reply = orjson.loads(client.recv(10))
    assert reply["id"] == "bad" and reply["exception"]["type"] == "InvalidMessage"
    assert "unknown dtype 'float128'" in reply["exception"]["message"]
    assert client.call("ping") == "pong"
