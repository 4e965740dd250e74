"""At least once in, exactly once in effect: duplicates, crashed and failing handlers.

Pub/Sub may deliver a message more than once, and redelivers what a handler did not
acknowledge. Whatever happens, the transcript holds one reply per message.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentlobby.config import Settings
from agentlobby.messages import Envelope, TextContent, new_id, now, reply_id
from agentlobby.store.conversations import Conversations
from agentlobby.store.lobbies import topic_path
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.conftest import JsonUser, wait_for, wait_for_messages
from tests.lobby_support import (
    create_lobby_with,
    function_server,
    recording,
    registered_agent,
    settings_for,
)

SETTLE_S = 2.0  # long enough for a second reply, if there were one, to be stored and heard


def stored_user_message(settings: Settings, lobby: str, text: str) -> Envelope:
    """A user message stored as the user agent stores it, not yet published."""
    envelope = Envelope(
        id=new_id(),
        conversation_id=new_id(),
        lobby=lobby,
        sender="user",
        content=TextContent(text=text),
        created_at=now(),
    )
    conversations = Conversations(settings.project)
    conversations.open(envelope.conversation_id, lobby)
    conversations.record(envelope)
    return envelope


def push_body(info: StackInfo, envelope: Envelope, pubsub_id: str) -> bytes:
    """The standard push wrapper, as Pub/Sub would POST it to a subscriber."""
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(envelope.to_json_bytes()).decode(),
                "attributes": envelope.attributes(),
                "messageId": pubsub_id,
                "publishTime": now().isoformat().replace("+00:00", "Z"),
            },
            "subscription": f"projects/{info.project}/subscriptions/x",
        }
    ).encode()


def push(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def replies(user: JsonUser, envelope: Envelope) -> list[dict[str, Any]]:
    messages = user.conversation(envelope.conversation_id)["messages"]
    assert messages[0]["id"] == envelope.id
    return messages[1:]


def assert_one_echo(user: JsonUser, envelope: Envelope, heard: list[Envelope]) -> None:
    """The transcript and the lobby both show the message and exactly one echo of it."""
    (reply,) = replies(user, envelope)
    assert (reply["sender"], reply["text"], reply["parent_id"]) == (
        "echo",
        envelope.text(),
        envelope.id,
    )
    assert reply["id"] == reply_id("echo", envelope.id, 0)
    heard_replies = {m.id for m in heard if m.parent_id == envelope.id}
    assert heard_replies == {reply["id"]}


def test_same_envelope_published_twice_is_answered_once(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    from google.cloud import pubsub_v1

    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    envelope = stored_user_message(settings, lobby_name, "say it once")
    publisher = pubsub_v1.PublisherClient()
    with recording(info.project, lobby_name) as tail:
        futures = [
            publisher.publish(
                topic_path(info.project, lobby_name),
                envelope.to_json_bytes(),
                **envelope.attributes(),
            )
            for _ in range(2)
        ]
        assert len({f.result() for f in futures}) == 2  # two distinct Pub/Sub messages
        wait_for_messages(user, envelope.conversation_id, 2)
        heard = tail.messages(settle_s=SETTLE_S)
    assert_one_echo(user, envelope, heard)
    assert [m.id for m in heard if m.sender == "user"] == [envelope.id] * 2


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-after-another", "concurrent"])
def test_same_push_posted_twice_is_answered_once(
    stack: Stack, info: StackInfo, user: JsonUser, lobby_name: str, concurrent: bool
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)  # echo is not a member: only our pushes reach it
    envelope = stored_user_message(settings, lobby_name, "pushed twice")
    url = stack.url("echo") + f"/projects/{info.project}/topics/{lobby_name}"
    body = push_body(info, envelope, "1234567")
    with recording(info.project, lobby_name) as tail:
        if concurrent:
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(lambda _: push(url, body), range(4)))
        else:
            statuses = [push(url, body), push(url, body)]
        heard = tail.messages(settle_s=SETTLE_S)
    assert set(statuses) == {200}
    assert_one_echo(user, envelope, heard)


@pytest.fixture(scope="module")
def flaky(info: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The flaky test agent's server; yields its URL and the directory of its markers."""
    markers = tmp_path_factory.mktemp("flaky-markers")
    logs = tmp_path_factory.mktemp("flaky-logs")
    with function_server("flaky", info, logs, AGENTLOBBY_TEST_MARKERS=str(markers)) as url:
        yield url, markers


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("text", "marker_of"),
    [
        ("kill before replying", "kill"),
        ("kill-stored after storing the reply", "kill-stored"),
        ("raise on the first attempt", "raise"),
    ],
)
def test_a_failed_first_attempt_is_redelivered_and_answered_once(
    info: StackInfo,
    user: JsonUser,
    lobby_name: str,
    flaky: tuple[str, Path],
    text: str,
    marker_of: str,
) -> None:
    url, markers = flaky
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    with (
        registered_agent(settings, "flaky", url, lobby_name),
        recording(info.project, lobby_name) as tail,
    ):
        posted = user.post(lobby_name, text)
        messages = wait_for_messages(user, posted["conversation_id"], 2, timeout_s=30)
        heard = tail.messages(settle_s=SETTLE_S)
    marker = markers / f"{posted['message_id']}.{marker_of}"
    assert marker.exists(), "the first attempt did not fail as asked"
    if marker_of.startswith("kill"):
        assert pid_gone(int(marker.read_text())), "the worker that failed is still alive"
    transcript = user.conversation(posted["conversation_id"])["messages"]
    assert [(m["sender"], m["text"]) for m in transcript] == [("user", text), ("flaky", text)]
    assert transcript == messages[:2]
    # The reply reached the lobby (even the one stored before its worker died) exactly once.
    assert [m.id for m in heard if m.sender == "flaky"] == [transcript[1]["id"]]


