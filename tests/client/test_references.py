"""Module proxies and references from the Python client, against a real liaison."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import orjson
import pytest
import scipy.stats

from conftest import LiaisonProcess
from liaison.client import Client, Remote, RemoteError, connect, connect_async


@pytest.fixture
def remote(liaison: LiaisonProcess) -> Iterator[Client]:
    with connect(liaison.url) as client:
        yield client


def test_module_calls_with_keyword_arguments(remote: Client) -> None:
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10]
    result = remote.module("scipy.stats").ttest_ind(a, b, equal_var=False)
    assert result == pytest.approx(list(scipy.stats.ttest_ind(a, b, equal_var=False)))
    assert remote.module("os").path.join("a", "b") == "a/b"
    assert remote.module("numpy").arange(4) == [0, 1, 2, 3]
    assert remote.get(remote.module("math").pi) == math.pi


def test_a_non_json_result_is_a_reference_whose_methods_work(remote: Client) -> None:
    rng = remote.module("random").Random(42)
    assert isinstance(rng, Remote)
    assert "random.Random" in repr(rng)
    first = rng.random()
    assert isinstance(first, float) and 0 <= first < 1
    assert rng.randint(1, 1) == 1
    assert remote.get(rng.VERSION) == 3
    counter = remote.call("run", ["collections:Counter", "abca"], ref=True)
    assert counter["type"] == "collections.Counter" and counter["$ref"] in remote.names()
    remote.release(counter["$ref"])


def test_a_reference_passed_back_travels_as_its_name(remote: Client) -> None:
    with remote.module("collections").deque([3, 1, 2]) as queue:
        assert remote.module("builtins").sorted(queue) == [1, 2, 3]
        assert remote.module("builtins").sorted(queue, reverse=True) == [3, 2, 1]
        nested = remote.run("itertools:chain.from_iterable", [queue, queue])  # by its getJSON
        assert nested == [3, 1, 2, 3, 1, 2]
    with pytest.raises(TypeError, match="module path"):
        remote.module("builtins").len(remote.module("math"))


def test_a_module_path_nested_in_an_argument_is_refused_before_sending(remote: Client) -> None:
    """As at the top level, and as the JavaScript client does: never sent as its str()."""
    math_module = remote.module("math")
    nested: list[object] = [
        [math_module],
        {"key": [1, math_module]},
        [b"raw", math_module],  # the binary-frame path
    ]
    for argument in nested:
        with pytest.raises(TypeError, match="'math' is a module path"):
            remote.run("builtins:repr", argument)
    with pytest.raises(TypeError, match="module path"):
        remote.module("builtins").len([math_module])
    assert remote.ping() == "pong"  # nothing half-sent


def test_release_and_use_after_release(remote: Client) -> None:
    rng = remote.module("random").Random(1)
    name = rng._target
    rng.release()
    assert name not in remote.names()
    with pytest.raises(RemoteError) as raised:
        rng.random()
    assert raised.value.type == "NameNotFound" and name in raised.value.message
    with pytest.raises(RemoteError) as raised:
        remote.module("builtins").id(rng)
    assert raised.value.type == "NameNotFound" and name in raised.value.message
    with pytest.raises(RemoteError) as raised:
        rng.release()
    assert raised.value.type == "NameNotFound" and "already released" in raised.value.message


def test_references_are_freed_when_their_connection_closes(
    liaison: LiaisonProcess, remote: Client
) -> None:
    with connect(liaison.url) as other:
        names = {other.module("random").Random(i)._target for i in range(3)}
        assert names <= set(remote.names())
    # The liaison learns of the close on its own schedule: poll `names`, reply by reply.
    for _ in range(1000):
        if not names & set(remote.names()):
            break
    assert not names & set(remote.names())


def test_names_do_not_grow_over_create_release_cycles(remote: Client) -> None:
    before = remote.names()
    for _ in range(200):
        remote.module("random").Random().release()
    assert remote.names() == before


def test_the_async_client_shares_the_model(liaison: LiaisonProcess) -> None:
    async def scenario() -> None:
        async with connect_async(liaison.url) as client:
            assert await client.module("math").sqrt(16) == 4.0
            assert await client.module("math").pi == math.pi
            async with await client.module("random").Random(3) as rng:
                assert 0 <= await rng.random() < 1
                assert await client.module("builtins").callable(rng.random) is True
            assert rng._target not in await client.names()

    asyncio.run(scenario())


def test_without_the_option_the_wire_is_as_before(liaison: LiaisonProcess) -> None:
    from websockets.sync.client import connect as raw_connect

    with raw_connect(liaison.url) as ws:
        ws.send(
            orjson.dumps({"command": {"command": "run", "args": ["random:Random", 1]}, "id": 1})
        )
        reply = orjson.loads(ws.recv())
    assert isinstance(reply["response"], str) and "random.Random object" in reply["response"]


def test_awaiting_a_blocking_clients_remote_raises_at_once(remote: Client) -> None:
    """It must not first block the event loop on a ``get`` round trip (which, for a
    module that does not exist, raised that RemoteError instead of the TypeError)."""

    async def scenario() -> None:
        with pytest.raises(TypeError, match=r"use client\.get"):
            await remote.module("no_such_module_here").attribute

    asyncio.run(scenario())
