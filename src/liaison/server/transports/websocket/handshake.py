"""The connection policy, as pure functions of the handshake: who may open a connection.

See docs/security.md for the threat model behind each rule.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from .settings import WebSocketSettings

__all__ = [
    "POLICY_HEADERS", "HandshakeHeaders", "RedactingFilter", "RedactingFormatter", "Redactor",
    "Refusal", "check_handshake", "is_loopback_host", "origin_allowed", "origin_refusal",
]  # fmt: skip

Refusal = tuple[HTTPStatus, str]

# The headers the policy reads. Each must appear at most once: with two, which one a
# check reads is a guess (RFC 9112 requires a 400 for two Host lines).
POLICY_HEADERS = ("Host", "Origin", "Authorization")


class HandshakeHeaders(Protocol):
    """The request headers as the policy reads them: websockets' ``Headers`` is one."""

    def get_all(self, key: str) -> list[str]:
        """Every value of header ``key`` (case-insensitive), in order; ``[]`` if absent."""
        ...


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ::1, bracketed or not."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of_header(value: str) -> str:
    """The host part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), or
    ``""`` when what follows the host is not a port."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]") + 1
        host, port = value[:end], value[end:]
    elif value.count(":") == 1:
        colon = value.find(":")
        host, port = value[:colon], value[colon:]
    else:  # a bare name (or a bare v6 address, which is_loopback_host judges)
        host, port = value, ""
    # Junk after a loopback name ("127.0.0.1:1, evil.example") is no port.
    return host if port == "" or (port[0] == ":" and port[1:].isdigit()) else ""


def _normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str | None, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a handshake's ``Origin`` may connect.

    Allowed: no Origin (native clients), http(s) origins whose parsed host is loopback,
    and exact matches of ``extra`` (case and a trailing ``/`` aside); ``"*"`` in
    ``extra`` allows every origin. ``null`` (sandboxed frames of any site) and
    ``file://`` (any local HTML file) are allowed only through ``extra``.
    """
    if origin is None or "*" in extra:
        return True
    normalised = _normalise_origin(origin)
    if normalised in {_normalise_origin(o) for o in extra}:
        return True
    try:
        parts = urlsplit(normalised)
        hostname = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and hostname is not None and is_loopback_host(hostname)


def origin_refusal(origin: str) -> str:
    """The reason given for refusing ``origin``: it names the flag that would admit it."""
    origin = origin.strip()
    flag = f"--allow-origin {origin}"
    return f"Origin {origin} is not allowed; start the liaison with {flag} to accept it"


def _only(headers: HandshakeHeaders, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0] if values else None


def _presented_token(path: str, authorization: str | None) -> str | None:
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    query = urlsplit(path).query
    values = parse_qs(query).get("token") if query else None
    return values[-1] if values else None


def check_handshake(
    settings: WebSocketSettings, path: str, headers: HandshakeHeaders
) -> Refusal | None:
    """None if the opening handshake may proceed, else the HTTP status and reason.

    400: a header of ``POLICY_HEADERS`` appears twice, or no ``Host`` while bound to
    loopback; 403: a foreign ``Host`` or ``Origin``, or a wrong token; 401: no token.
    The reason never holds the token.
    """
    for name in POLICY_HEADERS:
        if len(headers.get_all(name)) > 1:
            return HTTPStatus.BAD_REQUEST, f"more than one {name} header"
    if is_loopback_host(settings.host):
        host = _only(headers, "Host")
        if host is None:
            return HTTPStatus.BAD_REQUEST, "no Host header"
        if not is_loopback_host(_host_of_header(host)):
            return HTTPStatus.FORBIDDEN, "Host header is not a loopback name (DNS rebinding?)"
    origin = _only(headers, "Origin")
    if origin is not None and not origin_allowed(origin, settings.allowed_origins):
        return HTTPStatus.FORBIDDEN, origin_refusal(origin)
    if settings.token is not None:
        presented = _presented_token(path, _only(headers, "Authorization"))
        if presented is None:
            return HTTPStatus.UNAUTHORIZED, "a token is required"
        if not hmac.compare_digest(presented.encode(), settings.token.encode()):
            return HTTPStatus.FORBIDDEN, "wrong token"
    return None


