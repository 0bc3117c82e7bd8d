"""The command line and the process lifecycle: markers, signals, orphans, bad addresses."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import (
    START,
    STOP,
    RawClient,
    descendants,
    free_port,
    spawn_liaison,
    stdout_when_the_launcher_dies,
)


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_constants_print_the_markers_as_json() -> None:
    result = run_cli("liaison.constants")
    assert json.loads(result.stdout) == {"START_MARKER": "LIAISON:CONNECTED",
                                         "STOP_MARKER": "LIAISON:DISCONNECTED"}  # fmt: skip
    assert result.stdout == (
        '{"START_MARKER": "LIAISON:CONNECTED", "STOP_MARKER": "LIAISON:DISCONNECTED"}'
    )


def test_start_marker_is_all_of_stdout_and_names_the_real_port() -> None:
    process = spawn_liaison()
    try:
        assert process.stdout == f"{START}127.0.0.1:{process.port}".encode()
        assert process.port != 0
        assert RawClient(process.url).call("ping") == "pong"
    finally:
        assert process.stop() == 0
    address = f"127.0.0.1:{process.port}"
    assert process.stdout == f"{START}{address}{STOP}{address}".encode()


def test_a_fixed_port_and_a_name_are_echoed_as_given() -> None:
    port = free_port()
    process = spawn_liaison(address=f"localhost:{port}")
    try:
        assert process.stdout == f"{START}localhost:{port}".encode()
        assert RawClient(f"ws://localhost:{port}").call("ping") == "pong"
    finally:
        process.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_command_stops_it_cleanly(sig: int) -> None:
    process = spawn_liaison()
    client = RawClient(process.url)
    client.send(client.command("run", "time:sleep", 30, id="long"))
    assert client.call("ping") == "pong"  # the sleep has been queued before the ping's reply
    started = time.monotonic()
    code = process.stop(sig)
    assert time.monotonic() - started < 5
    assert code == 0
    assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())
    assert "Traceback" not in process.stderr_text()


@pytest.mark.slow
def test_a_command_that_ignores_the_stop_is_abandoned_within_5_s_with_its_reply() -> None:
    process = spawn_liaison()
    client = RawClient(process.url)
    client.send(
        client.command("run", "remote_helpers:stubborn_sleep", 60, "running", id="stubborn")
    )
    client.send(client.command("run", "remote_helpers:echo", "behind", id="queued"))
    process.read_stdout(until=b"running\n")  # the stop must find it running
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    # Each client still gets its commands' replies before the connection closes, in
    # either order: the queued one is answered as the stop drains the queue, the running
    # one as it is abandoned.
    replies = [client.receive(), client.receive()]
    assert sorted((r["id"], r["exception"]["message"]) for r in replies) == [
        ("queued", "the liaison is shutting down"),
        ("stubborn", "the liaison is shutting down"),
    ]
    assert process.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())


def command_lines_under(pid: int) -> list[str]:
    """The command lines of ``pid``'s descendant processes."""
    found = []
    for child in descendants(pid):
        try:
            found.append(Path(f"/proc/{child}/cmdline").read_text().replace("\0", " "))
        except OSError:  # gone meanwhile
            continue
    return found


# As on Windows, which has no posix_spawn (nor faulthandler.register): no watchdog process.
WITHOUT_POSIX_SPAWN = (
    "import os, runpy; del os.posix_spawn; "
    "runpy.run_module('liaison.websocket', run_name='__main__', alter_sys=True)"
)


@pytest.mark.slow
def test_where_no_watchdog_process_can_start_a_stubborn_command_is_still_abandoned() -> None:
    # StopDeadline.start returns None there; the watchdog thread alone keeps the 5 s stop
    # for Python code that ignores it (not for a command holding the GIL: docs/platforms.md).
    # An ordered command runs on the main thread once start-up is over, the watchdog
    # process started (or not) included.
    usual = spawn_liaison()
    assert RawClient(usual.url).call("run", "remote_helpers:echo", "started") == "started"
    assert any("stop_deadline.py" in child for child in command_lines_under(usual.process.pid))
    assert usual.stop() == 0
    process = spawn_liaison(launch=("-c", WITHOUT_POSIX_SPAWN))
    client = RawClient(process.url)
    assert client.call("run", "remote_helpers:echo", "started") == "started"
    assert command_lines_under(process.process.pid) == []
    client.send(
        client.command("run", "remote_helpers:stubborn_sleep", 60, "running", id="stubborn")
    )
    process.read_stdout(until=b"running\n")  # the stop must find it running
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    reply = client.receive()
    assert (reply["id"], reply["exception"]["message"]) == (
        "stubborn",
        "the liaison is shutting down",
    )
    assert process.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())


