"""The one owner of the process's signal handlers, in this (the main) thread."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from liaison.server.hostos import host_for
from liaison.server.signals import ProcessSignals


def test_interrupt_main_runs_the_handler_on_the_main_thread_once_installed() -> None:
    host = host_for("linux")
    signals = ProcessSignals(host)
    before = signal.getsignal(host.interrupt_signal)
    signals.interrupt_main()  # not installed: sends nothing (SIGUSR1 would end the process)
    ran_on: list[int] = []
    heard = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        ran_on.append(threading.get_ident())
        heard.set()

    signals.handle_interrupts(on_interrupt)
    try:
        threading.Thread(target=signals.interrupt_main).start()
        assert heard.wait(10)  # the wait is interrupted; the handler runs here
    finally:
        signals.restore()
    assert ran_on == [threading.get_ident()]
    assert signal.getsignal(host.interrupt_signal) == before, "put back"
    signals.interrupt_main()  # restored: sends nothing again


def test_stop_signals_call_on_stop_and_are_put_back() -> None:
    signals = ProcessSignals(host_for("linux"))
    before = signal.getsignal(signal.SIGTERM)
    stops: list[str] = []
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signals.handle_stops(lambda: stops.append("stop"), writer.fileno())
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stops == ["stop"]
        assert reader.recv(1) == bytes([signal.SIGTERM]), "the wakeup fd heard it"
    finally:
        signals.restore()
        reader.close()
        writer.close()
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.set_wakeup_fd(-1) == -1, "the wakeup fd is off again"
