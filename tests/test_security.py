"""The connection policy and the defences against hostile clients, against the real liaison.

Each handshake rule is checked with a real WebSocket client (or a plain socket when the
test needs a Host header no client would send); see docs/security.md for the threats.
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import LiaisonProcess, RawClient, spawn_liaison
from inprocess import InProcessServer

# Liaisons in this process, and a few processes: for the command line, logs and memory.
pytestmark = pytest.mark.in_process

TOKEN = "s3cr3t+/=&Tok"  # characters that must be URL-encoded, to test the query form
TOKEN_QUERY = "/?token=" + quote(TOKEN, safe="")

# Every error liaison raises itself while refusing a name or a reference.
REFUSALS = {"InvalidTarget", "NameNotFound", "ModuleNotAllowed", "InvalidArguments"}


def handshake(url: str, **options: Any) -> int:
    """The HTTP status of an opening handshake: 101 if the connection opened."""
    return handshake_response(url, **options)[0]


def handshake_response(url: str, **options: Any) -> tuple[int, bytes]:
    """The HTTP status and body of an opening handshake: (101, b"") if it opened."""
    try:
        with connect(url, open_timeout=10, **options):
            return 101, b""
    except InvalidStatus as refused:
        return refused.response.status_code, refused.response.body or b""


def raw_handshake(
    port: int, headers: dict[str, str] | list[tuple[str, str]], path: str = "/"
) -> int:
    """Send an upgrade request with exactly ``headers`` (no Host unless given); the status."""
    return int(raw_response(port, headers, path, until=b"\r\n").split(b" ", 2)[1])


def raw_response(
    port: int, headers: dict[str, str] | list[tuple[str, str]], path: str = "/",
    until: bytes | None = None,
) -> bytes:  # fmt: skip
    """The response to a hand-written upgrade request (a list may repeat a header), read
    until it holds ``until``, or to EOF: the liaison closes after a refusal."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in pairs]
    lines += [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while until is None or until not in response:
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    return response


def error_type(reply: dict[str, Any]) -> str:
    assert reply["tag"] == "error", reply
    assert "response" not in reply
    kind: str = reply["exception"]["type"]
    return kind


@pytest.fixture(scope="module")
def token_liaison() -> Iterator[LiaisonProcess]:
    """A liaison with a token from the environment, logging everything at debug level."""
    process = spawn_liaison("--log-level", "debug", env={"LIAISON_TOKEN": TOKEN})
    yield process
    process.stop()


@pytest.fixture
def restricted() -> Iterator[InProcessServer]:
    """A liaison that lets clients import only json (and its submodules)."""
    server = InProcessServer.start("websocket", "--allow-module", "json")
    yield server
    server.close()


# -- Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "http://10.0.0.1",
        "http://192.168.1.10:8080",
        "http://[::2]",
        "https://evil.example/http://localhost",
        "ws://evil.example",
        "http://localhost@evil.example",
        "not a url",
    ],
)
def test_foreign_origins_are_refused_before_the_upgrade(
    liaison: InProcessServer, origin: str
) -> None:
    status, body = handshake_response(liaison.url, origin=origin)
    assert status == 403
    assert f"start the liaison with --allow-origin {origin} to accept it".encode() in body


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "http://localhost:5173",
        "http://LOCALHOST:5173",
        "http://127.0.0.1",
        "http://127.0.0.2:8080",
        "https://[::1]:3000",
        "http://[::1]:3000",
    ],
)
def test_local_origins_and_none_are_let_in(liaison: InProcessServer, origin: str | None) -> None:
    assert handshake(liaison.url, origin=origin) == 101


@pytest.mark.parametrize("origin", ["null", "file://"])
def test_null_and_file_origins_are_refused_by_default_naming_the_flag(
    liaison: InProcessServer, origin: str
) -> None:
    # null: a sandboxed frame of any web site (or a local file in Chromium and Firefox);
    # file://: a local HTML file in Electron (see docs/security.md).
    status, body = handshake_response(liaison.url, origin=origin)
    assert status == 403
    expected = f"Origin {origin} is not allowed; start the liaison with --allow-origin {origin}"
    assert body.decode().startswith(expected)


