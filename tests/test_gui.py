"""``--gui tk|qt``: the toolkit's event loop runs on the main thread between commands.

Under a real X server: the ``display`` fixture starts Xvfb (skips without it, unless
LIAISON_REQUIRE_GUI=1, as CI sets). Timers are counted over intervals the test measures
itself; waits poll replies against a deadline, never sleep for a fixed time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import STOP, LiaisonProcess, RawClient, StdioClient, load_script, spawn_liaison
from liaison.server.gui import GuiLoop, create_gui_loop

REQUIRED = os.environ.get("LIAISON_REQUIRE_GUI") == "1"
_qt_missing_packages = load_script("qt_missing_packages.py")
WINDOWS_CHOICES = "wakeup=recv,interrupt=simulated,parent_watch=process-handle,handoff=queue"


def _missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"{what} (LIAISON_REQUIRE_GUI=1)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """A fresh Xvfb server; its display name, e.g. ``:5``.

    One per test process: a toolkit opened in this process (Qt's QApplication, once per
    process) holds its X connection to the end, and the process dies when that server
    goes. Stopped after the module, it crashed a later Tk test that ran in this
    process's share of the module's tests (pytest-xdist)."""
    if shutil.which("Xvfb") is None:
        _missing("Xvfb is not installed (Debian package xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
        pass_fds=[write], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read, 16)  # Xvfb writes the display number once it accepts clients
        if not chunk:
            break
        number += chunk
    os.close(read)
    if not number.strip():
        server.kill()
        server.wait()
        _missing("Xvfb did not start")
    yield f":{number.decode().strip()}"
    server.terminate()
    server.wait(10)


_qt_failure: list[str] = []  # why Qt cannot open a window here, found out once


def _qt_available(display: str) -> None:
    try:
        from liaison.server.gui.qt import qt_modules

        qt_modules()
    except ImportError:
        _missing("no Qt binding installed (pip install PySide6-Essentials)")
    if not _qt_failure:
        # Qt aborts the process when its platform plugin cannot load (missing X libraries).
        done = subprocess.run(
            [sys.executable, "-c", "from liaison.server.gui.qt import qt_modules; "
             "qt_modules()[1].QApplication([])"],
            env={**os.environ, "DISPLAY": display}, capture_output=True, timeout=60,
        )  # fmt: skip
        _qt_failure.append("" if done.returncode == 0 else done.stderr.decode()[-500:])
    if _qt_failure[0]:
        _missing(f"Qt cannot open a window: {qt_missing_what()}\n{_qt_failure[0]}")


def qt_missing_what() -> str:
    """What Qt's xcb plugin cannot load, by Debian package (Qt's own message names
    libxcb-cursor0 whatever is missing)."""
    missing = _qt_missing_packages.missing_libraries(_qt_missing_packages.xcb_plugin() or Path())
    if not missing:
        return "no library of the xcb plugin is missing (see Qt's message below)"
    packages = [f"{_qt_missing_packages.debian_package(name)} ({name})" for name in missing]
    return "missing " + ", ".join(packages)


def gui_liaison(display: str, gui: str, hostos: str = "") -> LiaisonProcess:
    env = {"DISPLAY": display, "LIAISON_HOSTOS": hostos}
    return spawn_liaison("--gui", gui, env=env)


def wait_until(client: RawClient, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll (one round trip at a time) until ``done()``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        client.call("ping")


def ticks_over(client: RawClient, name: str, seconds: float) -> tuple[int, float]:
    """(ticks counted, seconds measured) while the liaison is idle for about ``seconds``."""
    started = time.monotonic()
    first = client.call("run", "gui_helpers:ticks", name)
    time.sleep(seconds)  # idle on purpose: what is measured is what happens meanwhile
    last = client.call("run", "gui_helpers:ticks", name)
    return last - first, time.monotonic() - started


@pytest.fixture(params=["tk", "qt"])
def toolkit(request: pytest.FixtureRequest, display: str) -> str:
    if request.param == "qt":
        _qt_available(display)
    return str(request.param)


def test_a_window_timer_keeps_firing_while_the_liaison_is_idle(display: str, toolkit: str) -> None:
    process = gui_liaison(display, toolkit)
    try:
        client = RawClient(process.url)
        assert client.call("run", f"gui_helpers:start_{toolkit}_ticker", 20) == "started"
        counted, seconds = ticks_over(client, toolkit, 1.5)
        assert counted > 25 * seconds / 1.5, (counted, seconds)
        assert process.stop() == 0
        assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())
    finally:
        process.kill()


def test_the_windows_choices_serve_a_gui_loop_too(display: str) -> None:
    # Tk polls instead of watching a socket, as on Windows.
    process = gui_liaison(display, "tk", WINDOWS_CHOICES)
    try:
        client = RawClient(process.url)
        client.call("run", "gui_helpers:start_tk_ticker", 20)
        counted, seconds = ticks_over(client, "tk", 1.5)
        assert counted > 25 * seconds / 1.5, (counted, seconds)
        client.send(client.command("run", "gui_helpers:pump_tk", 30, id="pump"))
        assert client.call("ping") == "pong"
        assert client.call("cancel", "pump") is True
        reply = client.receive()
        assert reply["id"] == "pump" and reply["exception"]["type"] == "CancelledError"
        assert process.stop() == 0
    finally:
        process.kill()


@pytest.mark.slow
def test_a_ping_is_answered_while_a_gui_command_runs(display: str) -> None:
    process = gui_liaison(display, "tk")
    try:
        client = RawClient(process.url)
        client.call("run", "gui_helpers:start_tk_ticker", 20)
        client.send(client.command("run", "gui_helpers:pump_tk", 2, id="pump"))
        client.send(client.command("ping", id="ping"))
        first, second = client.receive(), client.receive()
        assert (first["id"], second["id"]) == ("ping", "pump")
        assert second["response"] > 0  # the window's timer ran during the command
    finally:
        process.stop()


def test_cancel_ends_a_gui_command_and_the_loop_goes_on(display: str, toolkit: str) -> None:
    process = gui_liaison(display, toolkit)
    try:
        client = RawClient(process.url)
        client.call("run", f"gui_helpers:start_{toolkit}_ticker", 20)
        command = "gui_helpers:pump_tk" if toolkit == "tk" else "time:sleep"
        client.send(client.command("run", command, 30, id="long"))
        assert client.call("ping") == "pong"
        assert client.call("cancel", "long") is True
        reply = client.receive()
        assert reply["id"] == "long" and reply["exception"]["type"] == "CancelledError"
        # A window opened now must tick: the loop goes on. (The first window's timer may
        # be gone: the cancel's interrupt can land in its callback, which Tk prints and
        # swallows; it did in about 1 CI run in 8.)
        client.call("run", f"gui_helpers:start_{toolkit}_ticker", 20)
        before = client.call("run", "gui_helpers:ticks", toolkit)
        wait_until(client, lambda: client.call("run", "gui_helpers:ticks", toolkit) > before + 5)
        assert process.stop() == 0
        assert "Traceback" not in process.stderr_text()
    finally:
        process.kill()


def test_a_timeout_ends_a_gui_command(display: str) -> None:
    process = gui_liaison(display, "tk")
    try:
        client = RawClient(process.url)
        reply = client.ask(client.command("run", "gui_helpers:pump_tk", 30, timeout=0.3))
        assert reply["exception"]["type"] == "TimeoutError"
        assert client.call("run", "builtins:len", "ab") == 2
    finally:
        process.stop()


@pytest.mark.parametrize("how", ["sigterm", "sigint", "shutdown", "during a command"])
def test_stopping_quits_the_loop_cleanly(display: str, toolkit: str, how: str) -> None:
    process = gui_liaison(display, toolkit)
    try:
        client = RawClient(process.url)
        client.call("run", f"gui_helpers:start_{toolkit}_ticker", 20)
        if how == "shutdown":
            assert client.call("shutdown") is True
            code = process.process.wait(10)
            process.read_stdout()
        elif how == "during a command":
            client.send(client.command("run", "time:sleep", 30, id="long"))
            assert client.call("ping") == "pong"
            code = process.stop()
        else:
            code = process.stop(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        assert code == 0
        assert process.stdout.endswith(f"{STOP}127.0.0.1:{process.port}".encode())
        assert "Traceback" not in process.stderr_text()
        assert "ignored the stop" not in process.stderr_text()  # not the watchdog's exit
    finally:
        process.kill()


@pytest.mark.slow
@pytest.mark.parametrize(("gui", "backend"), [("tk", "TkAgg"), ("qt", "QtAgg")])
def test_a_matplotlib_figure_stays_responsive_between_commands(
    display: str, gui: str, backend: str
) -> None:
    if gui == "qt":
        _qt_available(display)
    process = gui_liaison(display, gui)
    try:
        client = RawClient(process.url)
        assert client.call("run", "gui_helpers:show_figure", backend) == backend
        counted, seconds = ticks_over(client, "mpl", 1.5)
        assert counted > 25 * seconds / 1.5, (counted, seconds)
        # draw_idle only asks: the loop draws between commands.
        draws = client.call("run", "gui_helpers:redraw_figure")
        wait_until(client, lambda: client.call("run", "gui_helpers:ticks", "draws") > draws)
    finally:
        process.stop()


def test_an_unknown_toolkit_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0", "--gui", "motif"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == b""
    assert b"unknown --gui 'motif'" in done.stderr


def test_no_display_is_one_clear_line_and_no_marker() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0", "--gui", "tk"],
        capture_output=True, timeout=30, env=env,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.startswith(b"liaison: error: --gui tk: cannot start Tk")


# -- the adapters in-process -------------------------------------------------------------


@pytest.mark.parametrize("fd_readers", [True, False])
def test_a_loop_pulls_after_each_wake_and_quits_from_another_thread(
    display: str, toolkit: str, fd_readers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display)
    loop: GuiLoop = create_gui_loop(toolkit, fd_readers)
    loop.prepare()
    pulls: list[int] = []
    woken = threading.Event()

    def pull() -> None:
        pulls.append(threading.get_ident())
        woken.set()

    def other_thread() -> Any:
        for _ in range(3):
            woken.clear()
            loop.wake()
            assert woken.wait(10)
        loop.quit()

    helper = threading.Thread(target=other_thread)
    helper.start()
    loop.run(pull)  # returns once quit
    helper.join(10)
    assert len(pulls) >= 3 and set(pulls) == {threading.get_ident()}


def test_the_python_spawn_helper_passes_gui(display: str) -> None:
    from conftest import TESTS
    from liaison.client import spawn

    with spawn(gui="tk", env={"DISPLAY": display, "PYTHONPATH": TESTS}) as liaison:
        liaison.run("gui_helpers:start_tk_ticker", 20)
        first = liaison.run("gui_helpers:ticks", "tk")
        deadline = time.monotonic() + 10
        # Without --gui nothing would run Tk's timers: the count would stay put.
        while liaison.run("gui_helpers:ticks", "tk") < first + 10:
            assert time.monotonic() < deadline, "the window's timer does not fire"


def test_a_gui_loop_serves_the_stdio_transport(display: str, toolkit: str) -> None:
    client = StdioClient("--gui", toolkit, env={"DISPLAY": display})
    try:
        assert client.call("run", f"gui_helpers:start_{toolkit}_ticker", 20) == "started"
        counted, seconds = ticks_over(client, toolkit, 1.5)
        assert counted > 25 * seconds / 1.5, (counted, seconds)
        client.send(client.command("run", "time:sleep", 30, id="long"))
        assert client.call("ping") == "pong"  # the I/O thread reads while a command runs
        client.process.send_signal(signal.SIGTERM)  # ends the command and quits the loop
        assert client.process.wait(10) == 0  # (EOF would let the command finish first)
        lines = []
        while (line := client.lines.get(timeout=10)) is not None:
            lines.append(line)
        assert lines[-1] == STOP + "stdio", lines
        assert "Traceback" not in client.stderr.decode()
    finally:
        client.kill()


def test_missing_qt_libraries_are_named_by_their_debian_package() -> None:
    # Qt names libxcb-cursor0 whatever is missing; the skip and scripts/test.sh name these.
    package = _qt_missing_packages.debian_package
    assert package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert package("libEGL.so.1") == "libegl1"
    assert package("libdbus-1.so.3") == "libdbus-1-3"


def test_a_library_the_xcb_plugin_cannot_load_is_listed(tmp_path: Path) -> None:
    plugin = _qt_missing_packages.xcb_plugin()
    if plugin is None:
        _missing("no Qt binding installed (pip install PySide6-Essentials)")
    # A copy elsewhere: its RPATH ($ORIGIN/...) no longer reaches Qt's own libraries.
    moved = tmp_path / "libqxcb.so"
    shutil.copy(plugin, moved)
    missing = _qt_missing_packages.missing_libraries(moved)
    assert any(name.startswith("libQt") for name in missing), missing
    in_place = _qt_missing_packages.missing_libraries(plugin)
    assert not any(name.startswith("libQt") for name in in_place), in_place
