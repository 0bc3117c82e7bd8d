"""PsychoPy Studio's dunder calls and the --allow-module guard, against the real liaison.

The targets are Studio's own call sites, aimed at stand-ins of the same shapes
(tests/studio_standins.py); tests/core/test_names.py covers the rule by plain calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LiaisonProcess, RawClient
from inprocess import InProcessServer

pytestmark = pytest.mark.in_process  # the guarded liaison runs in this process

SUBCLASSES = "studio_standins:PhotometerBackend.__subclasses__"
USE_VERSION = "currentExperiment.settings.params.__getitem__"


def error_type(reply: dict[str, Any]) -> str:
    assert reply["tag"] == "error" and "response" not in reply, reply
    kind: str = reply["exception"]["type"]
    return kind


@pytest.fixture
def guarded() -> Iterator[InProcessServer]:
    server = InProcessServer.start(
        "websocket", "--allow-module", "studio_standins", "--allow-module", "operator",
        "--allow-module", "json",
    )  # fmt: skip
    yield server
    server.close()


@pytest.fixture
def guarded_client(guarded: InProcessServer) -> Iterator[RawClient]:
    raw = RawClient(guarded.url)
    yield raw
    raw.close()


def test_studio_call_sequence_without_allow_module(client: RawClient) -> None:
    assert client.call("run", SUBCLASSES) == [
        "python:///studio_standins:SpectraScanBackend",
        "python:///studio_standins:ColorCalBackend",
    ]
    assert client.call("init", "currentExperiment", "studio_standins:Experiment")
    assert client.call("init", "useVersion", USE_VERSION, "Use version") == "useVersion"
    assert client.call("get", "useVersion.val") == "2024.2.4"
    assert client.call("run", "useVersion.__setattr__", "val", "") is None
    assert client.call("get", "useVersion.val") == ""
    assert client.call("get", "currentExperiment.settings.params.expName.val") == "demo"


def test_studio_reads_but_cannot_introspect_with_allow_module(guarded_client: RawClient) -> None:
    client = guarded_client
    assert client.call("init", "currentExperiment", "studio_standins:Experiment")
    assert client.call("init", "useVersion", USE_VERSION, "Use version") == "useVersion"
    assert client.call("get", "useVersion.val") == "2024.2.4"
    for command, args in [
        ("run", [SUBCLASSES]),
        ("run", ["useVersion.__setattr__", "val", ""]),
        ("get", ["currentExperiment.__class__.__mro__"]),
        ("get", ["studio_standins:Experiment.__init__.__globals__"]),
        ("run", ["json:JSONDecoder.__setattr__", "$companion.resolver", "allowed_modules", None]),
    ]:
        assert error_type(client.ask(client.command(command, *args))) == "InvalidTarget", args
    assert client.call("get", "useVersion.val") == "2024.2.4"


def test_allow_module_accepts_reexports_and_refuses_walks_out(guarded_client: RawClient) -> None:
    client = guarded_client
    assert client.call("run", "operator:add", 2, 3) == 5  # operator.add is _operator.add
    assert client.call("run", "operator.mul", 2, 3) == 6
    assert client.call("register", "plus", "operator:add") == "plus"
    assert client.call("run", "plus", 2, 3) == 5
    for target in ("json:codecs.open", "json.decoder:re.compile", "os:getcwd", "_operator:add"):
        reply = client.ask(client.command("run", target, "x"))
        assert error_type(reply) == "ModuleNotAllowed", target


def test_code_run_through_the_guard_cannot_switch_it_off(guarded_client: RawClient) -> None:
    # Issue 20's route: an allowed function handed the resolver by a `$` reference.
    client = guarded_client
    setter = ["m", "operator:methodcaller", "__setattr__", "allowed_modules", None]
    assert client.call("init", *setter) == "m"
    assert error_type(client.ask(client.command("run", "m", "$companion.resolver"))) == (
        "AttributeError"
    )
    assert error_type(client.ask(client.command("run", "os:getpid"))) == "ModuleNotAllowed"


def test_exists_is_false_where_an_import_raises_system_exit(fresh_liaison: LiaisonProcess) -> None:
    # Importing unittest.__main__ runs unittest's main, which raises SystemExit; Studio
    # awaits two `exists` at start-up without a catch, and liaison 1.0.1 answers false.
    client = RawClient(fresh_liaison.url)
    try:
        assert client.call("exists", "unittest.__main__") is False
        assert client.call("exists", "json") is True
    finally:
        client.close()