@pytest.mark.parametrize(("allowed", "other"), [("null", "file://"), ("file://", "null")])
def test_allow_origin_null_or_file_admits_that_origin_alone(allowed: str, other: str) -> None:
    server = InProcessServer.start("websocket", "--allow-origin", allowed)
    try:
        assert handshake(server.url, origin=allowed) == 101
        assert handshake(server.url, origin=allowed.upper()) == 101  # origins are case-blind
        assert handshake(server.url, origin=other) == 403
        assert handshake(server.url, origin="https://evil.example") == 403
        assert handshake(server.url) == 101  # native clients, as ever
    finally:
        server.close()


def test_a_refusal_is_logged_once_at_info_level_with_the_origin_and_no_secret() -> None:
    quiet = spawn_liaison(env={"LIAISON_TOKEN": TOKEN})  # the default level: warning
    chatty = spawn_liaison("--log-level", "info", env={"LIAISON_TOKEN": TOKEN})
    for process in (quiet, chatty):
        assert handshake(process.url + TOKEN_QUERY, origin="null") == 403
        process.stop()  # its stderr is complete once it has exited
    # Launchers show stderr as errors: a refused page is no error of the liaison's.
    assert "refused" not in quiet.stderr_text()
    refusals = [line for line in chatty.stderr_text().splitlines() if "refused" in line]
    assert len(refusals) == 1, refusals
    assert " INFO " in refusals[0] and "Origin null is not allowed" in refusals[0]
    assert refusals[0].endswith("(Origin: null)")
    for form in (TOKEN, quote(TOKEN, safe="")):
        assert form not in chatty.stderr_text()


def test_allow_origin_is_an_exact_match() -> None:
    server = InProcessServer.start("websocket", "--allow-origin", "https://app.example")
    try:
        assert handshake(server.url, origin="https://app.example") == 101
        assert handshake(server.url, origin="https://app.example/") == 101
        for near_miss in (
            "http://app.example",
            "https://app.example:8443",
            "https://app.example.evil.example",
            "https://evil.app.example",
        ):
            assert handshake(server.url, origin=near_miss) == 403, near_miss
        assert handshake(server.url, origin="http://localhost:3000") == 101  # defaults stay
    finally:
        server.close()


def test_allow_origin_star_lets_every_origin_in_but_keeps_the_host_check() -> None:
    server = InProcessServer.start("websocket", "--allow-origin", "*")
    try:
        assert handshake(server.url, origin="https://evil.example") == 101
        assert raw_handshake(server.port, {"Host": f"evil.example:{server.port}"}) == 403
    finally:
        server.close()


# -- Host (DNS rebinding) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}",
     "localhost.evil.example:{port}", "10.0.0.1:{port}", "[::2]:{port}", "",
     "127.0.0.1:{port}, evil.example", "127.0.0.1:evil.example", "[::1]evil.example"],
)  # fmt: skip
def test_a_foreign_host_header_is_refused(liaison: InProcessServer, host: str) -> None:
    status = raw_handshake(liaison.port, {"Host": host.format(port=liaison.port)})
    assert status in (403, 421)


def test_a_request_without_host_header_is_a_bad_request(liaison: InProcessServer) -> None:
    assert raw_handshake(liaison.port, {}) == 400  # RFC 9112, 3.2


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "127.0.0.9", "LOCALHOST:{port}"])  # fmt: skip
def test_loopback_host_headers_are_let_in(liaison: InProcessServer, host: str) -> None:
    assert raw_handshake(liaison.port, {"Host": host.format(port=liaison.port)}) == 101


def test_rebinding_is_refused_even_from_an_allowed_looking_origin(
    liaison: InProcessServer,
) -> None:
    # The page at evil.example (now resolving to 127.0.0.1) talks to "its own" host.
    headers = {
        "Host": f"evil.example:{liaison.port}",
        "Origin": f"http://evil.example:{liaison.port}",
    }
    assert raw_handshake(liaison.port, headers) == 403


