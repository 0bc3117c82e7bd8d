"""The JavaScript client (clients/js) against the real liaison, run from pytest.

The examples of clients/js run as plain scripts against the built client (clients/js/dist,
which `npm ci` builds), with this Python as the liaison's. The node:test suites (`npm
test`) run where clients/js/README.md's Development block says to run them: its test in
tests/test_docs_examples.py runs that block as written, in a fresh copy of the repository.
Skipped without node, npm and an installed clients/js/node_modules (`npm ci`), unless
LIAISON_REQUIRE_NODE is set (CI): then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scipy.stats import ttest_ind

from conftest import require_tool, spawn_liaison

JS_CLIENT = Path(__file__).resolve().parent.parent / "clients" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")


@pytest.fixture(autouse=True)
def _node_installed() -> None:
    require_tool(
        bool(NODE and NPM and (JS_CLIENT / "node_modules").is_dir()),
        "LIAISON_REQUIRE_NODE",
        "needs node, npm and `npm ci` run in clients/js",
    )


def _run_in_js_client(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command in clients/js with this Python as the liaison's interpreter."""
    return subprocess.run(
        argv,
        cwd=JS_CLIENT,
        env={**os.environ, "LIAISON_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no longer runs; reaping it is its parent's job


def test_seed_readme_example_runs_the_t_test_and_leaves_no_liaison() -> None:
    result = _run_in_js_client(NODE or "node", "examples/seed-readme.mjs", timeout=30)
    assert result.returncode == 0, f"the example failed:\n{result.stdout}\n{result.stderr}"
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    a = [0.5982758, 0.67019733, 0.68617796, 0.28764011]
    b = [0.41138649, 1.67023998, 1.0420896, 1.49671732]
    assert printed["response"] == [float(x) for x in ttest_ind(a, b, equal_var=False)]
    assert printed["response"] == pytest.approx([-2.008309436290938, 0.1217799378120249])

    # The example killed the shell; the liaison exits itself within about a second when
    # orphaned (it polls its parent). Waiting on a process that is not our child can only poll.
    pid = printed["pid"]
    deadline = time.monotonic() + 5
    while not _is_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _is_gone(pid), f"the liaison (pid {pid}) still runs"
    host, port = printed["address"].rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), 1):
        pass


def test_seed_readme_example_says_clearly_when_its_python_lacks_liaison() -> None:
    # The venv's base interpreter: the same Python without the venv's packages.
    bare = os.path.join(sys.base_prefix, "bin", "python3")
    lacks = subprocess.run([bare, "-c", "import liaison"], capture_output=True, env={})
    if lacks.returncode == 0:
        pytest.skip(f"{bare} has liaison installed")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [NODE or "node", "examples/seed-readme.mjs"], cwd=JS_CLIENT,
        env={**env, "LIAISON_PYTHON": bare}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "No module named 'liaison'" in result.stderr
    assert "Set LIAISON_PYTHON" in result.stderr
    # It printed a stack trace and a byte dump of the child's output.
    assert "    at " not in result.stderr and "<Buffer" not in result.stderr


def test_the_examples_default_to_the_repositorys_venv() -> None:
    venv_python = JS_CLIENT.parent.parent / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("no .venv in the repository (scripts/test.sh --python uses .venv-X.Y)")
    env = {k: v for k, v in os.environ.items() if k != "LIAISON_PYTHON"}
    result = subprocess.run(
        [NODE or "node", "--input-type=module", "-e",
         "import { python } from './examples/python.mjs'; console.log(python);"],
        cwd=JS_CLIENT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.stdout.strip() == str(venv_python)


def test_the_ten_line_quickstart_prints_the_t_test() -> None:
    result = _run_in_js_client(NODE or "node", "examples/ttest.mjs", timeout=30)
    assert result.returncode == 0, f"the quickstart failed:\n{result.stdout}\n{result.stderr}"
    a = [0.5982758, 0.67019733, 0.68617796, 0.28764011]
    b = [0.41138649, 1.67023998, 1.0420896, 1.49671732]
    assert json.loads(result.stdout) == [float(x) for x in ttest_ind(a, b, equal_var=False)]


def test_the_proxies_example_of_the_readme_runs() -> None:
    result = _run_in_js_client(NODE or "node", "examples/proxies.mjs", timeout=30)
    assert result.returncode == 0, f"the example failed:\n{result.stdout}\n{result.stderr}"
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    a = [0.5982758, 0.67019733, 0.68617796, 0.28764011]
    b = [0.41138649, 1.67023998, 1.0420896, 1.49671732]
    expected = ttest_ind(a, b, equal_var=False)
    assert [printed["statistic"], printed["pvalue"]] == [float(x) for x in expected]
    assert printed["sep"] == os.sep and printed["same"] is True
    first, die = printed["draws"]
    assert 0 <= first < 1 and die in range(1, 7)


def test_a_node_client_gets_in_without_token_or_flags() -> None:
    # Node sends no Origin, as PsychoPy Studio's launcher (Electron's main process) does:
    # refusing `null` and `file://` by default must not touch it.
    process = spawn_liaison("--log-level", "info")
    script = (
        "import { connect } from './dist/node.js';"
        "const liaison = await connect(process.argv[1]);"
        "console.log(JSON.stringify(await liaison.run('operator:add', [2, 3])));"
        "await liaison.close();"
    )
    try:
        result = _run_in_js_client(
            NODE or "node", "--input-type=module", "-e", script, process.url, timeout=30
        )
    finally:
        process.stop()
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    assert json.loads(result.stdout) == 5
    assert "refused" not in process.stderr_text()
    assert "client connected" in process.stderr_text()
