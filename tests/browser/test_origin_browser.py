"""A real browser: a local page drives the liaison, a foreign site cannot (CSWSH, rebinding,
a sandboxed frame's `Origin: null`), nor can a local HTML file, unless a flag admits them.

The same static page is loaded as ``http://127.0.0.1:PORT/`` and as
``http://evil.test:PORT/`` (evil.test maps to 127.0.0.1 inside this browser only).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiaisonProcess, spawn_liaison

from .conftest import FOREIGN_HOST

# Opens a plain WebSocket, runs `operator:add 2 3` and reports what happened: the reply,
# or how the socket failed. Selenium's async script calls `done` with the outcome.
PROBE_FUNCTION = """
function probe(url, report) {
  const outcome = {opened: false, replies: [], closed: null, error: false};
  const ws = new WebSocket(url);
  ws.onopen = () => {
    outcome.opened = true;
    ws.send(JSON.stringify({command: {command: "run", args: ["operator:add", 2, 3]},
                            id: "from-the-page"}));
  };
  ws.onmessage = (event) => { outcome.replies.push(JSON.parse(event.data)); ws.close(); };
  ws.onerror = () => { outcome.error = true; };
  ws.onclose = (event) => { outcome.closed = event.code; report(outcome); };
}
"""
PROBE = PROBE_FUNCTION + "probe(arguments[0], arguments[1]);"

# The same probe inside an iframe sandboxed with only allow-scripts, as any web page can
# make one: its origin is opaque, so the browser sends `Origin: null`.
FRAME_PROBE = (
    PROBE_FUNCTION
    + """
const [url, done] = arguments;
const frame = document.createElement("iframe");
frame.sandbox = "allow-scripts";
frame.srcdoc = `<script>${probe.toString()}
  probe(${JSON.stringify(url)}, (outcome) => parent.postMessage(outcome, "*"));<\\/script>`;
window.addEventListener("message", (event) => done(event.data));
document.body.appendChild(frame);
"""
)

REFUSED = {"opened": False, "replies": [], "closed": 1006, "error": True}


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
    assert [reply["response"] for reply in outcome["replies"]] == [5]


@pytest.mark.parametrize("target_host", ["127.0.0.1", FOREIGN_HOST])
def test_a_foreign_page_cannot_connect(
    browser: Any, page_port: int, browser_liaison: LiaisonProcess, target_host: str
) -> None:
    # 127.0.0.1: cross-site WebSocket hijacking; evil.test: DNS rebinding to loopback.
    url = f"ws://{target_host}:{browser_liaison.port}"
    outcome = probe(browser, f"http://{FOREIGN_HOST}:{page_port}/", url)
    assert outcome == REFUSED
    expected = "is not allowed" if target_host == "127.0.0.1" else "Host header"
    stderr = logged(browser_liaison, expected)
    assert expected in stderr
    assert f"Origin: http://{FOREIGN_HOST}:{page_port}" in stderr


TOKEN = "per-launch-secret"


@pytest.mark.parametrize(
    ("flags", "token", "gets_in"),
    [
        ((), None, False),  # PsychoPy Studio's launch: no token, no flag
        (("--allow-origin", "null"), None, True),
        ((), TOKEN, False),  # the frame has the token, yet its origin keeps it out
        (("--allow-origin", "null"), TOKEN, True),
    ],
)
def test_a_sandboxed_frame_of_a_foreign_site_needs_allow_origin_null(
    browser: Any, page_port: int, flags: tuple[str, ...], token: str | None, gets_in: bool
) -> None:
    env = {} if token is None else {"LIAISON_TOKEN": token}
    process = spawn_liaison("--log-level", "info", *flags, env=env)
    try:
        url = process.url + ("" if token is None else f"/?token={token}")
        browser.get(f"http://{FOREIGN_HOST}:{page_port}/")
        outcome = browser.execute_async_script(FRAME_PROBE, url)
        if gets_in:
            assert outcome["opened"] is True
            assert [reply["response"] for reply in outcome["replies"]] == [5]
        else:
            assert outcome == REFUSED
            refusal = "Origin null is not allowed; start the liaison with --allow-origin null"
            stderr = logged(process, refusal)
            assert refusal in stderr and "Origin: null" in stderr
            assert TOKEN not in stderr
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("flags", "gets_in"),
    [
        ((), False),
        # Chromium sends `Origin: null` for a local file, as a sandboxed frame does;
        # `file://` is what Electron's renderer sends (see docs/security.md).
        (("--allow-origin", "file://"), False),
        (("--allow-origin", "null"), True),
    ],
)
def test_a_local_html_file_is_refused_unless_null_is_allowed(
    browser: Any, tmp_path: Path, flags: tuple[str, ...], gets_in: bool
) -> None:
    # Any HTML file the user opens (a downloaded attachment, say) is such a page.
    page = tmp_path / "attachment.html"
    page.write_text("<!doctype html><title>a local file</title>")
    process = spawn_liaison("--log-level", "info", *flags)
    try:
        outcome = probe(browser, page.as_uri(), process.url)
        if gets_in:
            assert [reply["response"] for reply in outcome["replies"]] == [5]
        else:
            assert outcome == REFUSED
            refusal = "Origin null is not allowed; start the liaison with --allow-origin null"
            assert refusal in logged(process, refusal)
    finally:
        process.stop()


def test_the_browser_keeps_its_temporary_folders_in_its_own_folder(
    browser: Any, browser_scratch: Path
) -> None:
    # Two org.chromium.Chromium.* folders per run stayed in the system temp directory.
    profile = browser_scratch / "profile"
    assert profile.is_dir()
    singleton = Path(os.readlink(profile / "SingletonSocket"))
    assert singleton.parent.name.startswith("org.chromium.Chromium.")
    assert singleton.parent.parent == browser_scratch
