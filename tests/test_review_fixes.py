"""Defects found in review, each pinned by the test that showed it, on the real emulators."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.request
from typing import Any

import pytest

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.api import routes
from agentlobby.config import Settings, load_settings
from agentlobby.delivery.pipeline import _replies, deliver_pushed
from agentlobby.delivery.push import PushedMessage
from agentlobby.errors import TransientError
from agentlobby.lifecycle import Lifecycle
from agentlobby.messages import Envelope, TextContent, after, new_id, now, reply_id
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import ConversationRecord, Conversations, Reply
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.conftest import JsonUser, wait_for_messages
from tests.lobby_support import create_lobby_with, recording, settings_for


def post_with_key(info: StackInfo, lobby: str, body: dict[str, Any], key: str) -> dict[str, str]:
    request = urllib.request.Request(
        f"{info.user_url}/lobbies/{lobby}/messages",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {info.api_token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, str] = json.loads(response.read())
        return answer


def test_one_idempotency_key_in_two_conversations_posts_two_messages(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    create_lobby_with(settings_for(info), lobby_name, "echo")
    first = post_with_key(info, lobby_name, {"text": "first"}, "retry-1")
    assert post_with_key(info, lobby_name, {"text": "first"}, "retry-1") == first  # a retry
    other = user.post(lobby_name, "another conversation")["conversation_id"]
    second = post_with_key(
        info, lobby_name, {"text": "second", "conversation_id": other}, "retry-1"
    )
    assert second["conversation_id"] == other
    assert second["message_id"] != first["message_id"]
    # echo answers it: it was not taken for the first conversation's message, already handled
    messages = wait_for_messages(user, other, 4)
    assert [
        (m["sender"], m["text"]) for m in messages if m["parent_id"] == second["message_id"]
    ] == [("echo", "second")]


def started_conversation(settings: Settings, lobby: str) -> Envelope:
    """A running conversation with one user message in it, as the user agent leaves it."""
    envelope = Envelope(
        id=new_id(),
        conversation_id=new_id(),
        lobby=lobby,
        sender="user",
        content=TextContent(text="judge this"),
        created_at=now(),
    )
    Conversations(settings.project).start(envelope, "running")
    return envelope


def pushed(message: Envelope) -> PushedMessage:
    return PushedMessage(message.lobby, new_id(), message.attributes(), message.to_json_bytes())


def judge_spec(answers: list[bool], calls: list[bool]) -> AgentSpec:
    """A judge whose model answers `answers` in turn: fail means feedback, pass ends it."""

    def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
        passed = answers[len(calls)]
        calls.append(passed)
        if not passed:
            return [Outgoing(content=TextContent(text="fail: try again"))]
        return [
            Outgoing(content=TextContent(text="pass")),
            Outgoing(
                content=TextContent(text="succeeded"), ends_conversation="succeeded", reason=None
            ),
        ]

    return AgentSpec(
        name="judge", description="test", listens_to=frozenset({"text"}), handle=handle
    )


def test_a_rerun_after_a_crash_resends_the_stored_replies_and_never_mixes_two_runs(
    info: StackInfo, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    message = started_conversation(settings, lobby_name)
    conversations = Conversations(settings.project)
    # The first run judged "fail", stored its reply, and died before publishing it.
    first_run = Envelope(
        id=reply_id("judge", message.id, 0),
        conversation_id=message.conversation_id,
        lobby=lobby_name,
        sender="judge",
        content=TextContent(text="fail: try again"),
        parent_id=message.id,
        hops=1,
        created_at=now(),
    )
    conversations.record(first_run)
    calls: list[bool] = []
    with recording(info.project, lobby_name) as tail:
        # The redelivery: asked again, the model would now say "pass".
        deliver_pushed(judge_spec([True], calls), pushed(message), settings)
        heard = tail.messages(settle_s=1.0)
    assert calls == []  # the model is not asked a second time
    texts = [m.text() for m in conversations.transcript(message.conversation_id)]
    assert texts == ["judge this", "fail: try again"]
    assert [m.id for m in heard] == [first_run.id]  # the stored reply is published after all
    assert conversations.get(message.conversation_id).status == "running"


def test_a_rerun_of_a_stored_final_reply_still_ends_the_conversation(
    info: StackInfo, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    message = started_conversation(settings, lobby_name)
    calls: list[bool] = []
    spec = judge_spec([True, False], calls)
    # The first run stored both replies, then died before publishing and ending the conversation.
    replies = _replies(spec, message, settings)
    conversations = Conversations(settings.project)
    assert conversations.record_replies(message, replies) == replies
    assert conversations.get(message.conversation_id).status == "running"
    deliver_pushed(spec, pushed(message), settings)
    assert calls == [True]
    assert conversations.get(message.conversation_id).status == "succeeded"
    texts = [m.text() for m in conversations.transcript(message.conversation_id)]
    assert texts == ["judge this", "pass", "succeeded"]


def dead_letter_push(info: StackInfo, message: Envelope, agent: str) -> bytes:
    """What the dead-letter topic pushes once Pub/Sub gave up delivering `message` to `agent`."""
    source = f"projects/{info.project}/subscriptions/agentlobby-{message.lobby}-{agent}"
    attributes = {
        **message.attributes(),
        "CloudPubSubDeadLetterSourceSubscription": source,
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    }
    body = {
        "message": {
            "data": base64.b64encode(message.to_json_bytes()).decode(),
            "attributes": attributes,
            "messageId": str(secrets.randbelow(10**9)),
            "publishTime": now().isoformat().replace("+00:00", "Z"),
        },
        "subscription": f"projects/{info.project}/subscriptions/agentlobby-dead-letter-recorder",
    }
    return json.dumps(body).encode()


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
    url = stack.url("dead_letters") + f"/projects/{info.project}/topics/agentlobby-dead-letter"
    request = urllib.request.Request(
        url,
        data=dead_letter_push(info, message, "checker"),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    conversation = user.conversation(message.conversation_id)
    assert (conversation["status"], len(conversation["dead_letters"])) == (status, letters)


class _AlwaysChangedMeanwhile(Conversations):
    """Conversations whose document another step writes between each read and update: every
    conditional update of change_status() meets a real precondition failure on the emulator."""

    def _doc(self, conversation_id: str) -> Any:
        ref = super()._doc(conversation_id)
        outer = self

        class Ref:
            def get(self) -> Any:
                snap = ref.get()
                outer._db.collection("conversations").document(conversation_id).update(
                    {"updated_at": now().isoformat()}
                )
                return snap

            def update(self, *args: Any, **kwargs: Any) -> Any:
                return ref.update(*args, **kwargs)

        return Ref()


def test_a_finish_that_keeps_losing_the_race_says_so_instead_of_leaving_it_running(
    info: StackInfo, lobby_name: str
) -> None:
    """Giving up silently would let the delivery be marked done with the conversation running."""
    settings = settings_for(info)
    message = started_conversation(settings, lobby_name)
    with pytest.raises(TransientError, match="changed under it"):
        Lifecycle(_AlwaysChangedMeanwhile(settings.project)).end(
            message.conversation_id, "succeeded", None
        )
    assert Conversations(settings.project).get(message.conversation_id).status == "running"


def test_a_get_that_sees_the_end_sees_the_message_that_ended_it(
    info: StackInfo, lobby_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last step stores its reply, then ends the conversation. A GET whose transcript read
    came just before those writes and whose status read just after must not show the end
    without the reply: a client that stops polling at the end would never see it."""
    settings = settings_for(info)
    message = started_conversation(settings, lobby_name)
    final = Reply(
        Envelope(
            id=reply_id("checker", message.id, 0),
            conversation_id=message.conversation_id,
            lobby=lobby_name,
            sender="checker",
            content=TextContent(text="the verdict"),
            parent_id=message.id,
            hops=1,
            created_at=after(message.created_at),
        ),
        "succeeded",
    )
    transcript_read = threading.Event()

    class EndsBetweenTheReads(Conversations):
        def transcript(self, conversation_id: str) -> list[Envelope]:
            read = super().transcript(conversation_id)
            if not transcript_read.is_set():  # the last step runs right after this read
                self.record_replies(message, [final])
                Lifecycle(self).end(message.conversation_id, "succeeded", None)
                transcript_read.set()
            return read

        def get(self, conversation_id: str) -> ConversationRecord:
            assert transcript_read.wait(10)
            return super().get(conversation_id)

    monkeypatch.setattr(routes, "Conversations", EndsBetweenTheReads)
    config = load_settings({**info.client_environment(), "AGENTLOBBY_API_TOKEN": "t"})
    answer, status = routes.handle_request(
        "GET",
        f"/conversations/{message.conversation_id}",
        {"authorization": "Bearer t"},
        b"",
        config,
    )
    assert status == 200
    assert answer["status"] == "succeeded"
    assert [m["sender"] for m in answer["messages"]] == ["user", "checker"]
