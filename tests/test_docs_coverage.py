"""Everything a user can type or call is documented: every flag of both command lines'
``--help``, every console script, every public method of the Python ``Client`` and
``AsyncClient`` and of the JavaScript ``Liaison``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

from liaison.client import AsyncClient, Client

REPO = Path(__file__).resolve().parent.parent
USER_DOCS = [REPO / "README.md", REPO / "clients" / "js" / "README.md", *REPO.glob("docs/*.md")]


def documented_text() -> str:
    return "\n".join(doc.read_text() for doc in USER_DOCS)


def help_flags(module: str) -> set[str]:
    helped = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", helped.stdout)) - {"--help"}


@pytest.mark.parametrize("module", ["liaison.websocket", "liaison.stdio"])
def test_every_flag_of_the_help_is_documented(module: str) -> None:
    text = documented_text()
    undocumented = sorted(flag for flag in help_flags(module) if f"`{flag}" not in text)
    assert not undocumented, f"{module} --help flags no doc names (as `--flag`): {undocumented}"


def console_scripts() -> list[str]:
    entry_points = distribution("liaison-backend").entry_points
    return sorted(entry.name for entry in entry_points if entry.group == "console_scripts")


def test_every_console_script_is_documented_and_names_itself() -> None:
    scripts = console_scripts()
    assert scripts, "no console script installed"
    text = documented_text()
    bin_dir = os.path.dirname(sys.executable)
    for script in scripts:
        assert f"`{script}" in text, f"the console script {script} is not documented"
        helped = subprocess.run(
            [os.path.join(bin_dir, script), "--help"], capture_output=True, text=True, timeout=60
        )
        assert helped.returncode == 0, helped.stderr
        assert helped.stdout.startswith(f"usage: {script} "), helped.stdout[:80]


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_") and callable(value) and not isinstance(value, type)
    }


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_every_python_client_method_is_documented(cls: type) -> None:
    readme = (REPO / "README.md").read_text()
    undocumented = sorted(m for m in public_methods(cls) if not re.search(rf"`{m}[`(]", readme))
    assert not undocumented, f"README.md does not name these {cls.__name__} methods: {undocumented}"


def js_liaison_methods() -> set[str]:
    source = (REPO / "clients" / "js" / "src" / "client.ts").read_text()
    body = source[source.index("export class Liaison") :]
    body = body[: body.index("\n}\n")]
    return set(re.findall(r"^  (?:async )?([a-z]\w*)\(", body, re.MULTILINE)) - {"constructor"}


def test_every_js_liaison_method_is_documented() -> None:
    methods = js_liaison_methods()
    assert {"run", "configure", "release"} <= methods, methods  # the reader found them
    readme = (REPO / "clients" / "js" / "README.md").read_text()
    undocumented = sorted(m for m in methods if not re.search(rf"`(liaison\.)?{m}\(", readme))
    assert not undocumented, f"clients/js/README.md does not name these methods: {undocumented}"


def test_the_supported_pythons_agree_in_classifiers_readme_and_ci() -> None:
    classifiers = distribution("liaison-backend").metadata.get_all("Classifier") or []
    prefix = "Programming Language :: Python :: 3."
    minors = sorted(int(c[len(prefix) :]) for c in classifiers if c.startswith(prefix))
    assert minors == list(range(minors[0], minors[-1] + 1)), minors
    first, last = f"3.{minors[0]}", f"3.{minors[-1]}"
    assert f"Python {first} to {last}" in (REPO / "README.md").read_text()
    requires = distribution("liaison-backend").metadata["Requires-Python"]
    assert requires == f">={first}", requires
    ci = (REPO / ".ci" / "run").read_text()
    tested = set(re.findall(r"3\.1\d", ci.split("python_for()")[1]))
    assert tested == {f"3.{minor}" for minor in minors}, tested
