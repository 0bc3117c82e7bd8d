"""The platform layer (hostos.py): the OS dispatch, each mechanism in-process, and the
Windows choices running for real on this OS (LIAISON_HOSTOS)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from conftest import STOP, RawClient, spawn_liaison, stdout_when_the_launcher_dies
from liaison.server.hostos import (
    current_host,
    host_for,
    interrupt_main_thread,
    open_process,
    watch_parent,
    watch_wakeup_socket,
)

# The mechanisms Windows uses, all of which also work here.
WINDOWS_CHOICES = "wakeup=recv,interrupt=simulated,parent_watch=process-handle,handoff=queue"


@pytest.mark.parametrize("os_name", ["linux", "darwin", "freebsd14"])
def test_posix_systems_use_signals_readers_and_reparenting(os_name: str) -> None:
    host = host_for(os_name)
    assert (host.wakeup, host.interrupt, host.parent_watch) == (
        "reader", "thread-signal", "reparent",
    )  # fmt: skip
    assert host.interrupt_signal == 10  # SIGUSR1 on Linux


def test_windows_uses_no_reader_no_thread_signal_and_a_process_handle() -> None:
    host = host_for("win32")
    assert (host.wakeup, host.interrupt, host.parent_watch, host.handoff) == (
        "recv", "simulated", "process-handle", "queue",
    )  # fmt: skip
    assert host.interrupt_signal == 21  # SIGBREAK: not SIGINT, the stop signal
    assert host.interrupt_signal != signal.SIGINT


def test_overrides_choose_each_mechanism_and_reject_unknown_ones() -> None:
    host = host_for("linux", WINDOWS_CHOICES)
    assert (host.wakeup, host.interrupt, host.parent_watch, host.handoff) == (
        "recv", "simulated", "process-handle", "queue",
    )  # fmt: skip
    assert host_for("linux").handoff == "pipe"
    assert host_for("linux", "interrupt=simulated").wakeup == "reader"
    assert current_host({"LIAISON_HOSTOS": "wakeup=recv"}).wakeup == "recv"
    with pytest.raises(ValueError, match=r"wakeup=reader\|recv"):
        host_for("linux", "wakeup=select")
    with pytest.raises(ValueError, match="colour"):
        host_for("linux", "colour=blue")


@pytest.mark.parametrize("mechanism", ["thread-signal", "simulated"])
def test_an_interrupt_runs_the_interrupt_handler_never_the_sigint_one(mechanism: str) -> None:
    host = host_for(sys.platform, f"interrupt={mechanism}")
    ran: list[str] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        ran.append("interrupt")

    def on_sigint(signum: int, frame: Any) -> None:
        ran.append("sigint")

    previous = (signal.signal(host.interrupt_signal, on_interrupt),
                signal.signal(signal.SIGINT, on_sigint))  # fmt: skip
    try:
        main = threading.get_ident()
        threading.Thread(target=interrupt_main_thread, args=(host, main)).start()
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            sum(range(1000))  # bytecode: where a simulated interrupt is delivered
    finally:
        signal.signal(host.interrupt_signal, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert ran == ["interrupt"]


@pytest.mark.parametrize("wakeup", ["reader", "recv"])
def test_the_wakeup_socket_reports_each_signal_number(wakeup: str) -> None:
    host = host_for(sys.platform, f"wakeup={wakeup}")
    loop = asyncio.new_event_loop()
    reader, writer = socket.socketpair()
    heard: list[int] = []

    async def main() -> None:
        task = watch_wakeup_socket(host, loop, reader, heard.append)
        assert (task is None) == (wakeup == "reader")
        writer.send(bytes([signal.SIGTERM, signal.SIGINT]))
        while len(heard) < 2:
            await asyncio.sleep(0.005)
        if task is not None:
            task.cancel()
        else:
            loop.remove_reader(reader.fileno())

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()
        reader.close()
        writer.close()
    assert heard == [signal.SIGTERM, signal.SIGINT]


def test_a_process_handle_wait_returns_once_the_process_exits() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait = open_process(child.pid)
        assert wait is not None
        returned = threading.Event()
        threading.Thread(target=lambda: (wait(), returned.set()), daemon=True).start()
        assert not returned.wait(0.2)  # still running: still waiting
        child.kill()
        assert returned.wait(10)
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("parent_watch", ["reparent", "process-handle"])
def test_a_parent_gone_before_the_watch_began_stops_at_once(parent_watch: str) -> None:
    # The parent's PID is read at start-up; it may exit before the watch starts.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stopped = threading.Event()
    host = host_for(sys.platform, f"parent_watch={parent_watch}")
    assert watch_parent(host, stopped.set, gone.pid) is True
    assert stopped.wait(10)


def test_no_parent_to_watch_under_init() -> None:
    assert watch_parent(host_for(sys.platform), lambda: None, 1) is False


# -- the Windows choices, end to end, on this OS -----------------------------------------


def test_with_windows_mechanisms_a_cancel_interrupts_a_command_and_sigterm_stops() -> None:
    process = spawn_liaison(env={"LIAISON_HOSTOS": WINDOWS_CHOICES})
    try:
        client = RawClient(process.url)
        # A simulated interrupt lands at the next bytecode: a busy Python loop.
        client.send(client.command("run", "remote_helpers:spin", 30, id="busy"))
        assert client.call("ping") == "pong"
        assert client.call("cancel", "busy") is True
        reply = client.receive()
        assert reply["id"] == "busy" and reply["exception"]["type"] == "CancelledError"
        assert client.call("run", "builtins:len", "abc") == 3  # still serving
        assert process.stop(signal.SIGTERM) == 0
        assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())
        assert "Traceback" not in process.stderr_text()
    finally:
        process.kill()


def test_with_windows_mechanisms_it_stops_when_its_parent_dies() -> None:
    stdout, _ = stdout_when_the_launcher_dies({"LIAISON_HOSTOS": WINDOWS_CHOICES})
    assert STOP.encode() in stdout


def test_a_bad_hostos_setting_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0"],
        env={**os.environ, "LIAISON_HOSTOS": "wakeup=select"},
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == b""
    assert b"LIAISON_HOSTOS" in done.stderr


def test_importing_the_liaison_touches_no_posix_only_name() -> None:
    # Remove what Windows lacks, then import every module of the server side.
    script = """
import os, signal, socket, sys
for module, names in ((signal, ["SIGUSR1", "SIGUSR2", "SIGKILL", "SIGHUP", "pthread_kill",
                                "pthread_sigmask", "setitimer"]),
                      (os, ["pidfd_open", "fork", "setsid", "killpg", "getpgid"]),
                      (socket, ["TCP_CORK", "AF_UNIX"])):
    for name in names:
        if hasattr(module, name):
            delattr(module, name)
for name in ("fcntl", "termios", "resource", "grp"):
    sys.modules[name] = None
import liaison.cli.websocket, liaison.server.runtime, liaison.server.io_thread
import liaison.server.execution, liaison.server.hostos, liaison.server.gui
import liaison.server.gui.tk, liaison.server.gui.qt, liaison.server.transports.websocket.transport
print(liaison.server.hostos.host_for("win32").interrupt)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "simulated"
