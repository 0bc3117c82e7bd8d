"""The Companion and name resolution, by plain calls: no sockets, no threads."""

from __future__ import annotations

import os.path
from typing import Any

import pytest

from liaison.core import (
    Companion,
    InvalidArguments,
    InvalidTarget,
    ModuleNotAllowed,
    NameNotFound,
    UnknownCommand,
    parse_message,
)
from liaison.server.jobs import Cancelled, Stopping, TimedOut


def request(command: str, *args: Any, **kwargs: Any) -> Any:
    import orjson

    return parse_message(orjson.dumps({"command": {"command": command, "args": list(args),
                                                   "kwargs": kwargs}, "id": 1}))  # fmt: skip


@pytest.fixture
def companion() -> Companion:
    return Companion()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("os.path", os.path),
        ("os.path:join", os.path.join),
        ("os.path.join", os.path.join),
        ("os:path.join", os.path.join),
        ("collections:OrderedDict.fromkeys", __import__("collections").OrderedDict.fromkeys),
    ],
)
def test_import_strings_resolve(companion: Companion, target: str, expected: Any) -> None:
    assert companion.resolve(target) == expected


def test_namespace_paths_walk_attributes_keys_and_indices(companion: Companion) -> None:
    companion.store("data", {"rows": [{"name": "a"}, {"name": "b"}], "3": "three"})
    assert companion.resolve("data.rows.1.name") == "b"
    assert companion.resolve("data.3") == "three"
    assert companion.resolve("companion.namespace.data") is companion.namespace["data"]


def test_namespace_names_take_precedence_over_modules(companion: Companion) -> None:
    companion.store("json", "not the module")
    assert companion.resolve("json") == "not the module"
    assert companion.resolve("json:dumps") is __import__("json").dumps


@pytest.mark.parametrize(
    "target",
    [
        "companion.__init__.__globals__",
        "json:dumps.__globals__",
        "companion.namespace.__class__",
        "__builtins__",
        "os:__loader__",
        "companion.resolve.__func__",
    ],
)
def test_dunders_are_refused_anywhere_under_an_allow_list(target: str) -> None:
    # Without an allow-list they resolve, as in liaison 1.0 (tests/core/test_names.py).
    companion = Companion(allowed_modules=["json", "os"])
    with pytest.raises(InvalidTarget, match="refused"):
        companion.resolve(target)
    assert companion.exists(target) is False


@pytest.mark.parametrize("target", ["__import__('os')", "os; rm", "a b", "x(1)", ""])
def test_code_is_never_evaluated(companion: Companion, target: str) -> None:
    with pytest.raises((InvalidTarget, NameNotFound, ImportError)):
        companion.resolve(target)


def test_missing_names_say_what_is_missing(companion: Companion) -> None:
    with pytest.raises(NameNotFound, match=r"'os\.path' has no attribute or key 'nope'"):
        companion.resolve("os.path:nope")
    with pytest.raises(ModuleNotFoundError):
        companion.resolve("no_such_module_zz.thing")


def test_references_resolve_in_nested_args(companion: Companion) -> None:
    companion.store("x", [1, 2])
    assert companion.actualize({"a": ["$x", "$x.0"], "b": "$ not a ref", "c": "$"}) == {
        "a": [[1, 2], 1],
        "b": "$ not a ref",
        "c": "$",
    }
    assert companion.actualize("$companion.__class__") is Companion
    with pytest.raises(InvalidTarget):
        Companion(allowed_modules=["json"]).actualize("$companion.__class__")


def test_run_init_register_store_try(companion: Companion) -> None:
    assert companion.execute(request("run", "builtins:sum", [1, 2, 3])) == 6
    assert companion.execute(request("store", "n", 5)) == "n"
    assert companion.execute(request("run", "builtins:pow", "$n", 2)) == 25
    assert companion.execute(request("init", "c", "collections:Counter", "abca")) == "c"
    assert companion.resolve("c")["a"] == 2
    assert companion.execute(request("register", "j", "json:dumps")) == "j"
    assert companion.execute(request("run", "j", [1], separators=[",", ":"])) == "[1]"
    assert companion.execute(request("try", "builtins:int", "7")) == {"success": True, "result": 7}
    failed = companion.execute(request("try", "builtins:int", "x"))
    assert failed["success"] is False and isinstance(failed["result"], ValueError)
    assert companion.execute(request("get", "n")) == 5
    assert companion.execute(request("exists", "n")) is True
    assert "n" in companion.execute(request("names"))


def test_user_kwargs_may_share_names_with_command_parameters(companion: Companion) -> None:
    sample = request("init", "s", "types:SimpleNamespace", name="n", cls="c", fcn="f")
    companion.check(sample)
    assert companion.execute(sample) == "s"
    assert vars(companion.resolve("s")) == {"name": "n", "cls": "c", "fcn": "f"}
    by_run = request("run", "builtins:dict", fcn=1, name=2)
    companion.check(by_run)
    assert companion.execute(by_run) == {"fcn": 1, "name": 2}
    assert companion.execute(request("try", "builtins:dict", fcn=3))["result"] == {"fcn": 3}


def test_run_refuses_non_callables(companion: Companion) -> None:
    with pytest.raises(InvalidTarget, match="not callable"):
        companion.call("os:sep")


def test_check_rejects_unknown_commands_and_wrong_arity(companion: Companion) -> None:
    with pytest.raises(UnknownCommand, match=r"valid: .*run"):
        companion.check(request("eval", "1"))
    with pytest.raises(InvalidArguments, match="run needs 1 argument"):
        companion.check(request("run"))
    with pytest.raises(InvalidArguments, match="store"):
        companion.check(request("store", "x"))
    with pytest.raises(UnknownCommand):  # a control command: the dispatcher answers it
        companion.check(request("ping"))
    companion.check(request("run", "builtins:print", 1, 2, sep="-"))