@pytest.mark.slow
def test_a_command_holding_the_gil_cannot_outlast_the_stop() -> None:
    # No thread of the liaison can run Python: the watchdog process ends it.
    process = spawn_liaison()
    client = RawClient(process.url)
    client.send(client.command("run", "remote_helpers:hold_the_gil", "holding the GIL"))
    process.read_stdout(until=b"holding the GIL\n")
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(30) == -signal.SIGKILL  # without it: hours
    address = f"127.0.0.1:{process.port}"
    assert process.read_stdout() == f"{START}{address}holding the GIL\n{STOP}{address}".encode()
    stderr = process.stderr_text()
    assert "killed the liaison (SIGKILL)" in stderr
    assert "hold_the_gil" in stderr  # where the threads were: the culprit named
    process.kill()


def test_a_child_forked_by_a_command_has_its_own_sigterm() -> None:
    # Inherited, the liaison's handlers ran in the child, and its signal reached the
    # liaison through the wakeup fd and faulthandler: 3 s later the liaison exited.
    process = spawn_liaison()
    client = RawClient(process.url)
    assert client.call("run", "remote_helpers:terminate_a_forked_child") == -signal.SIGTERM
    assert client.call("ping") == "pong"
    assert process.stop() == 0
    assert "Traceback" not in process.stderr_text()


def test_the_watchdog_process_goes_with_the_liaison() -> None:
    process = spawn_liaison()
    assert RawClient(process.url).call("ping") == "pong"
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(10) == 0
    # EOF on stdout: no process (the watchdog) holds it open any longer.
    assert process.process.stdout is not None
    process.read_stdout()  # to EOF, or 10 s
    fd = process.process.stdout.fileno()
    assert select.select([fd], [], [], 0)[0] and os.read(fd, 1) == b""
    process.kill()
    address = f"127.0.0.1:{process.port}"
    assert process.stdout == f"{START}{address}{STOP}{address}".encode()


def test_what_atexit_handlers_print_precedes_the_stop_marker_never_on_stderr() -> None:
    # psychopy.logging flushes its buffered messages from an atexit handler, and PsychoPy
    # Studio shows every stderr chunk as a Python error.
    process = spawn_liaison()
    assert RawClient(process.url).call("run", "remote_helpers:print_at_exit", "bye") is True
    assert process.stop() == 0
    address = f"127.0.0.1:{process.port}"
    assert process.stdout == f"{START}{address}bye\nbye{STOP}{address}".encode()
    assert "bye" not in process.stderr_text()


def test_the_shutdown_command_replies_then_stops() -> None:
    process = spawn_liaison()
    client = RawClient(process.url)
    assert client.call("shutdown") is True
    assert process.process.wait(10) == 0
    assert process.read_stdout().endswith(f"{STOP}127.0.0.1:{process.port}".encode())
    process.kill()


def test_it_stops_when_the_process_that_started_it_dies() -> None:
    stdout, seconds = stdout_when_the_launcher_dies()
    assert seconds < 5
    assert STOP.encode() in stdout


def test_what_user_code_prints_goes_to_stdout_after_the_marker_as_in_1_0() -> None:
    # PsychoPy Studio shows stdout as the Runner's log and every stderr chunk as an error.
    process = spawn_liaison()
    start = f"{START}127.0.0.1:{process.port}".encode()
    try:
        assert process.stdout == start  # alone in the first chunk
        assert RawClient(process.url).call("run", "remote_helpers:shout", "noise") == "noise"
        # print is line-buffered: both writes are on stdout before the reply is read.
        assert process.read_stdout(until=b"noise\nnoise") == start + b"noise\nnoise"
        assert RawClient(process.url).call("run", "remote_helpers:printf", "from C") > 0
    finally:
        assert process.stop() == 0
    address = f"127.0.0.1:{process.port}"
    # The C library's buffer (a pipe: fully buffered) is flushed before the stop marker.
    assert process.stdout == start + b"noise\nnoise" + b"from C" + f"{STOP}{address}".encode()
    assert "noise" not in process.stderr_text()
    assert "from C" not in process.stderr_text()


