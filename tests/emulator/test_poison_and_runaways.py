"""Poison is recorded once and never cycles; agents that multiply each other's messages are
stopped with a reason; a model that keeps failing ends its task naming the error."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.config import load_settings
from agentlobby.delivery.dead_letters import _record_pushed, record_dead_letter
from agentlobby.delivery.pipeline import deliver_pushed
from agentlobby.delivery.push import PushedMessage
from agentlobby.errors import ModelUnavailable
from agentlobby.messages import Envelope, document_key, new_id
from agentlobby.store.clients import firestore_client
from agentlobby.store.conversations import Conversations
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.coding import model_stats, play, requests_of
from tests.support.envelopes import started_conversation
from tests.support.lobbies import (
    STRESS_AGENTS_MAIN,
    create_lobby_with,
    function_server,
    registered_agent,
    settings_for,
)
from tests.support.user import JsonUser
from tests.support.waiting import wait_for

HOSTILE_IDS = ["a/b/c", "x" * 2_000, "caf\u00e9 \u2603", "__reserved__", ""]


@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=["slash", "long", "non-ascii", "dunder", ""])
def test_poison_on_the_dead_letter_topic_is_recorded_once_and_never_raises(
    info: StackInfo, hostile: str
) -> None:
    settings = settings_for(info)
    attributes = {
        "message_id": hostile,
        "conversation_id": hostile,
        "lobby": hostile,
        "CloudPubSubDeadLetterSourceSubscription": f"projects/p/subscriptions/{hostile}",
        "CloudPubSubDeadLetterSourceDeliveryCount": hostile,
    }
    pushed = PushedMessage(None, f"poison-{len(hostile)}", attributes, b"\xff\x00 not json")
    for _ in range(2):  # a redelivery counts up the same record
        _record_pushed(settings, pushed)
    key = document_key(f"unknown__{hostile[:200] or 'pubsub-' + pushed.pubsub_message_id}")
    snap = firestore_client(info.project).collection("dead_letters").document(key).get()
    assert snap.exists, key
    assert snap.get("times") == 2
    assert snap.get("conversation_id") is None or "/" not in snap.get("conversation_id")


def test_a_pipeline_dead_letter_with_hostile_attributes_is_stored(info: StackInfo) -> None:
    settings = settings_for(info)
    attributes = {"message_id": "m/" + "y" * 1_600, "conversation_id": "c/d", "lobby": "\u2603"}
    record_dead_letter(settings, "echo", None, attributes, "bad", "excerpt", "pubsub-1")
    key = document_key(f"echo__{attributes['message_id'][:200]}")
    assert firestore_client(info.project).collection("dead_letters").document(key).get().exists


def run_away(
    info: StackInfo, user: JsonUser, lobby: str, logs: Path, agents: list[str], **env: str
) -> tuple[str, dict[str, Any]]:
    """Serve `agents` (test agents) in a fresh lobby, post once, and wait until the loop they
    start is stopped: the conversation's id and its final view."""
    settings = settings_for(info)
    create_lobby_with(settings, lobby)
    with contextlib.ExitStack() as serving:
        for agent in agents:
            url = serving.enter_context(
                function_server(agent, info, logs, STRESS_AGENTS_MAIN, **env)
            )
            serving.enter_context(registered_agent(settings, agent, url, lobby))
        posted = user.post(lobby, "start")

        def stopped() -> dict[str, Any] | None:
            view = user.conversation(posted["conversation_id"])
            return view if view["status"] == "failed" else None

        return posted["conversation_id"], wait_for(stopped, timeout_s=60)


def test_agents_that_multiply_each_others_messages_are_stopped_with_a_reason(
    info: StackInfo, user: JsonUser, lobby_name: str, tmp_path: Path
) -> None:
    agents = ["fan", "fan_twin"]
    conversation_id, view = run_away(
        info, user, lobby_name, tmp_path, agents, AGENTLOBBY_MAX_MESSAGES="30"
    )
    assert "limit of 30 messages" in view["reason"]
    assert "fan (" in view["reason"] and "fan_twin (" in view["reason"]
    record = Conversations(info.project).get(conversation_id)
    # Replies under way when it stopped may land: at most one handler run per agent over.
    assert record.message_count <= 30 + 2 * 2
    assert len(view["messages"]) == record.message_count


