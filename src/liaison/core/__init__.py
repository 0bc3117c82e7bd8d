"""The sans-I/O core: messages to requests, the Companion, and replies to bytes."""

from .companion import Companion
from .encoding import dumps
from .errors import (
    CancelledError,
    ExecutionError,
    InvalidArguments,
    InvalidMessage,
    InvalidTarget,
    LiaisonError,
    ModuleNotAllowed,
    NameNotFound,
    RequestError,
    ResolutionError,
    TimeoutError,
    UnknownCommand,
)
from .request import RejectedMessage, Request, parse_message

__all__ = [
    "CancelledError",
    "Companion",
    "ExecutionError",
    "InvalidArguments",
    "InvalidMessage",
    "InvalidTarget",
    "LiaisonError",
    "ModuleNotAllowed",
    "NameNotFound",
    "RejectedMessage",
    "Request",
    "RequestError",
    "ResolutionError",
    "TimeoutError",
    "UnknownCommand",
    "dumps",
    "parse_message",
]
