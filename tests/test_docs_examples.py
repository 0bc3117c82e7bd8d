"""Every example of README.md, clients/js/README.md and docs/*.md runs as written.

Each fenced code block is one test, named ``doc:line``:

- ``sh``: run with bash in a fresh copy of the repository's files (so installs and
  builds touch nothing here), with ``python3`` being the interpreter under test. A block
  that starts a liaison is stopped like Ctrl-C (SIGINT to its process group) once its
  start marker is out. Markers named in the next paragraph (``It prints `...` ``) must
  be in its output.
- ``json``: a message, sent to a real liaison; it must succeed, and match the reply the
  next paragraph shows, if it shows one.
- ``→``/``←`` transcripts: the ``→`` messages are sent in order to a fresh liaison, and
  each ``←`` must match one message received (in any order; ``...`` elides, see
  ``parse_pattern``).
- ``python``, ``js``: run (Node for js, in a folder where ``liaison-client`` is
  installed) against a real liaison; a fragment using ``liaison`` without making it gets
  a connected one. A line ``print(...)  # X`` / ``console.log(...); // X`` must print X.
- a synopsis (``python -m liaison.X [--flag ...]``): every flag must be in that
  command's ``--help``.

``127.0.0.1:8765`` becomes a free port. An example that cannot run here says why in an
HTML comment right before its block, ``<!-- not run in CI: REASON -->``; it is skipped
with that reason, and nothing else is. An example this test cannot read fails, naming
the doc and line. The modules the examples call (``lab``) are in tests/doc_modules.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import TESTS, RawClient, free_port, require_tool, spawn_liaison

REPO = Path(TESTS).parent
DOC_MODULES = os.path.join(TESTS, "doc_modules")
DOCS = [REPO / "README.md", REPO / "clients" / "js" / "README.md", *sorted(REPO.glob("docs/*.md"))]
NOT_RUN = re.compile(r"<!--\s*not run in CI:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
DOC_PORT = "8765"
JS_CLIENT = REPO / "clients" / "js"


@dataclass
class Example:
    doc: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason given in the doc
    after: str  # the paragraph after the block (where documented output may be)

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def collect(path: Path) -> list[Example]:
    lines = path.read_text().splitlines()
    examples: list[Example] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        indent = len(opening.group(1))
        index += 1
        body: list[str] = []
        while index < len(lines) and not FENCE.match(lines[index]):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1  # the closing fence
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = NOT_RUN.search(before)
        after: list[str] = []
        for line in lines[index:]:
            if not line.strip() and after:
                break
            if line.strip():
                after.append(line)
        examples.append(
            Example(
                str(path.relative_to(REPO)),
                start + 1,
                opening.group(2),
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                " ".join(after),
            )
        )
    return examples


EXAMPLES = [example for doc in DOCS for example in collect(doc)]


# --- documented values with "..." in them --------------------------------------------


class Anything:
    """``...``, ``{...}``, ``{...the message...}``, ``[...]``: any value there."""

    def __repr__(self) -> str:
        return "..."


@dataclass
class OpenDict:
    """``{"a": 1, ...}``: at least these keys (``open``), or exactly them."""

    items: dict[str, Any]
    open: bool


@dataclass
class OpenList:
    """``[1, 2, ...]``: these first items (``open``), or exactly these."""

    items: list[Any]
    open: bool


@dataclass
class Elided:
    """A string with ``...`` in it: any text there."""

    text: str


class PatternError(ValueError):
    pass


def parse_pattern(text: str) -> tuple[Any, str]:
    """JSON in which ``...`` elides (see the classes above); returns the value and the
    text left after it. Raises PatternError."""
    value, position = _parse_value(text, _skip(text, 0))
    return value, text[position:]


_WORD = re.compile(r"-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?)|true|false|null")


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _parse_value(text: str, position: int) -> tuple[Any, int]:
    if text.startswith("...", position):
        return Anything(), position + 3
    char = text[position : position + 1]
    if char == "{":
        if text.startswith("{...", position):  # {...} or {...the message...}
            end = text.find("}", position)
            if end < 0:
                raise PatternError(f"unclosed {{... at {position}")
            return Anything(), end + 1
        return _parse_object(text, position + 1)
    if char == "[":
        return _parse_array(text, position + 1)
    if char == '"':
        try:
            string, end = json.decoder.scanstring(text, position + 1)
        except json.JSONDecodeError as error:
            raise PatternError(str(error)) from None
        return (Elided(string) if "..." in string else string), end
    word = _WORD.match(text, position)
    if not word:
        raise PatternError(f"expected a value at {position}: {text[position : position + 30]!r}")
    return json.loads(word.group()), word.end()


def _parse_object(text: str, position: int) -> tuple[Any, int]:
    items: dict[str, Any] = {}
    is_open = False
    position = _skip(text, position)
    while not text.startswith("}", position):
        if text.startswith("...", position):
            is_open, position = True, position + 3
        else:
            key, position = _parse_value(text, position)
            if not isinstance(key, str):
                raise PatternError(f"an object key must be a string at {position}")
            position = _skip(text, position)
            if not text.startswith(":", position):
                raise PatternError(f"expected ':' at {position}")
            items[key], position = _parse_value(text, _skip(text, position + 1))
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
        elif not text.startswith("}", position):
            raise PatternError(f"expected ',' or '}}' at {position}: {text[position:][:30]!r}")
    return OpenDict(items, is_open), position + 1


def _parse_array(text: str, position: int) -> tuple[Any, int]:
    items: list[Any] = []
    is_open = False
    position = _skip(text, position)
    while not text.startswith("]", position):
        if text.startswith("...", position):
            is_open, position = True, position + 3
        else:
            item, position = _parse_value(text, position)
            items.append(item)
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
        elif not text.startswith("]", position):
            raise PatternError(f"expected ',' or ']' at {position}: {text[position:][:30]!r}")
    return OpenList(items, is_open), position + 1


def matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, Anything):
        return True
    if isinstance(pattern, OpenDict):
        return (
            isinstance(value, dict)
            and all(key in value and matches(p, value[key]) for key, p in pattern.items.items())
            and (pattern.open or set(value) == set(pattern.items))
        )
    if isinstance(pattern, OpenList):
        if not isinstance(value, list) or len(value) < len(pattern.items):
            return False
        if not pattern.open and len(value) != len(pattern.items):
            return False
        return all(matches(p, v) for p, v in zip(pattern.items, value, strict=False))
    if isinstance(pattern, Elided):
        # "Serialize ``obj``. ..." stands for "Serialize ``obj``.\n\nIf ...": spaces around
        # an ellipsis are part of what it elides.
        parts = [re.escape(part) for part in re.split(r"\s*\.\.\.\s*", pattern.text)]
        return isinstance(value, str) and re.fullmatch(".*".join(parts), value, re.S) is not None
    if isinstance(pattern, float) or isinstance(value, float):
        return isinstance(value, (int, float)) and math.isclose(pattern, value, rel_tol=1e-9)
    return bool(pattern == value and type(pattern) is type(value))


def same_printed_line(documented: str, printed: str) -> bool:
    """Word by word; numbers within 1e-9 (the last digits differ between library versions)."""
    ours, theirs = documented.split(), printed.split()
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs, strict=True):
        try:
            if not math.isclose(float(a), float(b), rel_tol=1e-9):
                return False
        except ValueError:
            if a != b:
                return False
    return True


# --- running them ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_liaison() -> Iterator[Any]:
    process = spawn_liaison(env={"PYTHONPATH": os.pathsep.join([DOC_MODULES, TESTS])})
    yield process
    process.stop()


def fresh_doc_liaison() -> Any:
    return spawn_liaison(env={"PYTHONPATH": os.pathsep.join([DOC_MODULES, TESTS])})


def _with_port(text: str, port: int) -> str:
    return text.replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{port}")


def _python_shims(directory: Path) -> str:
    """A PATH whose ``python3`` and ``python`` are the interpreter under test (its base
    interpreter: ``python3 -m venv`` then makes a venv of that version)."""
    directory.mkdir()
    for name in ("python3", "python"):
        (directory / name).symlink_to(os.path.realpath(sys.executable))
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def _repository_copy(destination: Path) -> Path:
    """The repository's files (tracked and new, not ignored), as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run_shell(example: Example, tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    repository = _repository_copy(tmp_path / "liaison")
    if "-m venv .venv" not in example.code:
        # The block uses the venv an earlier step made: this test's own.
        (repository / ".venv").symlink_to(sys.prefix)
    port = free_port()
    code = _with_port(example.code, port)
    expected = [
        _with_port(text, port)
        for text in re.findall(r"`([^`]*LIAISON:[^`]*)`", example.after)
    ]  # fmt: skip
    # stderr to a file: a verbose install must not fill a pipe nobody reads meanwhile.
    with (tmp_path / "stderr").open("wb") as stderr_file:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", code],
            cwd=repository, stdout=subprocess.PIPE, stderr=stderr_file,
            env={**os.environ, "PATH": _python_shims(tmp_path / "shims"),
                 "PYTHONPATH": DOC_MODULES},
            start_new_session=True,
        )  # fmt: skip
    assert process.stdout is not None
    output = b""
    interrupted = False
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if not select.select([process.stdout], [], [], 1.0)[0]:
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            output += chunk
            if b"LIAISON:CONNECTED@" in output and not interrupted:
                # A server: stopped like Ctrl-C in its terminal, then it must exit.
                os.killpg(process.pid, signal.SIGINT)
                interrupted = True
            if not chunk:  # EOF: every process of the block has exited
                break
        process.wait(30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
    stderr = (tmp_path / "stderr").read_text(errors="replace")
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{example.name} exited {process.returncode}:\n{text}\n{stderr}"
    for documented in expected:
        assert documented in text, f"{example.name}: documented {documented!r}, got {text!r}"


def run_json(example: Example) -> None:
    try:
        message = json.loads(example.code)
    except json.JSONDecodeError as error:
        pytest.fail(f"{example.name}: not a JSON message ({error}); mark it if it is a shape")
    assert isinstance(message, dict) and "command" in message, f"{example.name}: not a message"
    documented = next(
        (text for text in re.findall(r"`(\{[^`]*\})`", example.after) if '"tag"' in text), None
    )
    process = fresh_doc_liaison()
    try:
        client = RawClient(process.url)
        client.send(message)
        reply = client.receive(60)
    finally:
        process.stop()
    assert "response" in reply, f"{example.name}: {reply}"
    if documented is not None:
        pattern = _parse_or_fail(example, documented)
        assert matches(pattern, reply), f"{example.name}: documented {documented}, got {reply}"


def _parse_or_fail(example: Example, text: str) -> Any:
    try:
        pattern, rest = parse_pattern(text)
    except PatternError as error:
        pytest.fail(f"{example.name}: cannot read the documented value {text!r}: {error}")
    rest = rest.strip()
    if rest and not (rest.startswith("(") and rest.endswith(")")):
        pytest.fail(f"{example.name}: unexpected text after the value: {rest!r}")
    return pattern


def _message_or_fail(example: Example, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        pytest.fail(f"{example.name}: cannot send {text!r}, not JSON: {error}")


def transcript_entries(example: Example) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for line in example.code.splitlines():
        stripped = line.strip()
        if stripped[:1] in ("→", "←"):
            entries.append((stripped[0], stripped[1:].strip()))
        elif stripped.startswith("(") and stripped.endswith(")"):
            continue  # an aside, e.g. "(stdout: LIAISON:DISCONNECTED@HOST:PORT)"
        elif stripped and entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + stripped)
        elif stripped:
            pytest.fail(f"{example.name}: a line that is neither → nor ←: {stripped!r}")
    return entries


def run_transcript(example: Example) -> None:
    entries = transcript_entries(example)
    sent = [_message_or_fail(example, text) for arrow, text in entries if arrow == "→"]
    expected = [(text, _parse_or_fail(example, text)) for arrow, text in entries if arrow == "←"]
    process = fresh_doc_liaison()
    try:
        client = RawClient(process.url)
        for message in sent:
            client.send(message)
        received = [client.receive(60) for _ in expected]
    finally:
        process.stop()
    unmatched = list(received)
    for text, pattern in expected:
        found = next((m for m in unmatched if matches(pattern, m)), None)
        assert found is not None, f"{example.name}: documented ← {text}\nreceived {received}"
        unmatched.remove(found)


def _documented_prints(code: str, comment: str) -> list[str]:
    call = r"print\(" if comment == "#" else r"console\.log\("
    pattern = rf"^\s*{call}.*\)\s*;?\s*{re.escape(comment)}\s*(.+?)\s*$"
    return re.findall(pattern, code, re.MULTILINE)


def _check_prints(example: Example, documented: list[str], stdout: str) -> None:
    printed = stdout.splitlines()
    for line in documented:
        assert any(same_printed_line(line, p) for p in printed), (
            f"{example.name}: documented output {line!r}, printed {printed}"
        )


def run_python(example: Example, tmp_path: Path, liaison_port: int) -> None:
    code = _with_port(example.code, liaison_port)
    if "liaison" in code and not re.search(r"^\s*(from|import) liaison", code, re.MULTILINE):
        code = (
            f"from liaison.client import connect\n"
            f"liaison = connect('ws://127.0.0.1:{liaison_port}')\n{code}\nliaison.close()\n"
        )
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": DOC_MODULES},
    )  # fmt: skip
    assert done.returncode == 0, f"{example.name}:\n{done.stdout}\n{done.stderr}"
    _check_prints(example, _documented_prints(example.code, "#"), done.stdout)


