"""References (the `ref` option, `release`, scoping), by plain calls: no sockets, no threads."""

from __future__ import annotations

import collections
import datetime
import math
import os.path
import random
from typing import Any

import orjson
import pytest

from liaison.core import Companion, InvalidArguments, InvalidMessage, NameNotFound, parse_message
from liaison.core.names import REFERENCE
from liaison.core.references import REPR_LIMIT, needs_reference


class Owner:
    """Stands for a connection: any hashable, weak-referenceable object will do."""


def request(command: str, *args: Any, **options: Any) -> Any:
    message = {"command": {"command": command, "args": list(args)}, "id": 1, **options}
    return parse_message(orjson.dumps(message))


def run(companion: Companion, owner: Owner, command: str, *args: Any, **options: Any) -> Any:
    """What the executor does with a request sent by ``owner``: execute, then respond."""
    companion.current_owner = lambda: owner
    req = request(command, *args, **options)
    return companion.response(req, companion.execute(req), owner)


@pytest.fixture
def companion() -> Companion:
    return Companion()


@pytest.fixture
def owner() -> Owner:
    return Owner()


def test_ref_true_stores_the_result_under_a_fresh_name(companion: Companion, owner: Owner) -> None:
    reference = run(companion, owner, "run", "collections:Counter", "abca", ref=True)
    name = reference["$ref"]
    assert reference["type"] == "collections.Counter"
    assert reference["repr"] == "Counter({'a': 2, 'b': 1, 'c': 1})"
    assert reference["callable"] is False
    assert companion.namespace[name] == collections.Counter("abca")
    assert REFERENCE.fullmatch("$" + name)
    assert name in companion.names()


def test_a_fresh_name_works_as_target_and_as_dollar_argument(
    companion: Companion, owner: Owner
) -> None:
    name = run(companion, owner, "run", "random:Random", 42, ref=True)["$ref"]
    assert run(companion, owner, "run", f"{name}.random") == random.Random(42).random()
    companion.store("numbers", [3, 1, 2])
    ref = run(companion, owner, "run", "builtins:sorted", "$numbers", ref=True)["$ref"]
    assert run(companion, owner, "run", "builtins:len", f"${ref}") == 3
    assert companion.describe(name)["kind"] == "object"
    assert companion.describe(f"{name}.random")["kind"] == "function"


def test_fresh_names_skip_names_already_taken(companion: Companion, owner: Owner) -> None:
    companion.store("_ref1", "mine")
    name = run(companion, owner, "get", "math:pi", ref=True)["$ref"]
    assert name != "_ref1"
    assert companion.namespace["_ref1"] == "mine"


def test_without_the_option_results_are_as_before(companion: Companion, owner: Owner) -> None:
    assert run(companion, owner, "run", "random:Random", 42).__class__ is random.Random
    assert run(companion, owner, "get", "math:pi", ref=False) == math.pi
    assert len(companion.references) == 0


@pytest.mark.parametrize(
    "value",
    [None, 1, 2.5, "text", [1, [2]], {"a": (1, 2)}, collections.Counter("ab"), b"raw",
     {1, 2}, datetime.date(2024, 1, 2), ValueError("boom"), 2**80],
)  # fmt: skip
def test_auto_leaves_plain_json_alone(value: Any) -> None:
    assert not needs_reference(value)


@pytest.mark.parametrize(
    "value",
    [random.Random(1), math, os.path.join, collections.Counter, [1, random.Random(1)],
     {"nested": {"deep": object()}}, {"$ref": "looks like a reference"}, iter([1]),
     __import__("itertools").count()],
)  # fmt: skip
def test_auto_makes_references_of_what_json_would_only_name_or_print(value: Any) -> None:
    assert needs_reference(value)


def test_auto_through_the_companion(companion: Companion, owner: Owner) -> None:
    assert run(companion, owner, "run", "math:sqrt", 16, ref="auto") == 4.0
    reference = run(companion, owner, "run", "random:Random", 1, ref="auto")
    assert reference["type"] == "random.Random"
    module = run(companion, owner, "get", "os.path", ref="auto")
    assert companion.namespace[module["$ref"]] is os.path


def test_auto_keeps_an_iterator_whole(companion: Companion, owner: Owner) -> None:
    reference = run(companion, owner, "run", "builtins:iter", [1, 2], ref="auto")
    assert list(companion.namespace[reference["$ref"]]) == [1, 2]


def test_the_repr_is_bounded(companion: Companion, owner: Owner) -> None:
    reference = run(companion, owner, "run", "builtins:list", list(range(10_000)), ref=True)
    assert len(reference["repr"]) == REPR_LIMIT
    assert reference["repr"].endswith("...")


