"""Start, watch and stop the servers under test as real subprocesses."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BASELINE_VENV = BENCH / ".venvs" / "liaison-py"
BASELINE_SPEC = "liaison-py==1.0.1"
MARKER = re.compile(rb"LIAISON:CONNECTED@([^:@]+):(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """The server could not be started (or died)."""


@dataclass
class ServerSpec:
    key: str  # "liaison", "floor", "baseline"
    title: str
    python: str
    module_args: list[str]  # argv after the interpreter, without the address
    fixed_port: bool = False  # True: pick a free port beforehand (no port-0 support)
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int) -> list[str]:
        return [self.python, *self.module_args, f"127.0.0.1:{port}"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on some machines) would make an editable checkout
    # recompile every module at each start, unlike an installed package: drop it.
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Server:
    """One running instance of a server under test."""

    def __init__(self, spec: ServerSpec):
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.startup_s = float("nan")
        self.spawned_at = float("nan")  # time.perf_counter() at spawn
        self._stdout_tail = b""
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (kept for error reports)
        self._drain: threading.Thread | None = None
        self._cwd = tempfile.mkdtemp(prefix="liaison-bench-")

    @property
    def uri(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        port = free_port() if self.spec.fixed_port else 0
        argv = self.spec.argv(port)
        t0 = self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=clean_env(self.spec.env),
            cwd=self._cwd,
        )
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        buf = b""
        deadline = t0 + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.kill()
                raise ServerError(
                    f"no start marker within {timeout:.0f} s; {self.describe_output(buf)}"
                )
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(5)
                    raise ServerError(
                        f"exited with status {self.proc.returncode} before the start marker; "
                        f"{self.describe_output(buf)}"
                    )
                buf += chunk
                m = MARKER.search(buf)
                if m:
                    self.startup_s = time.perf_counter() - t0
                    self.host = m.group(1).decode()
                    self.port = int(m.group(2))
                    if port and self.port != port:
                        raise ServerError(f"marker names port {self.port}, asked for {port}")
                    self._stdout_tail = buf[m.end() :]
                    break
            elif self.proc.poll() is not None:
                raise ServerError(
                    f"exited with status {self.proc.returncode} before the start marker; "
                    f"{self.describe_output(buf)}"
                )
        # keep draining stdout so the server never blocks on a full pipe (liaison-py
        # writes tracebacks there)
        self._drain = threading.Thread(target=self._drain_stdout, args=(fd,), daemon=True)
        self._drain.start()
        return self

    def _drain_stdout(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._stdout_tail = (self._stdout_tail + chunk)[-8192:]

    def stderr_tail(self, n: int = 600) -> str:
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")[-n:].strip()

    def describe_output(self, stdout: bytes = b"") -> str:
        out = (stdout or self._stdout_tail)[-300:].decode(errors="replace").strip()
        return f"stdout: {out!r}; stderr: {self.stderr_tail()!r}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- process statistics from /proc ---------------------------------------------
    def cpu_seconds(self) -> float:
        """user + system CPU time of the whole server process (all threads)."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        # fields[0] is field 3 (state); utime/stime are fields 14/15
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_ns(self) -> int:
        """On-CPU time of the whole server process (all threads) in ns, from each
        thread's /proc schedstat: precise where cpu_seconds counts 10 ms ticks, so it
        serves short blocks (a block of sequential round trips)."""
        total = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{task}/schedstat", "rb") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread that ended meanwhile
        return total

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise ServerError("no VmRSS")

    # --- stopping --------------------------------------------------------------------
    def stop(self, timeout: float = 6.0) -> float:
        """SIGTERM, wait; returns the seconds until exit (SIGKILL after `timeout`)."""
        if self.proc is None:
            return float("nan")
        if self.proc.poll() is not None:
            self._close()
            return float("nan")
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            elapsed = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            self.kill()
            elapsed = float("inf")
        self._close()
        return elapsed

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close()

    def _close(self) -> None:
        if self._drain is not None:
            self._drain.join(2)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self._cwd, ignore_errors=True)

    def __enter__(self) -> Server:
        # `with Server(spec).start() as s` must not start a second, orphaned server.
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the three servers ------------------------------------------------------------------


def liaison_spec() -> ServerSpec:
    return ServerSpec("liaison", "liaison", sys.executable, ["-m", "liaison.websocket"])


def floor_spec() -> ServerSpec:
    return ServerSpec("floor", "floor", sys.executable, [str(BENCH / "floor_server.py")])


def baseline_python() -> Path:
    return BASELINE_VENV / "bin" / "python"


def ensure_baseline(log=print) -> ServerSpec:
    """Create bench/.venvs/liaison-py with liaison-py 1.0.1 unless it is there already."""
    py = baseline_python()
    check = [
        str(py),
        "-c",
        "import importlib.metadata as m, websockets, numpy; print(m.version('liaison-py'))",
    ]
    if py.exists():
        r = subprocess.run(check, capture_output=True, text=True, cwd=tempfile.gettempdir())
        if r.returncode == 0 and r.stdout.strip() == "1.0.1":
            return ServerSpec(
                "baseline",
                "liaison-py 1.0.1",
                str(py),
                ["-m", "liaison.websocket"],
                fixed_port=True,
            )
    log(f"installing {BASELINE_SPEC} into {BASELINE_VENV} ...")
    BASELINE_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(BASELINE_VENV)], check=True)
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            BASELINE_SPEC,
            "websockets",
            "numpy",
        ],
        check=True,
    )
    r = subprocess.run(check, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if r.returncode != 0 or r.stdout.strip() != "1.0.1":
        raise ServerError(f"baseline install check failed: {r.stdout} {r.stderr}")
    return ServerSpec(
        "baseline", "liaison-py 1.0.1", str(py), ["-m", "liaison.websocket"], fixed_port=True
    )
