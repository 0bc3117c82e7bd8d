"""The command table is the one declaration: its handlers, docs and clients agree with it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from liaison.core import Companion
from liaison.protocol.commands import COMMANDS, describe_commands, unknown_command
from liaison.server.dispatch import Dispatcher

ROOT = Path(__file__).resolve().parents[2]


def rendered_parameters(function: object) -> tuple[str, ...]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return tuple(
        ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        for p in signature.parameters.values()
    )


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if not c.control])
def test_an_ordered_command_is_a_companion_method_of_the_declared_parameters(name: str) -> None:
    command = COMMANDS[name]
    handler = getattr(Companion(), command.handler)
    assert Companion().commands[name].__func__ is handler.__func__
    assert rendered_parameters(handler) == command.parameters
    assert (inspect.getdoc(handler) or "").split("\n")[0] == command.doc


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if c.control])
def test_a_control_command_is_a_dispatcher_method_and_no_companion_command(name: str) -> None:
    handler = getattr(Dispatcher, COMMANDS[name].handler)
    assert list(inspect.signature(handler).parameters) == ["self", "request", "sink"]
    assert name not in Companion().commands


def test_commands_lists_every_declared_command_with_its_parameters_and_doc() -> None:
    listed = describe_commands()
    assert list(listed) == sorted(COMMANDS)
    assert listed["init"] == {"args": ["name", "cls", "*args", "**kwargs"],
                              "doc": COMMANDS["init"].doc}  # fmt: skip
    assert listed["cancel"]["args"] == ["id"]


def test_unknown_command_names_every_command() -> None:
    message = str(unknown_command("eval"))
    assert message == "unknown command 'eval'; valid: " + ", ".join(sorted(COMMANDS))


def documented_commands(path: Path, heading: str) -> list[str]:
    """The first column of the first table under ``heading`` in a Markdown file."""
    text = path.read_text()
    section = text[text.index(heading) :]
    rows = re.findall(r"^\| `([a-z]+)` \|", section.split("\n\n|", 1)[1].split("\n\n")[0], re.M)
    return rows


@pytest.mark.parametrize("document", ["README.md", "docs/protocol.md"])
def test_the_docs_list_exactly_the_declared_commands(document: str) -> None:
    assert sorted(documented_commands(ROOT / document, "## Commands")) == sorted(COMMANDS)


def backticked_names(text: str) -> set[str]:
    """The names in ``text`` written as code: `name`, `name(...)`, ``name``."""
    return set(re.findall(r"`+(\w+)[`(]", text))


def paragraph(text: str, opening: str) -> str:
    start = text.index(opening)
    return text[start : text.index("\n\n", start)]


def test_the_lists_of_client_methods_name_every_command() -> None:
    import liaison.client

    methods = {command.method for command in COMMANDS.values()}
    readme = paragraph((ROOT / "README.md").read_text(), "`connect(url, token=None")
    docstring = paragraph(liaison.client.__doc__ or "", "The command methods")
    js_readme = (ROOT / "clients/js/README.md").read_text()
    js_table = paragraph(js_readme, "| method | command |")
    for where, text in [("README.md", readme), ("liaison.client's docstring", docstring),
                        ("clients/js/README.md", js_table)]:  # fmt: skip
        assert sorted(methods - backticked_names(text)) == [], f"{where} misses them"


def test_both_python_clients_have_a_method_per_command() -> None:
    pytest.importorskip("websockets")
    from liaison.client import AsyncClient, Client

    for command in COMMANDS.values():
        for client in (AsyncClient, Client):
            method = getattr(client, command.method, None)
            assert callable(method), f"{client.__name__} has no {command.method}"
            documented = inspect.getdoc(method) or ""
            assert f"``{command.name}``" in documented or command.name == command.method, (
                f"{client.__name__}.{command.method} does not say it sends {command.name}"
            )
