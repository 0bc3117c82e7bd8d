"""The connection policy, as pure functions of the handshake: who may open a connection.

See docs/security.md for the threat model behind each rule.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from .settings import Settings

__all__ = [
    "RedactingFormatter", "Refusal", "check_handshake", "is_loopback_host", "origin_allowed",
]  # fmt: skip

Refusal = tuple[HTTPStatus, str]


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
    """The host part of a ``Host`` header (``name:port``, ``[v6]:port``)."""
    value = value.strip()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str | None, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a handshake's ``Origin`` may connect.

    Allowed: no Origin (native clients), ``null`` and ``file://`` (Electron pages),
    http(s) origins whose parsed host is loopback, and exact matches of ``extra``.
    """
    if origin is None or "*" in extra:
        return True
    normalised = _normalise_origin(origin)
    # Test the scheme, not a prefix: normalising strips "file://" down to "file:".
    if normalised == "null" or normalised.startswith("file:"):
        return True
    if normalised in {_normalise_origin(o) for o in extra}:
        return True
    try:
        parts = urlsplit(normalised)
        hostname = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and hostname is not None and is_loopback_host(hostname)


def _presented_token(path: str, headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    query = urlsplit(path).query
    values = parse_qs(query).get("token") if query else None
    return values[-1] if values else None


def check_handshake(settings: Settings, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """None if the opening handshake may proceed, else the HTTP status and reason."""
    if is_loopback_host(settings.host):
        host = headers.get("Host")
        if host is None or not is_loopback_host(_host_of_header(host)):
            return HTTPStatus.FORBIDDEN, "Host header is not a loopback name (DNS rebinding?)"
    if not origin_allowed(headers.get("Origin"), settings.allowed_origins):
        return HTTPStatus.FORBIDDEN, "Origin not allowed"
    if settings.token is not None:
        presented = _presented_token(path, headers)
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
