"""The sans-I/O core: messages to requests, the Companion, and replies to bytes."""

from .companion import Companion
from .encoding import dumps
from .errors import (
    CommandCancelled,
    CommandTimedOut,
    ExecutionError,
    InvalidArguments,
    InvalidMessage,
    InvalidTarget,
    LiaisonError,
    ModuleNotAllowed,
    NameNotFound,
    RequestError,
    ResolutionError,
    UnknownCommand,
)
from .request import RejectedMessage, Request, parse_message

__all__ = [
    "CommandCancelled",
    "CommandTimedOut",
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
    "UnknownCommand",
    "dumps",
    "parse_message",
]