def test_release_frees_and_use_after_release_names_the_reference(
    companion: Companion, owner: Owner
) -> None:
    name = run(companion, owner, "run", "random:Random", 42, ref=True)["$ref"]
    assert run(companion, owner, "release", name) == [name]
    assert name not in companion.namespace and name not in companion.names()
    with pytest.raises(NameNotFound, match=name):
        run(companion, owner, "run", f"{name}.random")
    with pytest.raises(NameNotFound, match=name):
        run(companion, owner, "run", "builtins:id", f"${name}")
    with pytest.raises(NameNotFound, match=f"already released.*'{name}'"):
        run(companion, owner, "release", name)


def test_release_is_all_or_nothing_and_names_every_unknown(
    companion: Companion, owner: Owner
) -> None:
    kept = run(companion, owner, "get", "math:pi", ref=True)["$ref"]
    with pytest.raises(NameNotFound) as raised:
        run(companion, owner, "release", kept, "_ref999", "companion")
    assert "'_ref999'" in str(raised.value) and "'companion'" in str(raised.value)
    assert kept not in str(raised.value)
    assert companion.namespace[kept] == math.pi
    with pytest.raises(InvalidArguments, match="strings"):
        run(companion, owner, "release", 7)


def test_a_name_released_twice_in_one_call_is_released_once(
    companion: Companion, owner: Owner
) -> None:
    first = run(companion, owner, "get", "math:pi", ref=True)["$ref"]
    second = run(companion, owner, "get", "math:e", ref=True)["$ref"]
    assert run(companion, owner, "release", first, second, first) == [first, second]
    assert len(companion.references) == 0 and first not in companion.namespace


def test_one_connection_cannot_release_anothers(companion: Companion) -> None:
    mine, theirs = Owner(), Owner()
    name = run(companion, mine, "get", "math:e", ref=True)["$ref"]
    with pytest.raises(NameNotFound, match=name):
        run(companion, theirs, "release", name)
    assert run(companion, theirs, "get", name) == math.e  # the namespace itself is shared


def test_closing_frees_the_owners_references_only(companion: Companion) -> None:
    closing, staying = Owner(), Owner()
    gone = [run(companion, closing, "get", "math:pi", ref=True)["$ref"] for _ in range(3)]
    kept = run(companion, staying, "get", "math:tau", ref=True)["$ref"]
    assert companion.references.release_owner(closing) == 3
    assert not set(gone) & set(companion.names())
    assert kept in companion.names()


def test_a_result_finished_after_its_owner_closed_is_not_kept(companion: Companion) -> None:
    closed = Owner()
    companion.references.release_owner(closed)
    name = run(companion, closed, "get", "math:pi", ref=True)["$ref"]
    assert name not in companion.namespace
    assert len(companion.references) == 0


def test_a_name_stored_by_choice_is_not_scoped(companion: Companion, owner: Owner) -> None:
    name = run(companion, owner, "run", "random:Random", 42, ref=True)["$ref"]
    run(companion, owner, "register", "rng", name)
    companion.references.release_owner(owner)
    assert isinstance(companion.namespace["rng"], random.Random)
    overwritten = run(companion, Owner(), "get", "math:pi", ref=True)["$ref"]
    companion.store(overwritten, "chosen")  # storing over a reference's name adopts it
    companion.references.release_owner(owner)
    assert companion.namespace[overwritten] == "chosen"


@pytest.mark.parametrize("command", ["store", "register", "init"])
def test_storing_over_a_reference_survives_its_owner_closing_meanwhile(
    companion: Companion, command: str
) -> None:
    """The owner's close runs on the I/O thread while the store runs on the main thread;
    here it lands right after the namespace is written."""
    owner = Owner()
    name = run(companion, owner, "get", "math:pi", ref=True)["$ref"]
    references = companion.references

    class CloseOnWrite(dict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            super().__setitem__(key, value)
            if key == name:
                references.release_owner(owner)

    companion.namespace = references._namespace = CloseOnWrite(companion.namespace)
    arguments = {"store": ("chosen",), "register": ("math:e",), "init": ("builtins:str", "x")}
    run(companion, Owner(), command, name, *arguments[command])
    assert companion.namespace[name] in ("chosen", math.e, "x")


def test_create_release_cycles_leave_nothing_behind(companion: Companion, owner: Owner) -> None:
    before = companion.names()
    for _ in range(1000):
        name = run(companion, owner, "run", "random:Random", ref=True)["$ref"]
        run(companion, owner, "release", name)
    assert companion.names() == before
    assert len(companion.references) == 0
    assert not companion.references._by_owner


@pytest.mark.parametrize("bad", [1, "yes", None, [True]])
def test_a_bad_ref_option_is_an_invalid_message(bad: Any) -> None:
    with pytest.raises(Exception) as raised:
        request("get", "math:pi", ref=bad)
    assert isinstance(raised.value.error, InvalidMessage)  # type: ignore[attr-defined]
    assert 'ref must be true, false or "auto"' in str(raised.value)
