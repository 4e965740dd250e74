"""Dead letters: what can never be processed is acknowledged and recorded once, with the reason,
and the conversation named in the message's attributes shows it.

Two ways in: an agent meets a message it can never process (bad data, a malformed push), or
Pub/Sub gives up after the subscription's delivery attempts and pushes the message to the
dead-letter topic, whose recorder must not fail a conversation whose message was handled.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from agentlobby.store.claims import Claim, Claims
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.envelopes import envelope_fields, started_conversation
from tests.support.lobbies import create_lobby_with, registered_agent, settings_for
from tests.support.pubsub import dead_letter_push, post_push, publish, push_body, push_url
from tests.support.user import JsonUser, wait_for_messages
from tests.support.waiting import wait_for

RETRY_WINDOW_S = 3.0  # Pub/Sub retries a refused push after 1 s (the minimum backoff)


def test_bad_pubsub_messages_are_acknowledged_and_recorded(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    posted = user.post(lobby_name, "a good message first")
    cid = posted["conversation_id"]
    wait_for_messages(user, cid, 2)

    def envelope(**overrides: Any) -> dict[str, Any]:
        return envelope_fields(
            **{"id": "bad-0", "conversation_id": cid, "lobby": lobby_name, **overrides}
        )

    bad = {
        "malformed": (b"{this is not json", "invalid envelope: (top level): Invalid JSON"),
        "unknown kind": (
            envelope(content={"kind": "poem", "text": "roses"}),
            "content: Input tag 'poem' found using 'kind' does not match any of the expected",
        ),
        "missing fields": (
            envelope(created_at=None, sender=None),
            "sender: Field required; created_at: Field required",
        ),
        "extra fields": (envelope(priority="high"), "priority: Extra inputs are not permitted"),
        "wrong type": (envelope(hops="many"), "hops: Input should be a valid"),
        "other lobby": (
            envelope(lobby="chat"),
            f"envelope says lobby 'chat' but it was delivered from {lobby_name!r}",
        ),
        "empty": (b"", "push message has empty data: expected a JSON envelope"),
    }
    for data, _ in bad.values():
        raw = json.dumps(data).encode() if isinstance(data, dict) else data
        attributes = {"conversation_id": cid, "kind": "text"}  # no lobby: the push path says
        publish(info.project, lobby_name, raw, attributes)

    def letters() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = user.conversation(cid)["dead_letters"]
        return found if len(found) >= len(bad) else []

    recorded = wait_for(letters)
    reasons = [letter["reason"] for letter in recorded]
    for case, (_, expected) in bad.items():
        assert sum(expected in reason for reason in reasons) == 1, (case, reasons)
    assert {(x["agent"], x["conversation_id"], x["lobby"]) for x in recorded} == {
        ("echo", cid, lobby_name)
    }
    # Acknowledged: a retried push would count its letter's `times` up, and after the last
    # attempt the dead-letter topic would record one more.
    time.sleep(RETRY_WINDOW_S)
    conversation = user.conversation(cid)
    assert len(conversation["dead_letters"]) == len(bad)
    assert [letter["times"] for letter in conversation["dead_letters"]] == [1] * len(bad)
    # None of it was answered: the transcript is the good message and its echo.
    assert [(m["sender"], m["text"]) for m in conversation["messages"]] == [
        ("user", "a good message first"),
        ("echo", "a good message first"),
    ]


def test_a_redelivered_unreadable_push_is_one_dead_letter(
    stack: Stack, info: StackInfo, user: JsonUser
) -> None:
    """The same malformed push twice: one dead letter that counts two arrivals."""
    posted = user.post("chat", "a conversation to attach the problem to")
    cid = posted["conversation_id"]
    body = push_body(
        b'{"not": "an envelope"}', {"conversation_id": cid}, f"bad-{cid}", project=info.project
    )
    url = push_url(stack, "echo", "chat")
    assert post_push(url, body) == 200
    assert post_push(url, body) == 200
    letters = wait_for(lambda: user.conversation(cid)["dead_letters"])
    assert len(letters) == 1
    assert letters[0]["times"] == 2
    assert letters[0]["id"] == f"echo__pubsub-bad-{cid}"


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


@pytest.mark.parametrize(
    ("delivery", "status", "letters"),
    [("held", "running", 1), ("done", "running", 0), ("never", "failed", 1)],
)
def test_a_dead_lettered_duplicate_fails_nothing_while_the_message_is_handled(
    stack: Stack,
    info: StackInfo,
    user: JsonUser,
    lobby_name: str,
    delivery: str,
    status: str,
    letters: int,
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    message = started_conversation(settings, lobby_name)
    deliveries = Claims(settings.project)
    if delivery != "never":  # the checker's first delivery has it in hand, or finished it
        assert deliveries.claim("checker", message.id, 600.0) is Claim.TAKEN
    if delivery == "done":
        deliveries.finish("checker", message.id)
    body = dead_letter_push(info.project, message, "checker")
    assert post_push(push_url(stack, "dead_letters", "agentlobby-dead-letter"), body) == 200
    conversation = user.conversation(message.conversation_id)
    assert (conversation["status"], len(conversation["dead_letters"])) == (status, letters)
