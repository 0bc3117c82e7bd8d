"""Parse one incoming message into a :class:`Request`, or say exactly what is wrong with it."""

from __future__ import annotations

from typing import Any

from .encoding import JSONDecodeError, loads, loads_inexact, may_hold_long_integer
from .errors import InvalidMessage, json_type_name

__all__ = ["RejectedMessage", "Request", "may_hold_dollar", "parse_frame", "parse_message"]


class Request:
    """A validated message: what to run, with which options. Treat it as immutable."""

    # A plain class: a dataclass costs ~1.4 ms of start-up to build, and a frozen one a
    # setattr call per field on every message.
    __slots__ = (
        "args",
        "binary",
        "command",
        "concurrent",
        "echo",
        "id",
        "kwargs",
        "literal",
        "message",
        "ref",
        "stream",
        "timeout",
    )

    def __init__(
        self,
        command: str,
        args: list[Any],
        kwargs: dict[str, Any],
        id: Any,
        message: dict[str, Any],
        timeout: float | None = None,
        stream: bool = False,
        concurrent: bool = False,
        echo: bool = True,
        binary: bool = False,
        ref: bool | str = False,
        literal: bool = False,
    ) -> None:
        self.command = command
        self.args = args
        self.kwargs = kwargs
        self.id = id
        self.message = message
        self.timeout = timeout
        self.stream = stream
        self.concurrent = concurrent
        self.echo = echo
        self.binary = binary
        # True, False or "auto": whether the response becomes a reference (references.py).
        self.ref = ref
        # True when the message as received held no `$` at all: then no argument is a
        # `$name` reference or a `$buffer` placeholder, and nothing needs to walk them.
        self.literal = literal

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Request({fields})"

    def with_arguments(self, args: list[Any], kwargs: dict[str, Any]) -> Request:
        """A copy with other ``args`` and ``kwargs`` (binary frames' arrays filled in)."""
        return self._copy(args, kwargs, self.message)

    def released(self) -> Request:
        """A copy without the arguments or the message: what a finished job keeps."""
        return self._copy([], {}, {"id": self.id})

    def _copy(self, args: list[Any], kwargs: dict[str, Any], message: dict[str, Any]) -> Request:
        return Request(
            self.command, args, kwargs, self.id, message,
            self.timeout, self.stream, self.concurrent, self.echo, self.binary, self.ref,
            self.literal,
        )  # fmt: skip

    @property
    def evt(self) -> dict[str, Any]:
        """The message as echoed in replies; without args and kwargs if ``echo`` is false."""
        if self.echo:
            return self.message
        trimmed = dict(self.message)
        trimmed["command"] = {"command": self.command}
        return trimmed


class RejectedMessage(Exception):
    """A message that cannot become a request; carries what could be read of it."""

    def __init__(self, error: Exception, message: dict[str, Any] | None, id: Any) -> None:
        super().__init__(str(error))
        self.error = error
        self.message = message
        self.id = id


_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "stream": (bool,),
    "concurrent": (bool,),
    "echo": (bool,),
    "binary": (bool,),
}


def parse_message(data: str | bytes | dict[str, Any]) -> Request:
    """Decode and validate one message.

    Raises :class:`RejectedMessage` wrapping a ``JSONDecodeError`` or an
    :class:`~liaison.protocol.errors.InvalidMessage` naming the offending field.
    """
    message: Any
    if isinstance(data, dict):
        message = data
    else:
        try:
            message = loads_inexact(data)  # integers past 64 bits: checked below
        except JSONDecodeError as error:
            try:  # what orjson cannot read but json can (an integer of 400 digits)
                message = loads(data)
            except JSONDecodeError:
                raise RejectedMessage(error, None, None) from None
    if not isinstance(message, dict):
        not_object = InvalidMessage(f"message must be a JSON object, got {json_type_name(message)}")
        raise RejectedMessage(not_object, None, None)
    id = message.get("id")
    try:
        request = _validate(message, id)
        if isinstance(data, dict):
            return request
        if request.args or request.kwargs:
            if _may_hold_long_integer(request, data):  # orjson read it as a float: reread
                request = _reread(data)
            request.literal = not may_hold_dollar(data)  # else no walk
        elif type(id) is float and not -_INT64_END <= id < 2 * _INT64_END:
            request = _reread(data)  # an id past 64 bits: read it exactly
    except InvalidMessage as error:
        safe_id = id if isinstance(id, (str, int, float)) or id is None else None
        raise RejectedMessage(error, message, safe_id) from None
    return request


def _reread(data: str | bytes) -> Request:
    """The request, read again with integers of any size exact (the standard library)."""
    message = loads(data)
    return _validate(message, message.get("id"))


_INT64_END = 2**63
_WALK_BUDGET = 1000  # values: past it, the text is scanned instead


def _may_hold_long_integer(request: Request, text: str | bytes) -> bool:
    """False only if no argument can be an integer past 64 bits that orjson read as a
    float (one of at least 2**63 in magnitude). A short text is scanned (~0.3 us); a
    long one's arguments are walked, up to a thousand values (a 2 MB string costs
    nothing), and past that the text is scanned (~0.5 ns a byte)."""
    if len(text) < 4096:
        return may_hold_long_integer(text)
    stack: list[Any] = [request.args, request.kwargs]
    budget = _WALK_BUDGET
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is float:
            if not -_INT64_END <= value < 2 * _INT64_END:
                return True
        elif kind is list or kind is dict:
            budget -= len(value)
            if budget < 0:
                return may_hold_long_integer(text)
            stack.extend(value.values() if kind is dict else value)
    return False