# -- Duplicated headers ------------------------------------------------------------------


def test_a_duplicated_host_origin_or_authorization_header_is_a_bad_request() -> None:
    process = spawn_liaison("--log-level", "info", env={"LIAISON_TOKEN": TOKEN})
    here, bearer = f"127.0.0.1:{process.port}", f"Bearer {TOKEN}"
    duplicated = [
        ("Host", [("Host", here), ("Host", "attacker.example"), ("Authorization", bearer)]),
        ("Host", [("Host", here), ("Host", here), ("Authorization", bearer)]),
        ("Origin", [("Host", here), ("Origin", "http://127.0.0.1"), ("Origin", "null"),
                    ("Authorization", bearer)]),
        ("Authorization", [("Host", here), ("Authorization", bearer),
                           ("authorization", "Bearer wrong")]),
    ]  # fmt: skip
    try:
        for name, headers in duplicated:
            response = raw_response(process.port, headers)
            assert response.startswith(b"HTTP/1.1 400 "), (name, response)
            assert response.endswith(f"more than one {name} header\n".encode())
        assert raw_handshake(process.port, duplicated[0][1][::2]) == 101  # one of each
    finally:
        process.stop()
    stderr = process.stderr_text()
    assert "Traceback" not in stderr and " ERROR " not in stderr, stderr
    assert stderr.count("refused a connection") == len(duplicated)
    assert TOKEN not in stderr


# -- Token ------------------------------------------------------------------------------


def test_the_token_is_accepted_in_the_query_and_as_a_bearer_header(
    token_liaison: InProcessServer,
) -> None:
    assert handshake(token_liaison.url + TOKEN_QUERY) == 101
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert handshake(token_liaison.url, additional_headers=bearer) == 101
    client = RawClient(token_liaison.url + TOKEN_QUERY)
    try:
        assert client.call("ping") == "pong"
    finally:
        client.close()


def test_a_missing_token_is_401_and_a_wrong_one_403(token_liaison: InProcessServer) -> None:
    url = token_liaison.url
    assert handshake(url) == 401
    assert handshake(url + "/?token=") == 401
    assert handshake(url + "/?token=wrong") == 403
    assert handshake(url + "/?token=" + quote(TOKEN[:-1], safe="")) == 403
    assert handshake(url + "/?token=" + quote(TOKEN + "x", safe="")) == 403
    assert handshake(url, additional_headers={"Authorization": "Bearer wrong"}) == 403
    assert handshake(url, additional_headers={"Authorization": f"Basic {TOKEN}"}) == 401


