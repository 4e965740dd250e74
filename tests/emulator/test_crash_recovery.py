"""Crash anywhere, lose nothing: a dead holder's work is taken over in seconds, a dead server is
started again, and a step that Pub/Sub never delivers again is found and driven by the sweeper."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.delivery.pipeline import deliver_pushed
from agentlobby.delivery.push import PushedMessage
from agentlobby.delivery.sweeper import sweep
from agentlobby.messages import Envelope, new_id, now
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.clients import firestore_client
from agentlobby.store.conversations import Conversations
from agentlobby.store.registry import AgentRecord
from agentlobby.store.slots import Slots
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.coding import (
    ADD_TESTS,
    GOOD_ADD,
    PASSED_ROUND_ONE,
    add_task,
    finished,
    kinds,
    model_stats,
    play,
    python_block,
    token,
)
from tests.support.envelopes import started_conversation, stored_user_message
from tests.support.lobbies import create_lobby_with, registered_agent, settings_for
from tests.support.user import JsonUser, wait_for_messages
from tests.support.waiting import wait_for


def kill_server(stack: Stack, target: str) -> int:
    """SIGKILL a function server's whole process group, as a crashed instance; its old pid."""
    (child,) = [c for c in stack.children if c.name == f"function-{target}"]
    os.killpg(child.process.pid, signal.SIGKILL)
    return child.process.pid


