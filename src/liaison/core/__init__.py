"""The sans-I/O core: messages to requests, the Companion, and replies to bytes."""

from ..protocol.encoding import dumps
from ..protocol.errors import (
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
from ..protocol.request import RejectedMessage, Request, parse_message
from .companion import Companion

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