def test_user_output_stderr_keeps_stdout_for_the_markers() -> None:
    process = spawn_liaison("--user-output", "stderr")
    try:
        assert RawClient(process.url).call("run", "remote_helpers:shout", "noise") == "noise"
        assert RawClient(process.url).call("run", "remote_helpers:printf", "from C") > 0
    finally:
        assert process.stop() == 0
    address = f"127.0.0.1:{process.port}"
    assert process.stdout == f"{START}{address}{STOP}{address}".encode()
    assert "noise\nnoise" in process.stderr_text()
    assert "from C" in process.stderr_text()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "127.0.0.1:port", ":80"])
def test_a_bad_address_is_one_clear_line_and_no_marker(address: str) -> None:
    result = run_cli("liaison.websocket", address)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "invalid address" in result.stderr


def test_a_port_in_use_is_one_clear_line_and_no_marker() -> None:
    process = spawn_liaison()
    try:
        result = run_cli("liaison.websocket", f"127.0.0.1:{process.port}")
    finally:
        process.stop()
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr


def test_a_public_address_needs_a_token() -> None:
    result = run_cli("liaison.websocket", "0.0.0.0:0")
    assert result.returncode == 2 and result.stdout == ""
    assert "without a token" in result.stderr


def test_help_and_version() -> None:
    from liaison import __version__

    assert "--allow-origin" in run_cli("liaison.websocket", "--help").stdout
    assert run_cli("liaison.websocket", "--version").stdout.strip() == f"liaison {__version__}"


def test_log_level_controls_stderr() -> None:
    process = spawn_liaison("--log-level", "info")
    try:
        RawClient(process.url).call("ping")
    finally:
        process.stop()
    assert "client connected" in process.stderr_text()


@pytest.mark.parametrize("round_", range(4))
def test_a_stop_signal_at_any_moment_loses_no_reply_and_prints_no_traceback(round_: int) -> None:
    # A SIGTERM while the main thread works through queued commands lands anywhere on it:
    # between taking a job and running it, in a logging call (debug level logs on the main
    # thread), in a command. Every command that was read still gets exactly one reply.
    process = spawn_liaison("--log-level", "debug")
    client = RawClient(process.url)
    # Imported first: an interrupt landing in the import machinery's weakref callbacks is
    # printed by Python as "Exception ignored" (and the command then runs to its end).
    assert client.call("run", "remote_helpers:echo", "warm") == "warm"
    ids = [f"c{i}" for i in range(200)]
    for request_id in ids:
        client.send(client.command("run", "remote_helpers:echo", request_id, id=request_id))
    assert client.call("ping") == "pong"  # all 200 have been read (and queued)
    process.process.send_signal(signal.SIGTERM)
    finals: list[dict[str, object]] = []
    try:
        while True:
            message = client.receive()
            if message.get("tag") in ("response", "error"):
                finals.append(message)
    except ConnectionClosed:
        pass
    assert process.process.wait(10) == 0
    process.stop()  # reads the rest of stdout
    assert sorted(str(m["id"]) for m in finals) == sorted(ids)
    for message in finals:
        exception = message.get("exception")
        assert message.get("response") == message["id"] or (
            isinstance(exception, dict) and exception["type"] == "CancelledError"
        ), message
    assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())
    assert "Traceback" not in process.stderr_text()


def _ipv6_loopback_available() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_an_ipv6_loopback_address_is_served_and_keeps_the_host_policy() -> None:
    import socket

    process = spawn_liaison(address="[::1]:0")
    try:
        address = f"[::1]:{process.port}"
        assert process.stdout == f"{START}{address}".encode()  # the CLI's form, port filled in
        assert RawClient(f"ws://{address}").call("ping") == "pong"
        # Bound to loopback, so a foreign Host is refused as over 127.0.0.1 (handshake.py).
        with socket.create_connection(("::1", process.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
            assert sock.recv(4096).startswith(b"HTTP/1.1 403")
    finally:
        assert process.stop() == 0
    assert process.stdout.endswith(f"{STOP}[::1]:{process.port}".encode())
