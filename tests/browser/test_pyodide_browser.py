"""liaison-client/pyodide in headless Chromium: the liaison itself in Pyodide, in a Web
Worker of a page served with the COOP/COEP headers that make SharedArrayBuffer exist.

The server here serves files only (the client built for the test in dist/, Pyodide in
clients/js/node_modules/pyodide/, the example in clients/js/examples/); no liaison
process runs, and no Python process is started by the browser (checked on its process
tree).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import descendants, require_tool

pytestmark = pytest.mark.slow  # each boots Pyodide in Chromium: seconds

JS_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
PYODIDE = JS_CLIENT / "node_modules" / "pyodide"
TSC = JS_CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
BLANK = b"<!doctype html><meta charset=utf-8><title>pyodide</title>"


class _IsolatingHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers of a cross-origin isolated page (unless not
    ``isolating``)."""

    isolating = True

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def end_headers(self) -> None:
        if self.isolating:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path == "/blank.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(BLANK)))
            self.end_headers()
            self.wfile.write(BLANK)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _PlainHandler(_IsolatingHandler):
    isolating = False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """clients/js as a page sees it (the client built for this test in ``dist/``, its
    ``node_modules/`` and ``examples/``), served on 127.0.0.1 (a secure context) with
    COOP/COEP (``site["isolated"]``) and without (``site["plain"]``)."""
    node = shutil.which("node")
    require_tool(
        bool(node and PYODIDE.is_dir() and TSC.is_file()),
        "LIAISON_REQUIRE_NODE",
        "needs node and `npm ci` run in clients/js",
    )
    root: Path = tmp_path_factory.mktemp("pyodide-site")
    for name in ("node_modules", "examples"):
        (root / name).symlink_to(JS_CLIENT / name)
    for argv in (
        [str(TSC), "-p", "tsconfig.json", "--outDir", str(root / "dist")],
        ["scripts/embed-python.mjs", str(root / "dist")],
    ):
        build = subprocess.run(
            [node or "node", *argv], cwd=JS_CLIENT, capture_output=True, text=True, timeout=120
        )
        assert build.returncode == 0, f"the build failed:\n{build.stdout}\n{build.stderr}"

    servers = {}
    for name, kind in (("isolated", _IsolatingHandler), ("plain", _PlainHandler)):
        handler = functools.partial(kind, directory=str(root))
        servers[name] = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=servers[name].serve_forever, daemon=True).start()
    try:
        yield {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def _python_processes_under(pid: int) -> list[str]:
    """The command lines of the Python processes among ``pid``'s descendants."""
    found = []
    for child in descendants(pid):
        try:
            exe = os.path.basename(os.readlink(f"/proc/{child}/exe"))
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "python" in exe or "python" in cmdline.split(" ", 1)[0]:
            found.append(cmdline)
    return found


@pytest.fixture
def python_free_browser(browser: Any) -> Iterator[Any]:
    """The browser, checked afterwards: no Python process among its descendants."""
    browser.set_script_timeout(120)
    driver_pid = browser.service.process.pid
    # Watch while the page runs, too: a Python started and ended in between counts.
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(_python_processes_under(driver_pid))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield browser
    finally:
        stop.set()
        watcher.join()
        browser.set_script_timeout(20)
    assert descendants(driver_pid), "the browser's processes were seen"
    assert seen == [], f"Python processes under the browser: {seen}"


# Runs in the page: starts the liaison in a worker and reports what each call did.
SCRIPT = """
const [done] = arguments;
(async () => {
  const {startPyodideLiaison, Liaison, RemoteError} = await import("/dist/pyodide.js");
  const outcome = {isolated: globalThis.crossOriginIsolated === true};
  const liaison = await startPyodideLiaison({
    indexURL: `${location.origin}/node_modules/pyodide/`,
    files: {"page_helpers.py": `
import liaison

def steps(n):
    for i in range(n):
        liaison.progress(i)
    return "done"

def spin():
    while True:
        pass

class Pusher:
    def __init__(self, handle):
        self.handle = handle

    def alert(self, text):
        self.handle.send({"tag": "alert", "text": text})
        return text
`}});
  outcome.isLiaison = liaison instanceof Liaison;
  outcome.call = await liaison.run("operator:add", [2, 3]);
  outcome.platform = await liaison.get("sys:platform");
  outcome.error = await liaison.run("operator:truediv", [1, 0]).then(
    () => "resolved", (e) => ({type: e.type, remote: e instanceof RemoteError}));
  const progress = [];
  outcome.steps = await liaison.run("page_helpers:steps", [3], {},
                                    {onProgress: (p) => progress.push(p)});
  outcome.progress = progress;
  await liaison.init("pusher", "page_helpers:Pusher", ["$liaison"]);
  const pushed = new Promise((resolve) => liaison.once("alert", resolve));
  await liaison.run("pusher.alert", ["from pyodide"]);
  outcome.pushed = await pushed;
  const rng = await liaison.module("random").Random(42);
  outcome.proxy = {isProxy: typeof rng === "function", randint: await rng.randint(4, 4)};
  await liaison.release(rng);
  outcome.timeout = await liaison.run("page_helpers:spin", [], {}, {timeout: 300}).then(
    () => "resolved", (e) => ({type: e.type, fromLiaison: Boolean(e.reply)}));
  outcome.after = await liaison.ping();
  await liaison.close();
  done({ok: true, outcome});
})().catch((e) => done({ok: false, error: String(e), stack: e && e.stack}));
"""


def test_the_liaison_runs_in_a_web_worker_of_an_isolated_page(
    python_free_browser: Any, site: dict[str, str]
) -> None:
    python_free_browser.get(f"{site['isolated']}/blank.html")
    result = python_free_browser.execute_async_script(SCRIPT)
    assert result["ok"], f"{result['error']}\n{result['stack']}"
    outcome = result["outcome"]
    assert outcome["isolated"] is True
    assert outcome["isLiaison"] is True
    assert outcome["call"] == 5
    assert outcome["platform"] == "emscripten"
    assert outcome["error"] == {"type": "ZeroDivisionError", "remote": True}
    assert outcome["steps"] == "done"
    assert outcome["progress"] == [0, 1, 2]
    assert outcome["pushed"] == {"tag": "alert", "text": "from pyodide"}
    assert outcome["proxy"] == {"isProxy": True, "randint": 4}
    # The busy loop was interrupted by the liaison's own timeout (the interrupt buffer).
    assert outcome["timeout"] == {"type": "TimeoutError", "fromLiaison": True}
    assert outcome["after"] == "pong"


def test_the_browser_example_runs_its_calls_with_progress(
    python_free_browser: Any, site: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    python_free_browser.get(f"{site['isolated']}/examples/browser-pyodide/")
    status = python_free_browser.find_element(By.ID, "status")
    WebDriverWait(python_free_browser, 120).until(
        lambda _: status.text == "done" or status.text.startswith("failed")
    )
    assert status.text == "done"
    items = python_free_browser.find_elements(By.CSS_SELECTOR, "#results li")
    values = {item.get_attribute("data-name"): item.get_attribute("data-value") for item in items}
    assert values["mean"] == "2.5"
    assert abs(float(values["pi"]) - 3.1416) < 0.02
    assert values["progress"] == "[" + ",".join(str(20_000 * i) for i in range(1, 11)) + "]"
    assert values["python"].startswith('"3.')
    assert values["interruptible"] == "true"
    assert python_free_browser.find_element(By.ID, "bar").get_attribute("value") == "1"


# Runs in a page that is not cross-origin isolated: no SharedArrayBuffer, so nothing can
# interrupt a running synchronous command (docs/protocol.md, "The Pyodide transport").
UNISOLATED_SCRIPT = """
const [done] = arguments;
(async () => {
  const {startPyodideLiaison} = await import("/dist/pyodide.js");
  const outcome = {isolated: globalThis.crossOriginIsolated === true};
  const liaison = await startPyodideLiaison({
    indexURL: `${location.origin}/node_modules/pyodide/`,
    files: {"busy.py": "def spin():\\n    while True:\\n        pass\\n"}});
  outcome.call = await liaison.run("operator:add", [2, 3]);
  outcome.timeout = await liaison.run("busy:spin", [], {}, {timeout: 300}).then(
    () => "resolved", (e) => ({type: e.type, fromLiaison: Boolean(e.reply),
                               clientSide: /client-side/.test(e.message)}));
  await liaison.close();  // ends the worker, and the spinning command with it
  outcome.closed = !liaison.connected;
  done({ok: true, outcome});
})().catch((e) => done({ok: false, error: String(e), stack: e && e.stack}));
"""


def test_without_isolation_a_timeout_rejects_client_side_and_close_ends_the_worker(
    python_free_browser: Any, site: dict[str, str]
) -> None:
    python_free_browser.get(f"{site['plain']}/blank.html")
    result = python_free_browser.execute_async_script(UNISOLATED_SCRIPT)
    assert result["ok"], f"{result['error']}\n{result['stack']}"
    outcome = result["outcome"]
    assert outcome["isolated"] is False
    assert outcome["call"] == 5
    assert outcome["timeout"] == {"type": "TimeoutError", "fromLiaison": False, "clientSide": True}
    assert outcome["closed"] is True
