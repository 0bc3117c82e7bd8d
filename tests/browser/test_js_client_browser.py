"""liaison-client's browser build in headless Chromium, driving the real liaison.

The page (``http://127.0.0.1:PORT/``, an allowed origin) imports the ES module build
``dist/index.js``, compiled for this test into the served directory.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import ttest_ind

from conftest import LiaisonProcess, require_tool, spawn_liaison

JS_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
TSC = JS_CLIENT / "node_modules" / "typescript" / "bin" / "tsc"

# Runs in the page: imports the client, drives the liaison, reports what happened.
SCRIPT = """
const [url, done] = arguments;
(async () => {
  const {connect, LiaisonError} = await import("/dist/index.js");
  const liaison = await connect(url, {timeout: 10000});
  const outcome = {};
  outcome.ttest = await liaison.run("scipy.stats:ttest_ind", [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]);
  outcome.error = await liaison.run("operator:truediv", [1, 0]).then(
    () => "resolved", (e) => ({type: e.type, message: e.message,
                               isLiaisonError: e instanceof LiaisonError}));
  const started = Date.now();
  outcome.timeout = await liaison.run("time:sleep", [30], {}, {timeout: 200}).then(
    () => "resolved", (e) => ({type: e.type, fromLiaison: Boolean(e.reply),
                               ms: Date.now() - started}));
  await liaison.init("pusher", "remote_helpers:Pusher", ["$liaison"]);
  const pushed = new Promise((resolve) => liaison.once("alert", resolve));
  await liaison.run("pusher.alert", ["from python"]);
  outcome.pushed = await pushed;
  const partials = [];
  outcome.streamed = await liaison.run("remote_helpers:count", [3], {},
                                       {onPartial: (item) => partials.push(item)});
  outcome.partials = partials;
  const arrays = await liaison.run("remote_helpers:arrays", [3], {}, {binary: true});
  outcome.binary = {isFloat64Array: arrays[2] instanceof Float64Array,
                    values: Array.from(arrays[2]), shape: arrays[2].shape};
  // A plain Array of numbers goes raw (a binary frame) and arrives as the list JSON gives.
  const kinds = [];
  class SpyingWebSocket extends WebSocket {
    send(data) { kinds.push(typeof data === "string" ? "text" : "binary"); super.send(data); }
  }
  const spied = await connect(url, {timeout: 10000, WebSocket: SpyingWebSocket});
  const numbers = Array.from({length: 3000}, (_, i) =>
    i % 100 ? Math.sin(i) * 1000 : [0, -0, NaN, Infinity, 2 ** 60, 1e21, 5e-324][(i / 100) % 7]);
  kinds.length = 0;
  const raw = await spied.run("json:dumps", [numbers]);
  spied.binaryNumberArrays = false;
  const json = await spied.run("json:dumps", [numbers]);
  outcome.numbers = {same: raw === json, kinds, head: raw.slice(0, 40)};
  await spied.close();
  // Close once the command holds the main thread: a release sent before it starts is lost.
  let blocked;
  const holding = new Promise((resolve) => { blocked = resolve; });
  const pending = liaison.run("remote_helpers:announce_then_block", [30], {},
                              {onProgress: () => blocked()});
  await holding;
  const closed = liaison.close();
  outcome.closeRejects = await pending.then(() => "resolved", (e) => e.type);
  await closed;
  // Free the liaison's main thread (release runs on a worker thread).
  const other = await connect(url, {timeout: 10000});
  await other.run("remote_helpers:release", [], {}, {concurrent: true});
  await other.close();
  done({ok: true, outcome});
})().catch((e) => done({ok: false, error: String(e), stack: e && e.stack}));
"""


@pytest.fixture(scope="module")
def page_port(static_server: Any, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A served directory with a blank page and the client's browser build in ``dist/``."""
    node = shutil.which("node")
    require_tool(
        bool(node and TSC.is_file()),
        "LIAISON_REQUIRE_NODE",
        "needs node and `npm ci` run in clients/js",
    )
    directory: Path = tmp_path_factory.mktemp("js-page")
    (directory / "index.html").write_text("<!doctype html><title>liaison-client</title>")
    build = subprocess.run(
        [node or "node", str(TSC), "-p", "tsconfig.json", "--outDir", str(directory / "dist")],
        cwd=JS_CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 0, f"tsc failed:\n{build.stdout}\n{build.stderr}"
    port: int = static_server(str(directory))
    return port


@pytest.fixture
def page_liaison() -> Iterator[LiaisonProcess]:
    process = spawn_liaison()
    yield process
    process.stop()


def outcome_of(browser: Any, page_port: int, script: str, liaison: LiaisonProcess) -> Any:
    """Run ``script`` in the served page against ``liaison``; its outcome, once it is done."""
    browser.get(f"http://127.0.0.1:{page_port}/")
    result = browser.execute_async_script(script, f"{liaison.url}/")
    assert result["ok"], f"{result['error']}\n{result['stack']}"
    return result["outcome"]


def test_browser_build_drives_the_liaison(
    browser: Any, page_port: int, page_liaison: LiaisonProcess
) -> None:
    outcome = outcome_of(browser, page_port, SCRIPT, page_liaison)

    assert outcome["ttest"] == [float(x) for x in ttest_ind([1, 2, 3, 4, 5], [2, 3, 4, 5, 6])]
    assert outcome["error"] == {
        "type": "ZeroDivisionError",
        "message": "division by zero",
        "isLiaisonError": True,
    }
    assert outcome["timeout"]["type"] == "TimeoutError"
    assert outcome["timeout"]["fromLiaison"] is True
    assert outcome["timeout"]["ms"] < 5000
    assert outcome["pushed"] == {"tag": "alert", "text": "from python"}
    assert outcome["streamed"] == 3
    assert outcome["partials"] == [0, 1, 2]
    assert outcome["binary"] == {"isFloat64Array": True, "values": [0, 1], "shape": [2]}
    assert outcome["closeRejects"] == "ConnectionClosed"
    assert outcome["numbers"] == {"same": True, "kinds": ["binary", "text"],
                                  "head": "[0, 841.4709848078965, 909.2974268256817"}  # fmt: skip


# Runs in the page: module proxies, references, release, scoping to the connection.
PROXY_SCRIPT = """
const [url, done] = arguments;
(async () => {
  const {connect, kw} = await import("/dist/index.js");
  const liaison = await connect(url, {timeout: 10000});
  const outcome = {};
  const nameOf = (proxy) => JSON.parse(JSON.stringify(proxy)).slice(1);
  outcome.welch = await liaison.module("scipy.stats").ttest_ind(
    [1, 2, 3, 4, 5], [2, 4, 6, 8, 10], kw({equal_var: false}));
  outcome.joined = await liaison.module("os").path.join("a", "b");
  outcome.pi = await liaison.module("math").pi;
  const rng = await liaison.module("random").Random(42);
  outcome.rngIsProxy = typeof rng === "function";
  outcome.randint = await rng.randint(5, 5);
  const queue = await liaison.module("collections").deque([3, 1, 2]);
  outcome.passedBack = await liaison.module("builtins").sorted(queue, kw({reverse: true}));
  const released = nameOf(rng);
  await liaison.release(rng, queue);
  outcome.afterRelease = await rng.random().then(() => "resolved",
                                                 (e) => ({type: e.type, message: e.message}));
  outcome.releasedName = released;
  const before = await liaison.names();
  for (let i = 0; i < 200; i++) await liaison.release(await liaison.module("random").Random(i));
  outcome.namesStayed = JSON.stringify(await liaison.names()) === JSON.stringify(before);
  const other = await connect(url, {timeout: 10000});
  const scoped = nameOf(await other.module("random").Random(1));
  outcome.scopedSeen = (await liaison.names()).includes(scoped);
  await other.close();
  let left = true;
  for (let i = 0; i < 1000 && left; i++) left = (await liaison.names()).includes(scoped);
  outcome.scopedFreed = !left;
  await liaison.close();
  done({ok: true, outcome});
})().catch((e) => done({ok: false, error: String(e), stack: e && e.stack}));
"""


def test_browser_proxies_and_references(
    browser: Any, page_port: int, page_liaison: LiaisonProcess
) -> None:
    outcome = outcome_of(browser, page_port, PROXY_SCRIPT, page_liaison)
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10]
    assert outcome["welch"] == [float(x) for x in ttest_ind(a, b, equal_var=False)]
    assert outcome["joined"] == "a/b"
    assert outcome["pi"] == 3.141592653589793
    assert outcome["rngIsProxy"] is True
    assert outcome["randint"] == 5
    assert outcome["passedBack"] == [3, 2, 1]
    assert outcome["afterRelease"]["type"] == "NameNotFound"
    assert outcome["releasedName"] in outcome["afterRelease"]["message"]
    assert outcome["namesStayed"] is True
    assert outcome["scopedSeen"] is True
    assert outcome["scopedFreed"] is True