JS_EXPORTS = (
    "connect", "spawnLiaison", "kw", "ndarray", "LiaisonError", "RemoteError", "CallCancelled",
    "CallTimeout", "ConnectFailed", "ConnectionLost", "SpawnError",
)  # fmt: skip


def run_js(example: Example, tmp_path: Path, liaison_port: int) -> None:
    require_tool(
        bool(shutil.which("node") and (JS_CLIENT / "dist" / "node.js").is_file()),
        "LIAISON_REQUIRE_NODE",
        "needs node and the built client (cd clients/js && npm ci && npm run build)",
    )
    code = _with_port(example.code, liaison_port)
    imported = set(re.findall(r"import\s*\{([^}]*)\}", code))
    imported_names = {name.strip() for group in imported for name in group.split(",")}
    missing = [
        name for name in JS_EXPORTS
        if re.search(rf"\b{name}\b", code) and name not in imported_names
    ]  # fmt: skip
    prelude, coda = "", ""
    if missing:
        prelude += f'import {{ {", ".join(missing)} }} from "liaison-client/node";\n'
    if re.search(r"\bliaison\b", code) and not re.search(r"\b(const|let|var) liaison\b", code):
        prelude += f'const liaison = await connect("ws://127.0.0.1:{liaison_port}/");\n'
        if "connect" not in missing and "connect" not in imported_names:
            prelude = 'import { connect } from "liaison-client/node";\n' + prelude
        coda = "\nawait liaison.close();\n"
    # An app folder where `npm install` put liaison-client (here: linked to this checkout).
    app = tmp_path / "app"
    (app / "node_modules").mkdir(parents=True)
    (app / "node_modules" / "liaison-client").symlink_to(JS_CLIENT)
    script = app / "example.mjs"
    script.write_text(prelude + code + coda)
    node = ["node"]
    if "new WebSocket(" in code and not _node_has_websocket():
        node.append("--experimental-websocket")  # as the doc says, for Node 20
    done = subprocess.run(
        [*node, str(script)], cwd=app, capture_output=True, text=True, timeout=120,
        env={**os.environ, "LIAISON_PYTHON": sys.executable, "PYTHONPATH": DOC_MODULES},
    )  # fmt: skip
    assert done.returncode == 0, f"{example.name}:\n{done.stdout}\n{done.stderr}"
    _check_prints(example, _documented_prints(example.code, "//"), done.stdout)