def test_a_handler_that_always_fails_ends_on_the_dead_letter_topic(
    info: StackInfo, user: JsonUser, lobby_name: str, flaky: tuple[str, Path]
) -> None:
    url, _ = flaky
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    with registered_agent(settings, "flaky", url, lobby_name):
        posted = user.post(lobby_name, "always-raise please give up")
        cid = posted["conversation_id"]
        letters = wait_for(lambda: user.conversation(cid)["dead_letters"], timeout_s=60)
    (letter,) = letters
    attempts = settings.max_delivery_attempts
    assert letter["reason"] == (
        f"not processed after {attempts} delivery attempts to agentlobby-{lobby_name}-flaky"
    )
    assert (letter["agent"], letter["message_id"], letter["lobby"]) == (
        "flaky",
        posted["message_id"],
        lobby_name,
    )
    assert "always-raise please give up" in letter["payload_excerpt"]
    assert [m["sender"] for m in user.conversation(cid)["messages"]] == ["user"]


def test_a_redelivered_unreadable_push_is_one_dead_letter(
    stack: Stack, info: StackInfo, user: JsonUser
) -> None:
    """The same malformed push twice: one dead letter that counts two arrivals."""
    posted = user.post("chat", "a conversation to attach the problem to")
    cid = posted["conversation_id"]
    body = json.dumps(
        {
            "message": {
                "data": base64.b64encode(b'{"not": "an envelope"}').decode(),
                "attributes": {"conversation_id": cid},
                "messageId": f"bad-{cid}",
                "publishTime": now().isoformat().replace("+00:00", "Z"),
            },
            "subscription": f"projects/{info.project}/subscriptions/x",
        }
    ).encode()
    url = f"{stack.url('echo')}/projects/{info.project}/topics/chat"
    assert push(url, body) == 200
    assert push(url, body) == 200
    letters = wait_for(lambda: user.conversation(cid)["dead_letters"])
    assert len(letters) == 1
    assert letters[0]["times"] == 2
    assert letters[0]["id"] == f"echo__pubsub-bad-{cid}"
