"""The promise under faults: hostile HTTP gets a JSON 4xx, poison is recorded once and never
cycles, and agents that multiply each other's messages are stopped with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.api import routes
from agentlobby.config import load_settings
from agentlobby.delivery.dead_letters import _record_pushed, record_dead_letter
from agentlobby.delivery.pipeline import deliver_pushed
from agentlobby.delivery.push import PushedMessage
from agentlobby.errors import ModelUnavailable
from agentlobby.messages import Envelope, TextContent, document_key, new_id, now
from agentlobby.sandbox.service import handle_run
from agentlobby.store.clients import firestore_client
from agentlobby.store.conversations import Conversations
from local_emulator.stack_state import StackInfo
from tests.conftest import JsonUser, wait_for
from tests.lobby_support import create_lobby_with, function_server, registered_agent, settings_for

TOKEN = "right-token"


@pytest.mark.parametrize(
    "authorization", ["Bearer r\u00e9ght-token", "Bearer \u2603", "B\u00e9arer x", "Bearer \udcff"]
)
def test_a_non_ascii_token_is_refused_not_crashed(authorization: str) -> None:
    config = load_settings({"AGENTLOBBY_API_TOKEN": TOKEN, "AGENTLOBBY_SANDBOX_TOKEN": TOKEN})
    headers = {"authorization": authorization, "x-agentlobby-sandbox-token": authorization}
    body, status = routes.handle_request("GET", "/conversations/abc", headers, b"", config)
    assert status == 401 and "bearer token" in body["error"]
    body, status = handle_run("POST", "/run", headers, b"{}", config)
    assert status == 401 and "header" in body["error"]


def refused_post(body: bytes) -> tuple[dict[str, Any], int]:
    """A post that must be refused before any backend is reached (the project has none)."""
    config = load_settings({"AGENTLOBBY_API_TOKEN": TOKEN})
    headers = {"authorization": f"Bearer {TOKEN}"}
    return routes.handle_request("POST", "/lobbies/chat/messages", headers, body, config)


def test_deep_nesting_is_a_422_not_a_recursion_error() -> None:
    body, status = refused_post(b"[" * 5_000 + b"]" * 5_000)
    assert status == 422 and "nested too deeply" in body["error"]


@pytest.mark.parametrize("field", ["token_budget", "max_rounds"])
@pytest.mark.parametrize("value", [9223372036854775808, 10**30, -1, 0])
def test_numbers_out_of_their_documented_bounds_are_422(field: str, value: int) -> None:
    body, status = refused_post(json.dumps({"text": "x", field: value}).encode())
    assert status == 422 and field in body["error"]


def test_a_sandbox_run_with_absurd_limits_is_422() -> None:
    config = load_settings({"AGENTLOBBY_SANDBOX_TOKEN": TOKEN})
    headers = {"x-agentlobby-sandbox-token": TOKEN}
    for extra in ({"timeout_s": 1e309}, {"timeout_s": 10**9}, {"memory_mb": 2**63}):
        request = json.dumps({"source": "print(1)", **extra}).encode()
        body, status = handle_run("POST", "/run", headers, request, config)
        assert status == 422, (extra, body)


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


def test_agents_that_multiply_each_others_messages_are_stopped_with_a_reason(
    info: StackInfo, user: JsonUser, lobby_name: str, tmp_path: Path
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    limit = "30"
    with (
        function_server("doubler", info, tmp_path, AGENTLOBBY_MAX_MESSAGES=limit) as one,
        function_server("doubler_twin", info, tmp_path, AGENTLOBBY_MAX_MESSAGES=limit) as two,
        registered_agent(settings, "doubler", one, lobby_name),
        registered_agent(settings, "doubler_twin", two, lobby_name),
    ):
        posted = user.post(lobby_name, "start")

        def stopped() -> dict[str, Any] | None:
            view = user.conversation(posted["conversation_id"])
            return view if view["status"] == "failed" else None

        view = wait_for(stopped, timeout_s=60)
    assert "limit of 30 messages" in view["reason"]
    assert "doubler (" in view["reason"] and "doubler_twin (" in view["reason"]
    record = Conversations(info.project).get(posted["conversation_id"])
    # Replies under way when it stopped may land: at most one handler run per agent over.
    assert record.message_count <= 30 + 2 * 2
    assert len(view["messages"]) == record.message_count


def test_a_model_that_keeps_failing_ends_the_task_naming_the_error_and_the_agent(
    info: StackInfo, lobby_name: str
) -> None:
    """Each failed attempt leaves its error on the claim; when Pub/Sub gives up, the dead letter
    and the conversation's reason say what the model answered, not only 'not processed'."""
    settings = settings_for(info)
    envelope = Envelope(
        id=new_id(),
        conversation_id=new_id(),
        lobby=lobby_name,
        sender="user",
        content=TextContent(text="write it"),
        created_at=now(),
    )
    Conversations(settings.project).start(envelope, "running")

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
