"""The shapes of the messages liaison sends: replies, progress, partial results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .encoding import dumps, format_exception
from .errors import EncodingError
from .request import RejectedMessage, Request

if TYPE_CHECKING:
    from .frames import Frame

__all__ = ["REF_KEY", "encode", "error_reply", "partial_message", "progress_message",
           "rejection_reply", "request_error_reply", "success_reply"]  # fmt: skip

# A response that is a reference object (``"ref"`` requests) holds its name under this key.
REF_KEY = "$ref"


def encode(message: dict[str, Any], binary: bool = False) -> bytes | Frame:
    """``message`` as JSON text bytes; with ``binary``, as a :class:`Frame` if it holds
    arrays or bytes to send raw (docs/protocol.md, "Binary frames")."""
    if binary:
        from .frames import encode_frame  # imported on first use: start-up stays short

        frame = encode_frame(message)
        if frame is not None:
            return frame
    return dumps(message)


def success_reply(request: Request, value: Any) -> bytes | Frame:
    """The reply carrying ``value``; an ``EncodingError`` reply if ``value`` nests too deep.

    A message nested too deep to be echoed whole is echoed as ``{"id": id}``.
    """
    evt = request.message if request.echo else request.evt  # no property call if echoed
    message = {"response": value, "tag": "response", "evt": evt, "id": request.id}
    try:
        return encode(message, True) if request.binary else dumps(message)
    except EncodingError:
        message["evt"] = {"id": request.id}
    try:
        return encode(message, True) if request.binary else dumps(message)
    except EncodingError as error:  # the value itself: echo the message whole if it fits
        return error_reply(error, request.evt, request.id)


def error_reply(error: BaseException, evt: Any, id: Any) -> bytes:
    """A failure reply: 1.0's formatted ``error`` lines plus a structured ``exception``.

    Never raises: an ``evt`` nested too deep to be written is sent as ``{"id": id}``.
    """
    reply = {
        "error": format_exception(error),
        "tag": "error",
        "evt": evt,
        "id": id,
        "exception": {"type": type(error).__name__, "message": _message(error)},
    }
    try:
        return dumps(reply)
    except EncodingError:  # a message nested past what a reply can hold
        reply["evt"] = {"id": id}
        return dumps(reply)


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # user code's exception with a broken __str__
        return f"<unprintable {type(error).__name__}>"


def request_error_reply(request: Request, error: BaseException) -> bytes:
    return error_reply(error, request.evt, request.id)


def rejection_reply(rejected: RejectedMessage) -> bytes:
    return error_reply(rejected.error, rejected.message, rejected.id)


def progress_message(request_id: Any, data: Any, binary: bool = False) -> bytes | Frame:
    return encode({"tag": "progress", "id": request_id, "progress": data}, binary)


def partial_message(request_id: Any, item: Any, binary: bool = False) -> bytes | Frame:
    return encode({"tag": "partial", "id": request_id, "partial": item}, binary)
