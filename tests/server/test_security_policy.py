"""The connection policy as plain function calls: no sockets, no process.

``check_handshake`` reads the headers through ``get_all``, as websockets' ``Headers``
offers them; the end-to-end checks of the same rules are in test_security.py.
"""

from __future__ import annotations

import logging
import re
import sys
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from websockets.datastructures import Headers

from liaison.server.transports.websocket.handshake import (
    POLICY_HEADERS,
    RedactingFilter,
    RedactingFormatter,
    check_handshake,
    is_loopback_host,
    origin_allowed,
    origin_refusal,
)
from liaison.server.transports.websocket.settings import WebSocketSettings

TOKEN = "per-launch-secret"
HOST = ("Host", "127.0.0.1:8765")


def check(*headers: tuple[str, str], path: str = "/", **settings: Any) -> Any:
    """``check_handshake`` of a request with exactly ``headers``, in order."""
    return check_handshake(WebSocketSettings(**settings), path, Headers(list(headers)))


@pytest.mark.parametrize(
    ("origin", "extra", "allowed"),
    [
        (None, frozenset(), True),  # Node, Python, Electron's main process
        ("http://127.0.0.1:5173", frozenset(), True),
        ("https://localhost", frozenset(), True),
        ("null", frozenset(), False),  # a sandboxed frame of any site
        ("file://", frozenset(), False),  # a local HTML file (Electron)
        ("null", frozenset({"null"}), True),
        ("NULL", frozenset({"null"}), True),
        ("file://", frozenset({"file://"}), True),
        ("file://", frozenset({"null"}), False),
        ("null", frozenset({"file://"}), False),
        ("file:///home/user/attachment.html", frozenset({"file://"}), False),  # no origin
        ("null", frozenset({"*"}), True),
        ("https://app.example/", frozenset({"https://app.example"}), True),
        ("https://evil.example", frozenset({"https://app.example"}), False),
    ],
)
def test_origin_allowed(origin: str | None, extra: frozenset[str], allowed: bool) -> None:
    assert origin_allowed(origin, extra) is allowed


def test_an_origin_refusal_names_the_flag_that_admits_it() -> None:
    assert origin_refusal(" null ") == (
        "Origin null is not allowed; start the liaison with --allow-origin null to accept it"
    )


@pytest.mark.parametrize("host", ["localhost", "app.localhost", "127.0.0.9", "[::1]", "::1"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["localhost.evil.example", "10.0.0.1", "[::2]", "", "evil"])
def test_foreign_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def test_a_plain_local_handshake_passes() -> None:
    assert check(HOST) is None
    assert check(HOST, ("Origin", "http://localhost:3000")) is None


@pytest.mark.parametrize("name", POLICY_HEADERS)
def test_a_policy_header_given_twice_is_a_bad_request(name: str) -> None:
    values = {"Host": "127.0.0.1", "Origin": "http://127.0.0.1", "Authorization": "Bearer x"}
    headers = [HOST] if name != "Host" else []
    # Twice the same harmless value still is two: which one to judge is a guess.
    headers += [(name, values[name]), (name.lower(), values[name])]
    refusal = check(*headers, token=TOKEN)
    assert refusal == (HTTPStatus.BAD_REQUEST, f"more than one {name} header")


def test_duplicates_are_judged_before_anything_else() -> None:
    # Even with every check otherwise passing, and with `*` allowing every origin.
    headers = [HOST, ("Origin", "null"), ("Origin", "http://localhost")]
    refusal = check(*headers, allowed_origins=frozenset({"*"}))
    assert refusal == (HTTPStatus.BAD_REQUEST, "more than one Origin header")


def test_other_repeated_headers_are_not_the_policy_s_business() -> None:
    assert check(HOST, ("Cookie", "a=1"), ("Cookie", "b=2")) is None


@pytest.mark.parametrize(
    ("host", "status"),
    [
        (None, HTTPStatus.BAD_REQUEST),
        ("evil.example:8765", HTTPStatus.FORBIDDEN),
        ("127.0.0.1:8765, evil.example", HTTPStatus.FORBIDDEN),  # junk is no port
        ("127.0.0.1:evil.example", HTTPStatus.FORBIDDEN),
        ("[::1]evil.example", HTTPStatus.FORBIDDEN),
        ("[::1]:8765", None),
        ("LOCALHOST", None),
    ],
)
def test_the_host_header_while_bound_to_loopback(
    host: str | None, status: HTTPStatus | None
) -> None:
    refusal = check(*([] if host is None else [("Host", host)]))
    assert (refusal[0] if isinstance(refusal, tuple) else refusal) == status


def test_the_host_is_not_judged_when_bound_beyond_loopback() -> None:
    assert (
        check(("Host", "example.org"), host="0.0.0.0", token=TOKEN, path=f"/?token={TOKEN}") is None
    )


@pytest.mark.parametrize("origin", ["null", "file://"])
def test_a_token_does_not_excuse_null_or_file(origin: str) -> None:
    headers = [HOST, ("Origin", origin), ("Authorization", f"Bearer {TOKEN}")]
    assert check(*headers, token=TOKEN) == (HTTPStatus.FORBIDDEN, origin_refusal(origin))
    allowed = frozenset({origin})
    assert check(*headers, token=TOKEN, allowed_origins=allowed) is None
    # The flag admits the origin, not a client without the token.
    assert check(*headers[:2], token=TOKEN, allowed_origins=allowed) == (
        HTTPStatus.UNAUTHORIZED, "a token is required",
    )  # fmt: skip


def test_no_reason_holds_the_token() -> None:
    for headers in (
        [HOST, ("Authorization", "Bearer wrong")],
        [HOST, ("Authorization", f"Bearer {TOKEN}"), ("Authorization", f"Bearer {TOKEN}")],
        [HOST, ("Origin", "null"), ("Authorization", f"Bearer {TOKEN}")],
    ):
        refusal = check(*headers, token=TOKEN)
        assert isinstance(refusal, tuple) and TOKEN not in refusal[1]


# -- The token in logs -------------------------------------------------------------------

SECRET = "s3cr3t+/=&Tok én"  # characters a URL must encode, a `+` and a space


def lower_case_hex(escaped: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), escaped)