def test_a_token_does_not_excuse_a_foreign_origin_or_host(token_liaison: InProcessServer) -> None:
    assert handshake(token_liaison.url + TOKEN_QUERY, origin="https://evil.example") == 403
    # A token in a URL leaks through history and logs: the origin check stays in force.
    assert handshake(token_liaison.url + TOKEN_QUERY, origin="null") == 403
    assert handshake(token_liaison.url + TOKEN_QUERY, origin="file://") == 403
    headers = {"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}
    assert raw_handshake(token_liaison.port, headers) == 403


def test_the_token_is_never_logged_echoed_or_inherited(token_liaison: InProcessServer) -> None:
    client = RawClient(token_liaison.url + TOKEN_QUERY)
    try:
        replies = [
            client.ask(client.command("ping")),
            client.ask(client.command("names")),
            client.ask(client.command("get", "liaison")),
            client.ask(client.command("run", "os:getenv", "LIAISON_TOKEN")),
            client.ask(client.command("run", "builtins:int", "x")),  # a traceback
            client.ask("not json"),
        ]
    finally:
        client.close()
    assert replies[3]["response"] is None  # user code and its children do not see it
    handshake(token_liaison.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    handshake(token_liaison.url + "/?token=wrong" + quote(TOKEN, safe=""))
    # A client chooses how to encode its URL: lower-case hex, or every byte escaped.
    lower_case = re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(TOKEN))
    every_byte = "".join(f"%{byte:02x}" for byte in TOKEN.encode())
    host = ("Host", f"127.0.0.1:{token_liaison.port}")
    for encoded in (lower_case, every_byte):
        assert raw_handshake(token_liaison.port, [host], "/?token=" + encoded) == 101
        bearer = ("Authorization", f"Bearer {encoded}")  # wrong, but logged as sent
        assert raw_handshake(token_liaison.port, [host, bearer]) == 403
    stderr = token_liaison.stderr_text()
    assert "GET /?token=" in stderr, "debug logging is on: the request line must be logged"
    assert "<redacted>" in stderr
    for form in (TOKEN, quote(TOKEN, safe=""), quote(TOKEN), lower_case, every_byte):
        assert form not in stderr
        assert form.encode() not in token_liaison.stdout
        for reply in replies:
            assert form.encode() not in orjson.dumps(reply)


def test_the_token_option_works_like_the_environment_variable() -> None:
    process = spawn_liaison("--token", "from-the-command-line")
    try:
        assert handshake(process.url) == 401
        assert handshake(process.url + "/?token=from-the-command-line") == 101
    finally:
        process.stop()


# -- Binding beyond loopback ---------------------------------------------------------------


def test_a_public_bind_without_token_is_refused_with_one_clear_line() -> None:
    env = {key: value for key, value in os.environ.items() if key != "LIAISON_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "liaison.websocket", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=20, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""  # no marker
    assert result.stderr.count("\n") == 1
    assert "without a token" in result.stderr and "LIAISON_TOKEN" in result.stderr


def test_a_public_bind_with_a_token_serves_with_the_token() -> None:
    process = spawn_liaison(address="0.0.0.0:0", env={"LIAISON_TOKEN": TOKEN})
    try:
        assert process.host == "0.0.0.0"
        url = f"ws://127.0.0.1:{process.port}"
        assert handshake(url) == 401
        client = RawClient(url + TOKEN_QUERY)
        try:
            assert client.call("ping") == "pong"
        finally:
            client.close()
    finally:
        process.stop()


# -- --allow-module ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("run", ["os:system", "true"]),
        ("run", ["os.system", "true"]),
        ("run", ["subprocess:run", ["true"]]),
        ("run", ["builtins:eval", "1 + 1"]),
        ("run", ["builtins:exec", "import os"]),
        ("run", ["importlib:import_module", "os"]),
        ("run", ["json:codecs.open", "/etc/passwd"]),  # walking out of an allowed module
        ("run", ["json.decoder:re.compile", "x"]),
        ("run", ["json:dumps", "$os.environ"]),
        ("run", ["json:dumps", [{"deep": "$os.environ"}]]),
        ("run", ["json:dumps", 1, {"$kwargs": {"default": "$os.getcwd"}}]),
        ("init", ["x", "collections:Counter"]),
        ("init", ["x", "json:JSONDecoder", "$shutil"]),
        ("register", ["sys", "sys"]),
        ("register", ["system", "os:system"]),
        ("get", ["os.environ"]),
        ("get", ["sys:modules"]),
        ("get", ["json:codecs"]),
        ("describe", ["os:system"]),
    ],
)
def test_allow_module_refuses_every_other_import(
    restricted: InProcessServer, command: str, args: list[Any]
) -> None:
    client = RawClient(restricted.url)
    try:
        *positional, last = args
        if isinstance(last, dict) and "$kwargs" in last:  # a `$` reference in kwargs
            message = client.command(command, *positional, kwargs=last["$kwargs"])
        else:
            message = client.command(command, *args)
        assert error_type(client.ask(message)) == "ModuleNotAllowed"
    finally:
        client.close()


def test_allow_module_answers_exists_with_false(restricted: InProcessServer) -> None:
    client = RawClient(restricted.url)
    try:
        for target in ("os", "os:system", "os.path.join", "builtins:eval", "json:codecs"):
            assert client.call("exists", target) is False, target
        assert client.call("exists", "json:dumps") is True
        assert client.call("exists", "json.decoder:JSONDecoder") is True
    finally:
        client.close()


