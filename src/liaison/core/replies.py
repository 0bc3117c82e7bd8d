"""The shapes of the messages liaison sends: replies, progress, partial results."""

from __future__ import annotations

from typing import Any

from .encoding import dumps, format_exception
from .request import RejectedMessage, Request

__all__ = ["error_reply", "partial_message", "progress_message", "rejection_reply",
           "success_reply"]  # fmt: skip


def success_reply(request: Request, value: Any) -> bytes:
    return dumps({"response": value, "tag": "response", "evt": request.evt, "id": request.id})


def error_reply(error: BaseException, evt: Any, id: Any) -> bytes:
    """A failure reply: 1.0's formatted ``error`` lines plus a structured ``exception``."""
    return dumps(
        {
            "error": format_exception(error),
            "tag": "error",
            "evt": evt,
            "id": id,
            "exception": {"type": type(error).__name__, "message": str(error)},
        }
    )


def request_error_reply(request: Request, error: BaseException) -> bytes:
    return error_reply(error, request.evt, request.id)


def rejection_reply(rejected: RejectedMessage) -> bytes:
    return error_reply(rejected.error, rejected.message, rejected.id)


def progress_message(request_id: Any, data: Any) -> bytes:
    return dumps({"tag": "progress", "id": request_id, "progress": data})


def partial_message(request_id: Any, item: Any) -> bytes:
    return dumps({"tag": "partial", "id": request_id, "partial": item})