def may_hold_dollar(
    text: str | bytes | bytearray | memoryview, start: int = 0, end: int | None = None
) -> bool:
    """False only if no string decoded from the JSON ``text[start:end]`` can hold a ``$``.

    JSON spells ``$`` either as itself or as the escape ``\\u0024`` (its hex digits have
    no case), so a text with neither holds no ``$name`` reference and no ``$buffer``
    placeholder. Two ``memchr`` scans of the text (~0.5 ms for 18 MB), where walking a
    million decoded values costs ~130 ms; the slower search for the escape (~12 ms for
    18 MB) runs only on a text holding a backslash.
    """
    if type(text) is str and end is None:  # the common case, first: ~0.1 us for a ping
        return "$" in text or ("\\" in text and "\\u0024" in text)
    spelling: Any  # the `$`, a backslash and the escape, in the text's own type
    if isinstance(text, str):
        spelling = _DOLLAR_TEXT
    elif isinstance(text, (bytes, bytearray)):
        spelling = _DOLLAR_BYTES
    else:
        return True  # a memoryview has no find: assume the worst
    dollar, backslash, escape = spelling
    if end is None:
        end = len(text)
    return text.find(dollar, start, end) >= 0 or (
        text.find(backslash, start, end) >= 0 and text.find(escape, start, end) >= 0
    )


_DOLLAR_TEXT = ("$", "\\", "\\u0024")
_DOLLAR_BYTES = (b"$", b"\\", b"\\u0024")


def parse_frame(data: bytes) -> Request:
    """Decode and validate one message that came as a binary frame.

    Placeholders in ``command.args`` and ``command.kwargs`` become numpy arrays or bytes;
    the request's ``message`` (echoed as ``evt``) keeps them as sent, without the
    ``buffers`` list. A binary frame that is not in the layout but starts with ``{``
    (after JSON whitespace) is read as JSON text, as liaison 1.0 did. Raises
    :class:`RejectedMessage` as :func:`parse_message` does.
    """
    from .frames import resolve_buffers, split_frame

    try:
        header, buffers = split_frame(data)
    except InvalidMessage as error:
        if data[:64].lstrip(b" \t\r\n")[:1] == b"{":  # JSON text, as liaison 1.0 read it
            return parse_message(data)
        raise RejectedMessage(error, None, None) from None
    header.pop("buffers", None)  # the echo keeps the placeholders, not the layout
    request = parse_message(header)
    end = 4 + int.from_bytes(data[:4], "little")
    if not may_hold_dollar(data, 4, end):
        request.literal = True  # the header holds no placeholder (and no reference)
        return request
    try:
        args = resolve_buffers(request.args, buffers)
        kwargs = resolve_buffers(request.kwargs, buffers)
    except InvalidMessage as error:
        raise RejectedMessage(error, header, request.id) from None
    resolved = request.with_arguments(args, kwargs)
    # Placeholders become arrays, bytes and lists of numbers, which hold no reference:
    # without another `$` in the header, a million-number list is not walked (~40 ms).
    resolved.literal = not may_hold_dollar(bytes(data[4:end]).replace(b'"$buffer":', b""))
    return resolved


# Exact types (JSON decodes to no subclasses), which also leaves out bool, an int.
_ID_TYPES = frozenset({str, int, float, type(None)})


def _validate(message: dict[str, Any], id: Any) -> Request:
    if type(id) not in _ID_TYPES:
        raise InvalidMessage(f"id must be a string, number or null, got {json_type_name(id)}")
    body = message.get("command")
    if not isinstance(body, dict):
        if "command" not in message:
            raise InvalidMessage("message has no 'command' field")
        raise InvalidMessage(f"command must be an object, got {json_type_name(body)}")
    name = body.get("command")
    if not isinstance(name, str):
        if "command" not in body:
            raise InvalidMessage("command has no 'command' field (the command's name)")
        raise InvalidMessage(f"command.command must be a string, got {json_type_name(name)}")
    args = body.get("args", [])
    if not isinstance(args, list):
        raise InvalidMessage(f"command.args must be an array, got {json_type_name(args)}")
    kwargs = body.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidMessage(f"command.kwargs must be an object, got {json_type_name(kwargs)}")
    if len(message) == 1 + ("id" in message):
        # Only `command` (and `id`): no options to look for, the common case. Positional
        # arguments: keywords double the cost of this call (~0.7 against ~0.35 µs).
        return Request(name, args, kwargs, id, message)
    options: dict[str, Any] = {}
    for key, types in _OPTION_TYPES.items():
        if key in message:
            value = message[key]
            if not isinstance(value, types):
                raise InvalidMessage(f"{key} must be a boolean, got {json_type_name(value)}")
            options[key] = value
    if "timeout" in message and message["timeout"] is not None:
        timeout = message["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidMessage(f"timeout must be a positive number of seconds, got {timeout!r}")
        try:
            options["timeout"] = float(timeout)
        except OverflowError:  # an integer past float's range
            raise InvalidMessage(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            ) from None
    if "ref" in message:
        ref = message["ref"]
        if not isinstance(ref, bool) and ref != "auto":
            got = repr(ref[:40]) if isinstance(ref, str) else json_type_name(ref)
            raise InvalidMessage(f'ref must be true, false or "auto", got {got}')
        options["ref"] = ref
    return Request(command=name, args=args, kwargs=kwargs, id=id, message=message, **options)