def test_agents_playing_ping_pong_stop_at_the_hop_limit_even_in_an_open_chat(
    info: StackInfo, user: JsonUser, lobby_name: str, tmp_path: Path
) -> None:
    """The conversation is a chat (open), which a dead letter alone would have left open."""
    _, view = run_away(info, user, lobby_name, tmp_path, ["ping", "pong"], AGENTLOBBY_MAX_HOPS="6")
    assert "past the limit of 6 (AGENTLOBBY_MAX_HOPS)" in view["reason"]
    assert "ping" in view["reason"] and "pong" in view["reason"]
    assert max(m["hops"] for m in view["messages"]) == 6
    assert [letter["agent"] for letter in view["dead_letters"]] in (["ping"], ["pong"])


def test_a_model_that_keeps_failing_ends_the_task_naming_the_error_and_the_agent(
    info: StackInfo, lobby_name: str
) -> None:
    """Each failed attempt leaves its error on the claim; when Pub/Sub gives up, the dead letter
    and the conversation's reason say what the model answered, not only 'not processed'."""
    settings = settings_for(info)
    envelope = started_conversation(settings, lobby_name)

    def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
        raise ModelUnavailable("coder's model kept failing: Error code: 503 - overloaded")

    spec = AgentSpec(
        name="coder", description="", listens_to=frozenset({"text"}), handle=handle, exclusive=True
    )
    pushed = PushedMessage(lobby_name, new_id(), envelope.attributes(), envelope.to_json_bytes())
    for _attempt in range(2):
        with pytest.raises(ModelUnavailable):
            deliver_pushed(spec, pushed, settings)
    subscription = f"projects/{info.project}/subscriptions/agentlobby-{lobby_name}-coder"
    given_up = PushedMessage(
        None,
        new_id(),
        {
            **envelope.attributes(),
            "CloudPubSubDeadLetterSourceSubscription": subscription,
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        },
        envelope.to_json_bytes(),
    )
    _record_pushed(settings, given_up)
    record = Conversations(settings.project).get(envelope.conversation_id)
    assert record.status == "failed"
    assert record.reason is not None
    assert "agentlobby-" + lobby_name + "-coder" in record.reason
    assert "ModelUnavailable: coder's model kept failing: Error code: 503" in record.reason


def test_an_agent_that_keeps_asking_its_model_is_stopped_at_the_call_limit(
    stack: Stack, info: StackInfo, lobby_name: str
) -> None:
    """A loop inside one agent (a model asked again and again) is bounded like a loop between
    agents: the conversation fails, the agent named, and the call past the limit is never made."""
    settings = load_settings(
        {
            **info.client_environment(),
            "OPENAI_BASE_URL": str(stack.model_server.url),  # type: ignore[union-attr]
            "OPENAI_API_KEY": "offline",
            "AGENTLOBBY_MAX_MODEL_CALLS": "3",
        }
    )
    play(stack, {"agent": "asker", "replies": ["again?"] * 10})
    envelope = started_conversation(settings, lobby_name)

    def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
        while True:  # never satisfied
            ctx.model.complete([{"role": "user", "content": "once more"}])

    spec = AgentSpec(
        name="asker", description="", listens_to=frozenset({"text"}), handle=handle, exclusive=True
    )
    pushed = PushedMessage(lobby_name, new_id(), envelope.attributes(), envelope.to_json_bytes())
    deliver_pushed(spec, pushed, settings)
    record = Conversations(settings.project).get(envelope.conversation_id)
    assert record.status == "failed"
    assert "limit of 3 model calls" in (record.reason or "")
    assert "asker asked for call 4" in (record.reason or "")
    assert len(requests_of(model_stats(stack), "asker")) == 3
