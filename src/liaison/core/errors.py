"""The exceptions of liaison's own making, one base class and a subclass per reply case.

Each maps to one error reply whose ``exception.type`` is the class name.
"""

from __future__ import annotations


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


class CancelledError(ExecutionError):
    """The command was cancelled by a ``cancel`` command or at shutdown."""


class TimeoutError(ExecutionError):  # shadows the builtin: the wire name clients match on
    """The command ran past its ``timeout``."""
