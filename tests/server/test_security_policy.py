"""The connection policy as plain function calls: no sockets, no process.

``check_handshake`` reads the headers through ``get_all``, as websockets' ``Headers``
offers them; the end-to-end checks of the same rules are in test_security.py.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from websockets.datastructures import Headers

from liaison.server.settings import Settings
from liaison.server.transports.security import (
    POLICY_HEADERS,
    check_handshake,
    is_loopback_host,
    origin_allowed,
    origin_refusal,
)

TOKEN = "per-launch-secret"
HOST = ("Host", "127.0.0.1:8765")


def check(*headers: tuple[str, str], path: str = "/", **settings: Any) -> Any:
    """``check_handshake`` of a request with exactly ``headers``, in order."""
    return check_handshake(Settings(**settings), path, Headers(list(headers)))


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
