"""The stdio framing (core/lines.py), in process: bytes in, messages out."""

from __future__ import annotations

import pytest

from liaison.protocol.errors import InvalidMessage
from liaison.protocol.frames import encode_frame
from liaison.protocol.lines import LineDecoder, binary_header, encode_text


def feed_bytewise(decoder: LineDecoder, data: bytes) -> list[object]:
    out: list[object] = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    return out


def test_text_lines_in_one_chunk_and_byte_by_byte() -> None:
    data = b'{"a": 1}\n{"b": "\xc3\xa9"}\n'
    assert LineDecoder(100).feed(data) == ['{"a": 1}', '{"b": "é"}']
    assert feed_bytewise(LineDecoder(100), data) == ['{"a": 1}', '{"b": "é"}']


def test_an_unfinished_line_waits_for_its_newline() -> None:
    decoder = LineDecoder(100)
    assert decoder.feed(b'{"a":') == []
    assert decoder.buffered == 5
    assert decoder.feed(b" 1}\n") == ['{"a": 1}']
    assert decoder.buffered == 0


def test_blank_lines_are_skipped_and_crlf_is_json_whitespace() -> None:
    assert LineDecoder(100).feed(b"\n  \n{}\r\n\r\n") == ["{}\r"]


def test_a_binary_frame_between_text_lines() -> None:
    frame = bytes(range(256)) + b"\n#5\n"  # raw bytes may hold newlines and '#'
    data = b"{}\n" + binary_header(len(frame)) + frame + b"\n{}\n"
    assert LineDecoder(1000).feed(data) == ["{}", frame, "{}"]
    assert feed_bytewise(LineDecoder(1000), data) == ["{}", frame, "{}"]


def test_an_empty_binary_frame() -> None:
    assert LineDecoder(10).feed(b"#0\n\n{}\n") == [b"", "{}"]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"#abc\n{}\n", "bad binary frame header '#abc'"),
        (b"#\n{}\n", "bad binary frame header '#'"),
        (b"#-3\n{}\n", "bad binary frame header '#-3'"),
        (b'\xff{"a": 1}\n{}\n', "a line is not valid UTF-8"),
    ],
)
def test_bad_input_is_one_error_and_the_next_line_is_read(data: bytes, text: str) -> None:
    error, after = LineDecoder(100).feed(data)
    assert isinstance(error, InvalidMessage)
    assert text in str(error)
    assert after == "{}"


def test_a_frame_without_its_newline_drops_the_rest_of_that_line() -> None:
    error, after = LineDecoder(100).feed(b"#2\nabc garbage\n{}\n")
    assert isinstance(error, InvalidMessage)
    assert "binary frame of 2 bytes is not followed by a newline" in str(error)
    assert after == "{}"


def test_an_oversized_line_is_reported_once_and_dropped_without_buffering_it() -> None:
    decoder = LineDecoder(10)
    errors = decoder.feed(b"x" * 8) + decoder.feed(b"x" * 8)
    assert len(errors) == 1
    assert "line of at least 16 bytes exceeds the limit of 10 bytes" in str(errors[0])
    assert decoder.feed(b"x" * 1000) == []
    assert decoder.buffered == 0
    assert decoder.feed(b"xx\n{}\n") == ["{}"]


def test_an_oversized_line_in_one_chunk() -> None:
    error, after = LineDecoder(10).feed(b"y" * 11 + b"\n{}\n")
    assert "line of 11 bytes exceeds" in str(error)
    assert after == "{}"


def test_an_oversized_frame_is_reported_at_its_header_and_skipped() -> None:
    decoder = LineDecoder(10)
    (error,) = decoder.feed(b"#20\n" + b"z" * 5)
    assert "binary frame of 20 bytes exceeds the limit of 10 bytes" in str(error)
    assert decoder.feed(b"\n" * 10) == []  # still inside the frame: its bytes, not lines
    assert decoder.feed(b"z" * 5 + b"\n" + b"{}\n") == ["{}"]
    assert decoder.buffered == 0


def test_encode_text_keeps_one_message_on_one_line() -> None:
    assert encode_text(b'{"a": 1}') == b'{"a": 1}\n'
    assert encode_text(b'{\n  "a": 1\n}') == b'{   "a": 1 }\n'
    assert encode_text(b"#5") == b" #5\n"  # a pushed string is never read as a header
    decoder = LineDecoder(100)
    assert decoder.feed(encode_text(b"#5") + encode_text(b"x\ny")) == [" #5", "x y"]


def test_a_real_frame_round_trips() -> None:
    frame = encode_frame({"tag": "response", "response": b"\n\n#1\n"})
    assert frame is not None
    line = binary_header(len(frame)) + bytes(frame) + b"\n"
    assert LineDecoder(1000).feed(line) == [bytes(frame)]


def test_an_absurd_frame_length_is_a_bad_header_and_the_next_line_is_read() -> None:
    # Skipped like an oversized frame, its bytes would never come: deaf until EOF.
    error, after = LineDecoder(100).feed(b"#99999999999999999999\n{}\n")
    assert isinstance(error, InvalidMessage)
    assert "bad binary frame header '#99999999999999999999'" in str(error)
    assert after == "{}"
    decoder = LineDecoder(100)
    (error,) = decoder.feed(b"#%d\n" % (2**40 + 1))
    assert "no frame is over 1099511627776 bytes" in str(error)
    assert decoder.feed(b"{}\n") == ["{}"]


def test_the_end_of_input_ends_the_last_line() -> None:
    decoder = LineDecoder(100)
    assert decoder.feed(b'{}\n{"last": 1}') == ["{}"]
    assert decoder.end() == ['{"last": 1}']
    assert decoder.end() == []
    inside_a_frame = LineDecoder(100)
    assert inside_a_frame.feed(b"#5\nabc") == []
    (error,) = inside_a_frame.end()
    assert "the input ended inside a binary frame of 5 bytes (3 came)" in str(error)
    assert LineDecoder(100).feed(b"  ") == [] and LineDecoder(100).end() == []