def _node_has_websocket() -> bool:
    probe = ["node", "-e", "process.exit(globalThis.WebSocket ? 0 : 1)"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def check_synopsis(example: Example) -> None:
    for command in re.findall(r"^python -m (liaison\.\w+)", example.code, re.MULTILINE):
        helped = subprocess.run(
            [sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert helped.returncode == 0, helped.stderr
        for flag in set(re.findall(r"--[a-z][a-z-]*", example.code)):
            assert flag in helped.stdout, f"{example.name}: {command} has no {flag}"


SHELL = ("sh", "bash", "shell")


@pytest.mark.parametrize(
    "example",
    [
        # A shell block installs or builds: seconds (tests/conftest.py runs those first).
        pytest.param(example, marks=[pytest.mark.slow] if example.lang in SHELL else [])
        for example in EXAMPLES
    ],
    ids=[example.name for example in EXAMPLES],
)
def test_documented_example(
    example: Example, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if example.not_run is not None:
        pytest.skip(f"not run in CI: {example.not_run}")
    first = example.code.lstrip()[:1]
    if example.lang in SHELL:
        run_shell(example, tmp_path)
    elif example.lang == "json":
        run_json(example)
    elif example.lang in ("", "text") and first in ("→", "←"):
        run_transcript(example)
    elif example.lang in ("", "text") and example.code.startswith("python -m liaison."):
        check_synopsis(example)
    elif example.lang == "python":
        run_python(example, tmp_path, request.getfixturevalue("shared_liaison").port)
    elif example.lang in ("js", "javascript", "mjs"):
        run_js(example, tmp_path, request.getfixturevalue("shared_liaison").port)
    else:
        pytest.fail(
            f"{example.name}: no way to run a {example.lang or 'plain'} block; if it cannot "
            "run in CI, put <!-- not run in CI: REASON --> right before it"
        )


def test_the_documented_values_are_read_as_documented() -> None:
    # The reader of documented replies, on the forms the docs use.
    pattern, rest = parse_pattern('{"response": [1, 2.5], "evt": {...}, "id": "5f0c..."} (x)')
    assert rest.strip() == "(x)"
    assert matches(pattern, {"response": [1, 2.5], "evt": {"a": 1}, "id": "5f0c1234"})
    assert not matches(pattern, {"response": [1, 2.5], "evt": {}, "id": "5f0c", "extra": 1})
    assert not matches(pattern, {"response": [1, 2.6], "evt": {}, "id": "5f0c"})
    opened, _ = parse_pattern('{"response": "idle", ..., "id": "b"}')
    assert matches(opened, {"response": "idle", "tag": "response", "id": "b"})
    assert not matches(opened, {"response": "idle", "id": "c"})
    listed, _ = parse_pattern('[{"name": "obj"}, ...]')
    assert matches(listed, [{"name": "obj"}, {"name": "skipkeys"}])
    assert not matches(listed, [])
    anything, _ = parse_pattern("[...]")
    assert matches(anything, ["a", "b"]) and not matches(anything, "a")
    with pytest.raises(PatternError):
        parse_pattern('{"response": <the message>}')


def test_an_unreadable_documented_reply_fails_naming_the_doc_and_line() -> None:
    example = Example("docs/x.md", 7, "", "→ {}\n← {oops}\n", None, "")
    with pytest.raises(pytest.fail.Exception, match=r"docs/x\.md:7"):
        run_transcript(example)


def test_every_example_is_collected() -> None:
    # A fence this reader misses would silently drop examples: count them another way.
    for doc in DOCS:
        fences = sum(1 for line in doc.read_text().splitlines() if FENCE.match(line))
        assert fences == 2 * len(collect(doc)), doc


def test_a_documented_server_is_started_checked_and_stopped(tmp_path: Path) -> None:
    served = Example(
        "docs/x.md", 3, "sh", ".venv/bin/python -m liaison.websocket 127.0.0.1:8765\n", None,
        "It prints `LIAISON:CONNECTED@127.0.0.1:8765` and, on Ctrl-C, "
        "`LIAISON:DISCONNECTED@127.0.0.1:8765`.",
    )  # fmt: skip
    run_shell(served, tmp_path / "right")
    wrong = Example("docs/x.md", 9, "sh", served.code, None, "It prints `LIAISON:CONNECTED@a:1`.")
    with pytest.raises(AssertionError, match=r"docs/x\.md:9: documented"):
        run_shell(wrong, tmp_path / "wrong")
