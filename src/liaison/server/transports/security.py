"""The connection policy, as pure functions of the handshake: who may open a connection.

See docs/security.md for the threat model behind each rule.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from ..settings import Settings

__all__ = [
    "POLICY_HEADERS", "HandshakeHeaders", "RedactingFormatter", "Refusal", "check_handshake",
    "is_loopback_host", "origin_allowed", "origin_refusal",
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


def check_handshake(settings: Settings, path: str, headers: HandshakeHeaders) -> Refusal | None:
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


class RedactingFormatter(logging.Formatter):
    """A log formatter that replaces each secret (also URL-encoded) with ``<redacted>``.

    Applied to the whole formatted record, tracebacks included, so no logger (ours or a
    library's) can write the token to stderr.
    """

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        forms = {form for secret in secrets if secret for form in _encodings(secret)}
        # Longest first, so a secret's encoding is not half-replaced by a shorter form.
        self._forms = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for form in self._forms:
            text = text.replace(form, "<redacted>")
        return text


def _encodings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