def every_byte_escaped(text: str, hex_format: str = "%{:02X}") -> str:
    return "".join(hex_format.format(byte) for byte in text.encode())


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        lower_case_hex(quote(SECRET, safe="")),  # as valid as upper case
        every_byte_escaped(SECRET),  # letters escaped too
        every_byte_escaped(SECRET, "%{:02x}"),
        quote(quote(SECRET, safe=""), safe=""),  # twice over
        every_byte_escaped(SECRET[:4]) + lower_case_hex(quote(SECRET[4:])),  # mixed
        SECRET.replace(" ", "+"),  # `+` for a space, a raw `+` kept
        quote_plus(SECRET),
    ],
)
def test_the_token_is_redacted_from_a_log_line_however_it_is_encoded(form: str) -> None:
    formatter = RedactingFormatter("%(message)s", secrets=[SECRET])
    # As websockets logs the request line at debug level.
    path = f"/?a=%41&token={form}"
    record = logging.LogRecord(
        "websockets.server", logging.DEBUG, "", 0, "< %s %s %s", ("GET", path, "HTTP/1.1"), None
    )
    formatted = formatter.format(record)
    assert formatted == "< GET /?a=%41&token=<redacted> HTTP/1.1"


def test_redaction_leaves_other_escapes_and_surrogates_alone() -> None:
    formatter = RedactingFormatter("%(message)s", secrets=[SECRET])
    text = "%zz %41 + \ud800 %s3cr3t"
    record = logging.LogRecord("liaison", logging.INFO, "", 0, text, None, None)
    assert formatter.format(record) == text


def test_the_filter_redacts_a_record_s_message_and_traceback_where_it_is_made() -> None:
    escaped = every_byte_escaped(SECRET, "%{:02x}")
    try:
        raise ValueError(f"invalid HTTP request line: GET /?token={escaped}")
    except ValueError:
        record = logging.LogRecord("websockets.server", logging.ERROR, "", 0, "< %s", (escaped,),
                                   sys.exc_info())  # fmt: skip
    assert RedactingFilter([SECRET]).filter(record) is True
    formatted = logging.Formatter().format(record)  # as any handler would
    assert escaped not in formatted
    assert "< <redacted>" in formatted and "token=<redacted>" in formatted


def test_the_filter_redacts_a_record_whose_arguments_do_not_fit() -> None:
    record = logging.LogRecord("websockets.server", logging.DEBUG, "", 0, "< %s %s", (SECRET,),
                               None)  # fmt: skip
    assert RedactingFilter([SECRET]).filter(record) is True
    assert SECRET not in logging.Formatter().format(record)
