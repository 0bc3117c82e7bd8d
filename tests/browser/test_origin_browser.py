"""A real browser: a local page drives the liaison, a foreign site cannot (CSWSH, rebinding).

The same static page is loaded as ``http://127.0.0.1:PORT/`` and as
``http://evil.test:PORT/`` (evil.test maps to 127.0.0.1 inside this browser only).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiaisonProcess, spawn_liaison

from .conftest import FOREIGN_HOST

# Opens a plain WebSocket, sends one command and reports what happened: the reply, or
# how the socket failed. Selenium's async script calls `done` with the outcome.
PROBE = """
const [url, done] = arguments;
const outcome = {opened: false, replies: [], closed: null, error: false};
const ws = new WebSocket(url);
ws.onopen = () => {
  outcome.opened = true;
  ws.send(JSON.stringify({command: {command: "run", args: ["builtins:sum", [1, 2, 3]]},
                          id: "from-the-page"}));
};
ws.onmessage = (event) => { outcome.replies.push(JSON.parse(event.data)); ws.close(); };
ws.onerror = () => { outcome.error = true; };
ws.onclose = (event) => { outcome.closed = event.code; done(outcome); };
"""


@pytest.fixture(scope="module")
def page_port(static_server: Any, tmp_path_factory: pytest.TempPathFactory) -> int:
    directory: Path = tmp_path_factory.mktemp("page")
    (directory / "index.html").write_text("<!doctype html><title>page</title>")
    port: int = static_server(str(directory))
    return port


@pytest.fixture
def browser_liaison() -> Iterator[LiaisonProcess]:
    process = spawn_liaison("--log-level", "info")
    yield process
    process.stop()


def logged(process: LiaisonProcess, text: str, timeout: float = 10.0) -> str:
    """The liaison's stderr once it holds ``text`` (a thread drains it: it may lag)."""
    deadline = time.monotonic() + timeout
    while text not in (stderr := process.stderr_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return stderr


def probe(browser: Any, page: str, url: str) -> dict[str, Any]:
    browser.get(page)
    outcome: dict[str, Any] = browser.execute_async_script(PROBE, url)
    return outcome


def test_a_local_page_runs_a_command(
    browser: Any, page_port: int, browser_liaison: LiaisonProcess
) -> None:
    outcome = probe(browser, f"http://127.0.0.1:{page_port}/", browser_liaison.url)
    assert outcome["opened"] is True
    assert [reply["response"] for reply in outcome["replies"]] == [6]


@pytest.mark.parametrize("target_host", ["127.0.0.1", FOREIGN_HOST])
def test_a_foreign_page_cannot_connect(
    browser: Any, page_port: int, browser_liaison: LiaisonProcess, target_host: str
) -> None:
    # 127.0.0.1: cross-site WebSocket hijacking; evil.test: DNS rebinding to loopback.
    url = f"ws://{target_host}:{browser_liaison.port}"
    outcome = probe(browser, f"http://{FOREIGN_HOST}:{page_port}/", url)
    assert outcome == {"opened": False, "replies": [], "closed": 1006, "error": True}
    expected = "Origin not allowed" if target_host == "127.0.0.1" else "Host header"
    stderr = logged(browser_liaison, expected)
    assert expected in stderr
    assert f"Origin: http://{FOREIGN_HOST}:{page_port}" in stderr


def test_a_sandboxed_foreign_frame_needs_the_token(
    browser: Any, page_port: int, tmp_path: Path
) -> None:
    # A sandboxed iframe has the origin "null", which must stay allowed for Electron
    # pages: without a token a hostile site could reach the liaison this way; the token
    # is what stops it (see docs/security.md).
    process = spawn_liaison(env={"LIAISON_TOKEN": "per-launch-secret"})
    try:
        browser.get(f"http://{FOREIGN_HOST}:{page_port}/")
        script = """
const [url, done] = arguments;
const frame = document.createElement("iframe");
frame.sandbox = "allow-scripts";
frame.srcdoc = `<script>
  const ws = new WebSocket(${JSON.stringify(url)});
  ws.onopen = () => parent.postMessage("opened", "*");
  ws.onclose = (event) => parent.postMessage("closed " + event.code, "*");
<\\/script>`;
window.addEventListener("message", (event) => done(event.data));
document.body.appendChild(frame);
"""
        assert browser.execute_async_script(script, process.url) == "closed 1006"
        stderr = logged(process, "a token is required")
        assert "a token is required" in stderr and "Origin: null" in stderr
    finally:
        process.stop()
