"""At least once in, exactly once in effect: duplicates, crashed and failing handlers, reruns.

Pub/Sub may deliver a message more than once, and redelivers what a handler did not
acknowledge. Whatever happens, the transcript holds one reply per message, and a rerun after a
crash resends what the first run stored instead of asking the handler again.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.delivery.pipeline import _replies, deliver_pushed
from agentlobby.delivery.push import PushedMessage
from agentlobby.messages import Envelope, TextContent, new_id, reply_id
from agentlobby.store.conversations import Conversations
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.envelopes import reply_to, started_conversation, stored_user_message
from tests.support.lobbies import (
    create_lobby_with,
    recording,
    registered_agent,
    settings_for,
)
from tests.support.pubsub import envelope_push, post_push, push_url, republish
from tests.support.user import JsonUser, wait_for_messages

SETTLE_S = 2.0  # long enough for a second reply, if there were one, to be stored and heard


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
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    envelope = stored_user_message(settings, lobby_name, "say it once")
    with recording(info.project, lobby_name) as tail:
        published = republish(info.project, envelope, times=2)
        assert len(set(published)) == 2  # two distinct Pub/Sub messages
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
    url = push_url(stack, "echo", lobby_name)
    body = envelope_push(envelope, "1234567", project=info.project)
    with recording(info.project, lobby_name) as tail:
        if concurrent:
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(lambda _: post_push(url, body), range(4)))
        else:
            statuses = [post_push(url, body), post_push(url, body)]
        heard = tail.messages(settle_s=SETTLE_S)
    assert set(statuses) == {200}
    assert_one_echo(user, envelope, heard)


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


# --- reruns after a crash: in-process deliveries of a judge whose model changes its mind ------


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
    first_run = reply_to(message, "judge", "fail: try again")
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
    stored = _replies(spec, message, settings)
    conversations = Conversations(settings.project)
    assert conversations.record_replies(message, stored) == stored
    assert conversations.get(message.conversation_id).status == "running"
    deliver_pushed(spec, pushed(message), settings)
    assert calls == [True]
    assert conversations.get(message.conversation_id).status == "succeeded"
    texts = [m.text() for m in conversations.transcript(message.conversation_id)]
    assert texts == ["judge this", "pass", "succeeded"]