class Redactor:
    """Replaces each secret, however URL-encoded, with ``<redacted>`` in a text.

    "However encoded": percent-escapes in either case, for any byte or none, ``+`` for
    a space, up to ``_DECODING_DEPTH`` times over: a client chooses how its URL is
    encoded, and a log must not hold what its reader can decode.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        secrets = [secret for secret in secrets if secret]
        forms = {form for secret in secrets for form in _encodings(secret)}
        # Longest first, so a secret's encoding is not half-replaced by a shorter form.
        self._forms = sorted(forms, key=len, reverse=True)
        self._secrets = [secret.encode() for secret in secrets]

    def redact(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "<redacted>")
        if self._secrets and ("%" in text or "+" in text):  # else decoding changes nothing
            text = _redact_decoded(text, self._secrets)
        return text


class RedactingFormatter(logging.Formatter):
    """A log formatter that redacts each secret (see :class:`Redactor`).

    Applied to the whole formatted record, tracebacks included, so no logger (ours or a
    library's) can write the token to stderr through the liaison's handler.
    """

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._redactor = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(super().format(record))


class RedactingFilter(logging.Filter):
    """A logger filter that redacts each secret from a record's message and traceback
    where it is made, before any handler (the liaison's, or an embedding program's) sees
    it. For websockets' logger, which logs request lines and headers at debug level."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: a handler would print them raw
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self._redactor.redact(message), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._redactor.redact(text)  # formatters print it as given
        return True


def _encodings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}


_DECODING_DEPTH = 3
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _redact_decoded(text: str, secrets: list[bytes]) -> str:
    """``text`` with every stretch that percent-decodes to a secret (once or more, ``+``
    read as a space or not) replaced by ``<redacted>``."""
    spans: list[tuple[int, int]] = []
    # Each level's string (one character a byte) maps its bytes to spans of the text.
    level = text.encode("utf-8", "surrogatepass").decode("latin-1")
    origins = _character_spans(text)
    for _ in range(_DECODING_DEPTH):
        decoded, decoded_origins = _percent_decode(level, origins)
        # `+` may stand for a space: compare with both read as spaces too.
        spaced = decoded.replace(b"+", b" ")
        for secret in secrets:
            for haystack, needle in ((decoded, secret), (spaced, secret.replace(b"+", b" "))):
                start = haystack.find(needle)
                while start != -1:
                    end = start + len(needle) - 1
                    spans.append((decoded_origins[start][0], decoded_origins[end][1]))
                    start = haystack.find(needle, start + 1)
        if len(decoded) == len(level):  # nothing was decoded: deeper levels are the same
            break
        level, origins = decoded.decode("latin-1"), decoded_origins
    for start, end in sorted(_merged(spans), reverse=True):
        text = text[:start] + "<redacted>" + text[end:]
    return text


def _character_spans(text: str) -> list[tuple[int, int]]:
    """For each UTF-8 byte of ``text``, the span of the character it encodes."""
    return [
        (index, index + 1)
        for index, character in enumerate(text)
        for _ in character.encode("utf-8", "surrogatepass")
    ]


def _percent_decode(
    text: str, origins: list[tuple[int, int]]
) -> tuple[bytes, list[tuple[int, int]]]:
    """``text`` (one character a byte) percent-decoded, with each byte's original span."""
    decoded = bytearray()
    decoded_origins: list[tuple[int, int]] = []
    index = 0
    while index < len(text):
        if text[index] == "%" and _PERCENT_ESCAPE.match(text, index):
            decoded.append(int(text[index + 1 : index + 3], 16))
            decoded_origins.append((origins[index][0], origins[index + 2][1]))
            index += 3
        else:
            decoded.append(ord(text[index]))
            decoded_origins.append(origins[index])
            index += 1
    return bytes(decoded), decoded_origins


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
