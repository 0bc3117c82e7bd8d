"""The exceptions of liaison's own making, one base class and a subclass per reply case.

Each maps to one error reply whose ``exception.type`` is the class's ``__name__``.
"""

from __future__ import annotations

__all__ = [
    "CommandCancelled",
    "CommandTimedOut",
    "EncodingError",
    "ExecutionError",
    "InvalidArguments",
    "InvalidMessage",
    "InvalidTarget",
    "LiaisonError",
    "LiaisonInterrupt",
    "ModuleNotAllowed",
    "NameNotFound",
    "RequestError",
    "ResolutionError",
    "UnknownCommand",
    "json_type_name",
]


class LiaisonError(Exception):
    """Base class of every error liaison itself raises."""


class RequestError(LiaisonError):
    """A message could not be turned into a request."""


class InvalidMessage(RequestError):
    """The message is JSON but not of the documented shape."""


class UnknownCommand(RequestError):
    """``command.command`` names no command."""


class InvalidArguments(RequestError):
    """The arguments do not fit the command's signature."""


class ResolutionError(LiaisonError):
    """A target or ``$`` reference could not be resolved."""


class InvalidTarget(ResolutionError):
    """A target is not a well-formed path, or names a refused (dunder) attribute."""


class NameNotFound(ResolutionError, LookupError):
    """A namespace name, attribute or key does not exist."""


class ModuleNotAllowed(ResolutionError):
    """An import outside the configured allow-list of modules."""


class ExecutionError(LiaisonError):
    """The execution of a command ended without a result."""


class EncodingError(ExecutionError):
    """A result (or progress, partial or pushed message) cannot be written as JSON: it
    nests more arrays and objects than the encoder writes (docs/protocol.md, "Limits")."""


class CommandCancelled(ExecutionError):
    """The command was cancelled by a ``cancel`` command or at shutdown.

    On the wire ``CancelledError`` (``exception.type`` and the traceback's last line).
    """


class CommandTimedOut(ExecutionError):
    """The command ran past its ``timeout``.

    On the wire ``TimeoutError`` (``exception.type`` and the traceback's last line).
    """


class LiaisonInterrupt(BaseException):
    """Raised into a running command to stop it (the execution layer's cancel, timeout
    and stop); a BaseException so user code's ``except Exception`` lets it through, and
    a class of its own so the commands that swallow failures (``exists``) let it
    through too."""


# The wire names, which clients match on, are the classes' __name__ (replies read it);
# the Python names differ so that importing them shadows no builtin.
CommandCancelled.__name__ = CommandCancelled.__qualname__ = "CancelledError"
CommandTimedOut.__name__ = CommandTimedOut.__qualname__ = "TimeoutError"


_JSON_TYPE_NAMES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
