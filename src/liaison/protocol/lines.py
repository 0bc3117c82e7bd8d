"""Messages on a byte stream, one per line: the stdio transport's framing, sans I/O.

The layout (docs/protocol.md, "The stdio transport")::

    {"command": ...}\\n          a text message: UTF-8 JSON, ended by a newline
    #N\\n <N bytes> \\n           a binary frame: a header line, N raw bytes, a newline

A text message never starts with ``#``, and holds no newline (:func:`encode_text`
sees to both), so the first byte of a line tells the two apart. Blank lines are
skipped. Both peers use the same rules, in each direction.
"""

from __future__ import annotations

from .errors import InvalidMessage

__all__ = ["BINARY_PREFIX", "LineDecoder", "binary_header", "encode_text"]

BINARY_PREFIX = b"#"
_NEWLINE = b"\n"
_HEADER_DIGITS = 20  # a header line longer than "#" and 20 digits is no header
# No frame is larger (1 TiB): a header announcing more is corrupt, and skipping bytes
# that will never come would leave the reader deaf until EOF.
LARGEST_FRAME = 2**40


def encode_text(data: bytes) -> bytes:
    """``data`` (JSON text) as one line, newline included.

    In valid JSON a newline can only be whitespace between tokens, so it becomes a
    space; text starting with ``#`` (no JSON can) gets a leading space, so it is never
    read as a binary header.
    """
    if _NEWLINE in data:
        data = data.replace(_NEWLINE, b" ")
    if data[:1] == BINARY_PREFIX:
        data = b" " + data
    return data + _NEWLINE


def binary_header(size: int) -> bytes:
    """The line announcing a binary frame of ``size`` bytes; the frame and a newline follow."""
    return b"#%d\n" % size


class LineDecoder:
    """Splits the bytes fed to it into messages.

    :meth:`feed` returns, in order, a ``str`` per text line, a ``bytes`` per binary
    frame, and an :class:`InvalidMessage` per piece of input that is neither (a bad
    header, invalid UTF-8, a message over ``max_size`` bytes). After an error the next
    line is read as usual: nothing is lost but the bad message, and memory stays
    bounded by ``max_size`` plus one read. A frame over ``max_size`` is skipped unread,
    up to ``LARGEST_FRAME`` bytes; a header announcing more is a bad header.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no newline
        self._frame_size: int | None = None  # set while a binary frame's bytes come in
        self._skipping: int | None = None  # bytes left to drop of an oversized frame
        self._skipping_line = False  # dropping an oversized line up to its newline

    @property
    def buffered(self) -> int:
        """Bytes held for a message not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[str | bytes | InvalidMessage]:
        self._buffer += data
        messages: list[str | bytes | InvalidMessage] = []
        while self._step(messages):
            pass
        return messages

    def end(self) -> list[str | bytes | InvalidMessage]:
        """The input has ended: its last line, if it had no newline, as a message; an
        :class:`InvalidMessage` if it ended inside a binary frame. Then start afresh."""
        out: list[str | bytes | InvalidMessage] = []
        if self._frame_size is not None:
            came = len(self._buffer)
            message = f"the input ended inside a binary frame of {self._frame_size} bytes"
            out.append(InvalidMessage(f"{message} ({came} came)"))
        elif self._skipping is None and not self._skipping_line:
            line = bytes(self._buffer)
            if line[:1] == BINARY_PREFIX:
                out.append(InvalidMessage("the input ended inside a binary frame header"))
            elif line and not line.isspace():
                self._take_text(line, out)
        self._buffer.clear()
        self._scanned = 0
        self._frame_size = self._skipping = None
        self._skipping_line = False
        return out

    def _step(self, out: list[str | bytes | InvalidMessage]) -> bool:
        """Take one message (or one dropped piece) off the buffer; False if incomplete."""
        buffer = self._buffer
        if self._skipping is not None:
            dropped = min(self._skipping, len(buffer))
            del buffer[:dropped]
            self._skipping -= dropped
            if self._skipping:
                return False
            self._skipping = None
            return True
        if self._frame_size is not None:
            return self._take_frame(out)
        end = buffer.find(_NEWLINE, self._scanned)
        if end < 0:
            self._scanned = len(buffer)
            if self._scanned > self.max_size and not self._skipping_line:
                self._skipping_line = True
                out.append(_too_large(f"line of at least {self._scanned} bytes", self.max_size))
            if self._skipping_line:
                del buffer[:]
                self._scanned = 0
            return False
        line = _take(buffer, end, 1)
        self._scanned = 0
        if self._skipping_line:  # the end of a line already reported
            self._skipping_line = False
        elif line[:1] == BINARY_PREFIX:
            self._start_frame(line, out)
        elif line and not line.isspace():
            self._take_text(line, out)
        return True

    def _take_text(self, line: bytes, out: list[str | bytes | InvalidMessage]) -> None:
        if len(line) > self.max_size:
            out.append(_too_large(f"line of {len(line)} bytes", self.max_size))
            return
        try:
            out.append(line.decode())
        except UnicodeDecodeError as error:
            out.append(
                InvalidMessage(f"a line is not valid UTF-8: {error.reason} at byte {error.start}")
            )

    def _start_frame(self, line: bytes, out: list[str | bytes | InvalidMessage]) -> None:
        digits = line[1:].rstrip(b"\r")
        if not digits.isdigit() or len(digits) > _HEADER_DIGITS:
            shown = line[:40].decode(errors="replace")
            out.append(
                InvalidMessage(f"bad binary frame header {shown!r}: expected '#' and a byte count")
            )
            return
        size = int(digits)
        if size > max(LARGEST_FRAME, self.max_size):
            out.append(
                InvalidMessage(
                    f"bad binary frame header '#{size}': no frame is over {LARGEST_FRAME} "
                    "bytes; reading on at the next line"
                )
            )
            return
        if size > self.max_size:
            out.append(_too_large(f"binary frame of {size} bytes", self.max_size))
            self._skipping = size + 1  # the frame and its newline
            return
        self._frame_size = size

    def _take_frame(self, out: list[str | bytes | InvalidMessage]) -> bool:
        size = self._frame_size
        assert size is not None
        buffer = self._buffer
        if len(buffer) <= size:
            return False
        self._frame_size = None
        ended = buffer[size] == _NEWLINE[0]
        frame = _take(buffer, size, 1 if ended else 0)
        if ended:
            out.append(frame)
        else:
            # The byte count was wrong: what follows cannot be trusted up to the next line.
            out.append(InvalidMessage(f"binary frame of {size} bytes is not followed by a newline"))
            self._skipping_line = True
        return True


def _take(buffer: bytearray, size: int, separator: int) -> bytes:
    """The first ``size`` bytes of ``buffer``, removed with ``separator`` more: one copy."""
    with memoryview(buffer) as view:
        taken = bytes(view[:size])
    del buffer[: size + separator]  # cheap: a bytearray drops its head by moving its start
    return taken


def _too_large(what: str, limit: int) -> InvalidMessage:
    return InvalidMessage(f"{what} exceeds the limit of {limit} bytes (--max-message-size)")
