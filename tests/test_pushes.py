"""Pushed messages (`liaison.send`) and liaison 1.0 clients, which read `evt.id` of every
message while a call is pending: pushes wait for the pending replies unless a connection
opts in with `configure`."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiaisonProcess, RawClient, require_tool

NODE = shutil.which("node")
STUDIO_LISTENER = Path(__file__).resolve().parent / "node" / "studio_listener.mjs"


@pytest.fixture
def pusher(liaison: LiaisonProcess) -> Iterator[RawClient]:
    client = RawClient(liaison.url)
    client.call("init", "pusher", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"})
    yield client
    client.close()


def messages_until_reply(client: RawClient, request_id: str) -> list[dict[str, Any]]:
    """Every message received up to and including the final reply to ``request_id``."""
    received = []
    while True:
        message = client.receive()
        received.append(message)
        if message.get("id") == request_id and message.get("tag") in ("response", "error"):
            return received


def test_a_push_follows_the_reply_of_the_command_that_pushed_it(pusher: RawClient) -> None:
    pusher.send(pusher.command("run", "pusher.alert", "hello", id="a"))
    reply, alert = [*messages_until_reply(pusher, "a"), pusher.receive()]
    assert reply["response"] == "hello" and reply["evt"]["id"] == "a"
    assert alert == {"tag": "alert", "text": "hello"}


def test_pushes_wait_for_every_pending_reply_and_keep_their_order(pusher: RawClient) -> None:
    # The queue is held until all three commands have been read, so the liaison knows
    # they are pending (it cannot know of messages still on their way to it).
    pusher.send(pusher.command("run", "remote_helpers:announce_then_block", id="held"))
    assert pusher.receive() == {"tag": "progress", "id": "held", "progress": "blocked"}
    for text in ("one", "two"):
        pusher.send(pusher.command("run", "pusher.alert", text, id=text))
    pusher.send(pusher.command("run", "pusher.tell_sender", "three", id="three"))
    assert pusher.call("run", "remote_helpers:release", concurrent=True) is True
    received = messages_until_reply(pusher, "three")
    assert [m.get("id") for m in received] == ["held", "one", "two", "three"]
    assert [pusher.receive() for _ in range(3)] == [
        {"tag": "alert", "text": "one"},
        {"tag": "alert", "text": "two"},
        {"tag": "private", "text": "three"},
    ]


def test_progress_still_precedes_the_reply(pusher: RawClient) -> None:
    pusher.send(pusher.command("run", "remote_helpers:report_progress", 2, id="p"))
    received = messages_until_reply(pusher, "p")
    assert [m["tag"] for m in received] == ["progress", "progress", "response"]


def test_configure_pushes_immediate_sends_them_before_the_reply(pusher: RawClient) -> None:
    assert pusher.call("configure", kwargs={"pushes": "immediate"}) == {"pushes": "immediate"}
    pusher.send(pusher.command("run", "pusher.alert", "now", id="a"))
    alert, reply = messages_until_reply(pusher, "a")
    assert alert == {"tag": "alert", "text": "now"} and reply["response"] == "now"
    assert pusher.call("configure", kwargs={"pushes": "after-reply"}) == {"pushes": "after-reply"}
    assert pusher.call("configure") == {"pushes": "after-reply"}


def test_a_client_with_nothing_pending_gets_pushes_at_once(
    liaison: LiaisonProcess, pusher: RawClient
) -> None:
    idle = RawClient(liaison.url)
    try:
        pusher.send(pusher.command("run", "pusher.alert", "to all", id="a"))
        assert idle.receive() == {"tag": "alert", "text": "to all"}
    finally:
        idle.close()
    assert messages_until_reply(pusher, "a")[-1]["response"] == "to all"
    assert pusher.receive() == {"tag": "alert", "text": "to all"}


def test_held_pushes_are_bounded_and_none_is_lost(pusher: RawClient) -> None:
    # Past 1024 held messages they are sent at once rather than kept or dropped.
    pusher.send(pusher.command("run", "remote_helpers:push_many", "$pusher", 1500, id="many"))
    received = messages_until_reply(pusher, "many")
    early = [m["text"] for m in received if m.get("tag") == "alert"]
    assert 0 < len(early) < 1500
    late = [pusher.receive()["text"] for _ in range(1500 - len(early))]
    assert early + late == [str(i) for i in range(1500)]


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"pushes": "sometimes"}, "pushes must be one of 'after-reply', 'immediate'"),
        ({"colour": "blue"}, "unknown option 'colour'; valid: pushes"),
    ],
)
def test_configure_names_a_bad_option(
    client: RawClient, options: dict[str, Any], text: str
) -> None:
    reply = client.ask(client.command("configure", kwargs=options))
    assert reply["tag"] == "error" and reply["exception"]["type"] == "InvalidArguments"
    assert text in reply["exception"]["message"]
    assert client.call("configure") == {"pushes": "after-reply"}  # nothing changed


def test_a_studio_style_listener_never_throws_and_gets_every_alert(
    liaison: LiaisonProcess,
) -> None:
    require_tool(NODE is not None, "LIAISON_REQUIRE_NODE", "needs node")
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--experimental-websocket", "--no-warnings", str(STUDIO_LISTENER),
         liaison.url, "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["throws"] == []
    texts = [f"compile {i}" for i in range(20)]
    assert report["alerts"] == report["replies"] == texts
    # Each alert arrived right after the reply of the call that raised it.
    replies = [entry for entry in report["order"] if entry.startswith("reply:")]
    assert report["order"][:1] == replies[:1]  # init's reply
    for i, text in enumerate(texts):
        at = report["order"].index(f"alert:{text}")
        assert report["order"][at - 1] == f"reply:call-{i + 2}"