def test_allow_module_keeps_allowed_modules_and_namespace_names_usable(
    restricted: InProcessServer,
) -> None:
    client = RawClient(restricted.url)
    try:
        assert client.call("run", "json:dumps", [1, 2]) == "[1, 2]"
        assert client.call("init", "decoder", "json.decoder:JSONDecoder") == "decoder"
        assert client.call("run", "decoder.decode", "[3]") == [3]
        assert client.call("store", "numbers", [3, 1]) == "numbers"
        assert client.call("run", "json:dumps", "$numbers") == "[3, 1]"
        assert client.call("get", "companion.namespace.numbers") == [3, 1]
        assert client.call("register", "dumps", "json:dumps") == "dumps"
        assert client.call("run", "dumps", {"n": "$numbers"}) == '{"n": [3, 1]}'
        assert "liaison" in client.call("names")
        tried = client.call("try", "os:system", "true")
        assert tried["success"] is False and "ModuleNotAllowed" in tried["result"]
    finally:
        client.close()


def test_a_refused_import_has_no_side_effect(restricted: InProcessServer, tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    client = RawClient(restricted.url)
    try:
        reply = client.ask(client.command("run", "os:system", f"touch {marker}"))
        assert error_type(reply) == "ModuleNotAllowed"
        reply = client.ask(client.command("run", "pathlib:Path.touch", str(marker)))
        assert error_type(reply) == "ModuleNotAllowed"
        assert client.call("ping") == "pong"  # every earlier command has finished
    finally:
        client.close()
    assert not marker.exists()


# -- Injection through targets and references --------------------------------------------------

# Code, not names: nothing is evaluated, with or without --allow-module.
INJECTION_TARGETS = [
    "__import__('os')",
    "eval('1')",
    "os:system('true')",
    "os.system; true",
    "companion..namespace",
    "companion.namespace.",
    ":dumps",
    "json:",
    "json:dumps:loads",
    "üñí.côdé",
    "1; import os",
]

# Names that leave the object they start from, or mutate it by name: refused under
# --allow-module. Without it they resolve as in liaison 1.0 (a client may call anything
# then; tests/test_studio_names.py).
INTROSPECTION_TARGETS = [
    "__import__",
    "companion.__init__.__globals__",
    "companion.__class__",
    "companion.__dict__",
    "companion.execute.__func__.__globals__",
    "json:dumps.__globals__",
    "json:dumps.__code__",
    "json:__builtins__",
    "json:__loader__",
    "liaison.__class__",
    "liaison.send.__self__",
    "liaison.__init__.__globals__",
    "builtins:__import__",
    "os:__builtins__.eval",
    "companion.call.__globals__",
    "sys:_getframe.f_globals",
    "companion.namespace.__setitem__",
    "companion.resolver.__setattr__",
    "json:JSONDecoder.__subclasses__",
]

HOSTILE_TARGETS = [("liaison", target) for target in INJECTION_TARGETS] + [
    ("restricted", target) for target in INJECTION_TARGETS + INTROSPECTION_TARGETS
]

REFERENCE_FORMS = [
    "$companion.__init__.__globals__",
    "$liaison.__class__",
    "$companion.namespace.__class__",
    "$json.dumps.__globals__",
    "$__builtins__",
    "$__import__",
]


@pytest.mark.parametrize(("server", "target"), HOSTILE_TARGETS)
def test_hostile_targets_get_error_replies_in_every_command(
    request: pytest.FixtureRequest, server: str, target: str
) -> None:
    client = RawClient(request.getfixturevalue(server).url)
    try:
        for command, args in [
            ("get", [target]),
            ("run", [target]),
            ("run", [target, "true"]),
            ("init", ["hostile", target]),
            ("register", ["hostile", target]),
            ("describe", [target]),
        ]:
            reply = client.ask(client.command(command, *args))
            assert error_type(reply) in REFUSALS, (command, reply)
        assert client.call("exists", target) is False
        tried = client.call("try", target)
        assert tried["success"] is False
        assert "hostile" not in client.call("names")
    finally:
        client.close()


@pytest.mark.parametrize("reference", REFERENCE_FORMS)
def test_hostile_references_get_error_replies(restricted: InProcessServer, reference: str) -> None:
    client = RawClient(restricted.url)
    try:
        for args, kwargs in [
            ([reference], {}),
            ([[reference]], {}),
            ([{"nested": [reference]}], {}),
            ([1], {"default": reference}),
        ]:
            message = client.command("run", "json:dumps", *args, kwargs=kwargs)
            assert error_type(client.ask(message)) in REFUSALS, (args, kwargs)
        reply = client.ask(client.command("init", "hostile", "json:dumps", [reference]))
        assert error_type(reply) in REFUSALS
        assert "hostile" not in client.call("names")
    finally:
        client.close()


@pytest.mark.parametrize("literal", ["$__import__('os')", "$os:system", "$ json", "$", "$a b"])
def test_strings_that_are_no_reference_stay_literal_strings(
    client: RawClient, literal: str
) -> None:
    # Liaison 1.0 left `$` strings that are not `$name.path` alone; they are never evaluated.
    assert client.call("run", "builtins:str", literal) == literal


@pytest.mark.parametrize("name", ["a.b", ""])
def test_storing_under_a_dotted_or_empty_name_is_refused(client: RawClient, name: str) -> None:
    for command, args in [("store", [name, 1]), ("register", [name, "json:dumps"]),
                          ("init", [name, "builtins:dict"])]:  # fmt: skip
        assert error_type(client.ask(client.command(command, *args))) == "InvalidArguments"


def test_dunder_names_can_be_stored_as_in_liaison_1(liaison: InProcessServer) -> None:
    # A stored name is a key of the namespace, never an attribute walked.
    client = RawClient(liaison.url)
    try:
        assert client.call("store", "__version__", "1.0") == "__version__"
        assert client.call("register", "f_globals", "json:dumps") == "f_globals"
        assert client.call("init", "__class__", "builtins:dict", kwargs={"a": 1}) == "__class__"
        assert client.call("run", "f_globals", "$__version__") == '"1.0"'
        assert client.call("get", "__class__.a") == 1
    finally:
        client.close()


# -- Limits --------------------------------------------------------------------------------


def test_an_oversized_message_closes_with_1009_and_others_are_served() -> None:
    server = InProcessServer.start("websocket", "--max-message-size", "4KiB")
    try:
        bystander = RawClient(server.url)
        offender = RawClient(server.url)
        fits = offender.command("ping", pad="x" * 3000)
        assert offender.ask(fits)["response"] == "pong"
        offender.send(offender.command("ping", pad="x" * 5000))
        with pytest.raises(ConnectionClosed) as closed:
            offender.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert bystander.call("ping") == "pong"
        newcomer = RawClient(server.url)
        assert newcomer.call("ping") == "pong"
        newcomer.close()
        bystander.close()
    finally:
        server.close()


def connect_when_room(url: str, deadline_seconds: float = 10.0) -> RawClient:
    """Connect, retrying while the liaison answers 503 (a slot is being freed)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return RawClient(url)
        except InvalidStatus as refused:
            if refused.response.status_code != 503 or time.monotonic() > deadline:
                raise


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_out_of_descriptors_clients_get_503_the_log_gets_one_line_and_service_resumes() -> None:
    import resource

    limit = 64

    def few_descriptors() -> None:  # in the liaison's process, before it starts
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    process = spawn_liaison(preexec_fn=few_descriptors)
    clients: list[RawClient] = []
    try:
        while len(clients) < limit:  # each holds one of the liaison's descriptors
            try:
                clients.append(RawClient(process.url))
            except InvalidStatus as refused:  # not a hang: a 503 within asyncio's 1 s pause
                assert refused.response.status_code == 503
                break
        assert 0 < len(clients) < limit
        with ThreadPoolExecutor(10) as pool:  # a crowd arriving at once
            assert list(pool.map(handshake, [process.url] * 10)) == [503] * 10
        assert clients[0].call("ping") == "pong"  # those in are served meanwhile
        for client in clients:
            client.close()
        newcomer = connect_when_room(process.url)
        assert newcomer.call("ping") == "pong"
        newcomer.close()
        lines = process.stderr_text().splitlines()
        assert [line for line in lines if "descriptors" in line] == lines  # nothing else
        assert len(lines) == 1, lines
    finally:
        for client in clients:
            client.close()
        process.stop()


def test_the_connection_cap_answers_503_and_frees_a_slot_when_a_client_leaves() -> None:
    server = InProcessServer.start("websocket", "--max-connections", "2")
    try:
        first, second = RawClient(server.url), RawClient(server.url)
        assert handshake(server.url) == 503
        # The cap is no oracle: refused clients learn their refusal, not the load.
        assert handshake(server.url, origin="https://evil.example") == 403
        assert second.call("ping") == "pong"
        first.close()
        third = connect_when_room(server.url)
        assert third.call("ping") == "pong"
        assert handshake(server.url) == 503
        third.close()
        second.close()
    finally:
        server.close()


def open_raw_websocket(port: int) -> socket.socket:
    """A plain socket after a successful upgrade, with small buffers: it will never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # byte by byte: leave any frame after it unread
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_text_frame(payload: bytes) -> bytes:
    # A zero masking key leaves the payload as is; the server only requires a mask.
    return b"\x81" + bytes([0x80 | 127]) + len(payload).to_bytes(8, "big") + b"\0\0\0\0" + payload


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory")
def test_a_flooding_client_that_never_reads_holds_bounded_memory_and_stalls_no_one() -> None:
    process = spawn_liaison()
    try:
        other = RawClient(process.url)
        assert other.call("ping") == "pong"
        baseline = rss_mib(process.process.pid)
        flooder = open_raw_websocket(process.port)
        # Each ping echoes its 256 KiB message: 512 MiB of replies if all were read.
        frame = masked_text_frame(
            orjson.dumps({"command": {"command": "ping"}, "id": 1, "pad": "x" * 2**18})
        )
        flooder.setblocking(False)
        budget, sent, pending = 2048 * len(frame), 0, memoryview(frame)
        while sent < budget:
            # The liaison stops reading the flooder: its socket stays unwritable.
            _, writable, _ = select.select([], [flooder], [], 3.0)
            if not writable:
                break
            try:
                written = flooder.send(pending)
            except BlockingIOError:
                continue
            sent += written
            pending = pending[written:] or memoryview(frame)
            if sent % (64 * len(frame)) < written:
                assert other.call("ping") == "pong"  # answered while the flood goes on
        assert sent < budget / 4, f"the liaison read {sent / 2**20:.0f} MiB it cannot answer"
        assert other.call("ping") == "pong"
        assert other.call("run", "builtins:sum", [1, 2]) == 3
        assert rss_mib(process.process.pid) - baseline < 128
        flooder.close()
        assert other.call("ping") == "pong"
        other.close()
    finally:
        process.stop()


def test_a_connection_that_never_completes_the_handshake_is_dropped() -> None:
    server = InProcessServer.start("websocket", "--handshake-timeout", "1")
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        stalled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        client = RawClient(server.url)
        assert client.call("ping") == "pong"  # the silent ones block no one meanwhile
        for sock in (silent, stalled):
            received = b""
            while chunk := sock.recv(4096):  # until EOF: the drop; socket.timeout fails
                received += chunk
            assert b" 101 " not in received
            sock.close()
        assert client.call("ping") == "pong"
        client.close()
    finally:
        server.close()


@pytest.mark.parametrize("option", [["--handshake-timeout", "0"], ["--max-connections", "0"]])
def test_nonsensical_limits_are_usage_errors(option: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0", *option],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and option[0] in result.stderr