def serving_again(stack: Stack, target: str, old_pid: int) -> bool:
    (child,) = [c for c in stack.children if c.name == f"function-{target}"]
    if child.process.pid == old_pid or not child.alive():
        return False
    try:
        with urllib.request.urlopen(stack.url(target) + "/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (an event function answers a GET with 405)
    except OSError:
        return False


def test_a_claim_is_kept_while_its_holder_works_and_lapses_when_it_dies(info: StackInfo) -> None:
    holder, other = Claims(info.project), Claims(info.project)
    message_id = new_id()
    assert holder.claim("coder", message_id, lease_s=1.5) is Claim.TAKEN
    with holder.kept("coder", message_id, lease_s=1.5):
        time.sleep(3.5)  # more than twice the lease: only renewal keeps it
        assert other.claim("coder", message_id, lease_s=1.5) is Claim.BUSY
    # The holder "dies": it neither finishes nor releases. Its lease lapses, not much later.
    started = time.monotonic()
    wait_for(lambda: other.claim("coder", message_id, lease_s=1.5) is Claim.TAKEN, 5.0)
    assert time.monotonic() - started < 3.0


def test_a_killed_function_server_is_started_again_and_serves_its_lobby(
    stack: Stack, user: JsonUser
) -> None:
    before = stack.restarts.get("echo", 0)
    old = kill_server(stack, "echo")
    wait_for(lambda: serving_again(stack, "echo", old), timeout_s=30)
    assert stack.restarts["echo"] == before + 1
    posted = user.post("chat", "after the crash")
    (_, echoed) = wait_for_messages(user, posted["conversation_id"], 2, timeout_s=30)
    assert (echoed["sender"], echoed["text"]) == ("echo", "after the crash")


def test_a_coder_killed_during_its_model_call_is_taken_over_and_nothing_repeats(
    stack: Stack, user: JsonUser
) -> None:
    """The claim of the dead coder stops being renewed; once it lapses the sweeper redrives the
    spec, the restarted coder takes the claim over, and the task ends with one round."""
    tok = token()
    code = python_block(GOOD_ADD)
    play(
        stack,
        {
            "agent": "coder",
            "match": tok,
            "replies": [{"delay_ms": 120_000, "content": code}, {"content": code}],
        },
    )
    posted = user.post("coding", add_task(tok), tests=ADD_TESTS)
    wait_for(lambda: model_stats(stack)["in_flight"] > 0, timeout_s=30)
    old = kill_server(stack, "coder")
    wait_for(lambda: serving_again(stack, "coder", old), timeout_s=30)
    serving = time.monotonic()
    view = finished(user, posted["conversation_id"], timeout_s=90)
    recovered_in = time.monotonic() - serving
    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    assert recovered_in < 60, f"final {recovered_in:.0f}s after the coder served again"


def test_the_sweeper_publishes_a_stored_message_that_was_never_delivered(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    lost = stored_user_message(settings, lobby_name, "lost on the way")
    report = sweep(settings, [lost.conversation_id])
    assert report.redriven == [lost.id]
    (_, echoed) = wait_for_messages(user, lost.conversation_id, 2)
    assert (echoed["sender"], echoed["parent_id"]) == ("echo", lost.id)
    # Handled now: a later sweep finds nothing to do and nothing is answered twice.
    wait_for(lambda: Claims(info.project).is_done("echo", lost.id))
    assert sweep(settings, [lost.conversation_id]).redriven == []
    time.sleep(1.0)
    assert len(user.conversation(lost.conversation_id)["messages"]) == 2


def test_a_step_no_redrive_can_move_is_given_up_with_the_reason(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    """An agent whose function never answers: after the redrives, one dead letter names it."""
    settings = dataclasses.replace(settings_for(info), stall_s=0.01, max_redrives=2)
    create_lobby_with(settings, lobby_name)
    nobody = AgentRecord(
        name="nobody_home",
        endpoint="http://127.0.0.1:9/",  # nothing listens on the discard port
        listens_to=("text",),
        registered_at=now(),
    )
    with registered_agent(settings, nobody.name, nobody.endpoint, lobby_name, record=nobody):
        lost = stored_user_message(settings, lobby_name, "is anyone there")
        reports = []
        for _ in range(4):
            reports.append(sweep(settings, [lost.conversation_id]))
            time.sleep(0.05)
    assert [len(r.redriven) for r in reports] == [1, 1, 0, 0]
    assert reports[2].given_up == [lost.id]
    view: dict[str, Any] = user.conversation(lost.conversation_id)
    (letter,) = view["dead_letters"]
    assert letter["agent"] == "nobody_home"
    assert "after 2 redrives" in letter["reason"]
    assert view["status"] == "open"  # a chat goes on without the agent that failed


def test_a_quiet_chat_is_swept_once_and_comes_back_with_its_next_message(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    """Sweeps read only conversations that may have work: an idle chat is not read again and
    again, a finished one never."""
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    posted = user.post(lobby_name, "hello")
    wait_for_messages(user, posted["conversation_id"], 2)
    conversations = Conversations(info.project)
    wait_for(lambda: Claims(info.project).is_done("echo", posted["message_id"]))
    assert sweep(settings, [posted["conversation_id"]]).redriven == []
    assert conversations.get(posted["conversation_id"]).active_at is None
    user.post(lobby_name, "again", conversation_id=posted["conversation_id"])
    assert conversations.get(posted["conversation_id"]).active_at is not None


def test_a_model_slot_is_kept_while_its_call_runs_and_freed_when_its_holder_dies(
    info: StackInfo,
) -> None:
    agent = f"slots_{new_id()[:8]}"
    slots, other = Slots(info.project, agent, 1, 1.5), Slots(info.project, agent, 1, 1.5)
    with slots.hold(max_wait_s=1):
        time.sleep(3.5)  # more than twice the lease: only renewal keeps it
        assert not other.try_take(0, "someone else")
    assert other.try_take(0, "a holder that dies")  # and never releases
    started = time.monotonic()
    wait_for(lambda: slots.try_take(0, "the next caller"), timeout_s=5)
    assert time.monotonic() - started < 3.0


def test_a_copy_that_finds_the_work_under_way_is_acknowledged_not_failed(
    info: StackInfo, lobby_name: str
) -> None:
    """It used to raise (a 500, logged as an ERROR with a traceback) so that Pub/Sub would retry
    while the first copy worked; the holder's renewed claim and the sweeper make that moot."""
    settings = settings_for(info)
    message = started_conversation(settings, lobby_name)
    calls: list[str] = []

    def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
        calls.append(message.id)
        return []

    spec = AgentSpec(
        name="judge", description="", listens_to=frozenset({"text"}), handle=handle, exclusive=True
    )
    holder = Claims(info.project)
    assert holder.claim("judge", message.id, lease_s=30) is Claim.TAKEN
    copy = PushedMessage(lobby_name, new_id(), message.attributes(), message.to_json_bytes())
    deliver_pushed(spec, copy, settings)  # returns: acknowledged
    assert calls == []
    assert Claims(info.project).progress("judge", message.id) is Claim.BUSY


def test_one_unreadable_conversation_does_not_stop_the_sweeps(info: StackInfo) -> None:
    """A document the code cannot read (a field from a newer version, a hand edit) is logged and
    left out; the sweeper function would otherwise answer 500 on every tick."""
    stamp = now()
    bad = new_id()
    firestore_client(info.project).collection("conversations").document(bad).set(
        {"id": bad, "status": "running", "active_at": stamp.isoformat(), "from_the_future": 1}
    )
    found = Conversations(info.project).quiet(
        since=stamp - timedelta(seconds=1), until=stamp + timedelta(seconds=1)
    )
    assert bad not in [record.id for record in found]