def test_stored_names_must_be_plain(companion: Companion) -> None:
    for name in ("", "a.b", 3):
        with pytest.raises(InvalidArguments):
            companion.store(name, 1)  # type: ignore[arg-type]
    assert companion.store("__x__", 1) == "__x__"  # liaison 1.0 took any name


def test_an_empty_name_is_called_empty() -> None:
    # It said "got str", which reads as if a string were wrong.
    with pytest.raises(InvalidArguments, match="got an empty string"):
        Companion().store("", 1)
    with pytest.raises(InvalidArguments, match="got int"):
        Companion().store(5, 1)  # type: ignore[arg-type]


def test_describe_a_function_class_and_module(companion: Companion) -> None:
    function = companion.describe("json:dumps")
    assert function["kind"] == "function" and function["name"] == "dumps"
    assert function["parameters"][0] == {
        "name": "obj",
        "kind": "positional_or_keyword",
        "default": None,
        "required": True,
        "annotation": None,
    }
    assert companion.describe("collections:OrderedDict")["kind"] == "class"
    module = companion.describe("json")
    assert module["kind"] == "module" and module["doc"].startswith("JSON")


def test_allow_list_limits_imports_but_not_namespace_names() -> None:
    companion = Companion(allowed_modules=["json"])
    assert companion.resolve("json.decoder:JSONDecoder") is __import__("json").JSONDecoder
    for target in ("os:system", "os.path", "subprocess:run", "json.decoder:re",
                   "json:codecs"):  # fmt: skip
        with pytest.raises(ModuleNotAllowed):
            companion.resolve(target)
        assert companion.exists(target) is False
    with pytest.raises(ModuleNotAllowed):
        companion.actualize("$os.sep")
    assert companion.resolve("companion.ping")() == "pong"


def test_references_resolve_when_spelled_as_escapes_nested_in_args_and_kwargs(
    companion: Companion,
) -> None:
    companion.store("x", [1, 2])
    companion.namespace["echo"] = lambda *args, **kwargs: [list(args), kwargs]
    text = (
        '{"command": {"command": "run", "args": ["echo", "\\u0024x", [[{"k": ["\\u0024x.1"]}]]],'
        ' "kwargs": {"a": {"b": ["\\u0024x.0", "$ no"]}}}}'
    )
    for form in (text, text.encode()):
        request = parse_message(form)
        assert not request.literal
        assert companion.execute(request) == [
            [[1, 2], [[{"k": [2]}]]],
            {"a": {"b": [1, "$ no"]}},
        ]
    init = parse_message(
        '{"command": {"command": "init", "args": ["y", "builtins:list", "\\u0024x"]}}'
    )
    tried = parse_message('{"command": {"command": "try", "args": ["builtins:len", "\\u0024y"]}}')
    assert companion.execute(init) == "y" and companion.resolve("y") == [1, 2]
    assert companion.execute(tried) == {"success": True, "result": 2}


def test_a_literal_request_passes_its_arguments_as_they_are(companion: Companion) -> None:
    companion.namespace["same"] = lambda *args, **kwargs: (args, kwargs)
    request = parse_message('{"command": {"command": "run", "args": ["same", [[1.5], "a"]],'
                            ' "kwargs": {"k": {"n": [2]}}}}')  # fmt: skip
    assert request.literal
    args, kwargs = companion.execute(request)
    assert args[0] is request.args[1] and kwargs["k"] is request.kwargs["k"]
    made = parse_message('{"command": {"command": "init", "args": ["made", "builtins:list", [1]]}}')
    tried = parse_message('{"command": {"command": "try", "args": ["builtins:sum", [1, 2]]}}')
    assert made.literal and tried.literal
    assert companion.execute(made) == "made" and companion.resolve("made") == [1]
    assert companion.execute(tried) == {"success": True, "result": 3}


def test_actualize_copies_only_containers_in_which_it_replaces_something(
    companion: Companion,
) -> None:
    companion.store("x", 5)
    plain = {"a": [1, [2.5, None, True]], "b": "text"}
    assert companion.actualize(plain) is plain
    assert companion.actualize(plain["a"]) is plain["a"]
    mixed = {"keep": [1, [2]], "swap": [0, ["$x"]]}
    out = companion.actualize(mixed)
    assert out == {"keep": [1, [2]], "swap": [0, [5]]}
    assert out["keep"] is mixed["keep"] and mixed == {"keep": [1, [2]], "swap": [0, ["$x"]]}


class Raises:
    """An object whose ``attribute`` raises the exception it was given."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    @property
    def attribute(self) -> None:
        raise self.error


def test_exists_is_false_when_an_import_raises_system_exit(
    companion: Companion, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `unittest.__main__` does; liaison 1.0.1 answers false, and Studio awaits two
    # `exists` at start-up without a catch.
    (tmp_path / "exits_on_import.py").write_text("raise SystemExit(2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert companion.exists("exits_on_import") is False
    assert companion.exists("exits_on_import:main") is False
    assert companion.execute(request("exists", "exits_on_import.main")) is False


@pytest.mark.parametrize("error", [SystemExit(1), GeneratorExit(), ValueError()])
def test_exists_is_false_for_any_failure_to_resolve(
    companion: Companion, error: BaseException
) -> None:
    companion.store("raises", Raises(error))
    assert companion.exists("raises.attribute") is False


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Cancelled, TimedOut, Stopping])
def test_exists_lets_a_stop_aimed_at_the_command_through(
    companion: Companion, stop: type[BaseException]
) -> None:
    companion.store("raises", Raises(stop()))
    with pytest.raises(stop):
        companion.exists("raises.attribute")
