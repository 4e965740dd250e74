"""Exclusive agents take a leased claim on each message: one run at a time, done stays done."""

from __future__ import annotations

import concurrent.futures

from agentlobby.messages import CodeContent, Envelope
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import Conversations
from local_emulator.stack import Stack
from tests.support.coding import (
    ADD_TESTS,
    GOOD_ADD,
    PASSED_ROUND_ONE,
    add_task,
    finished,
    handled_count,
    kinds,
    of_kind,
    play,
    python_block,
    settle,
    token,
)
from tests.support.pubsub import envelope_push, post_push, push_url, republish
from tests.support.user import JsonUser
from tests.support.waiting import wait_for


def test_only_the_holder_of_a_claim_releases_it(stack: Stack) -> None:
    first, other, redelivery = (Claims(stack.project) for _ in range(3))
    message_id = token()
    assert first.claim("coder", message_id, lease_s=600) is Claim.TAKEN
    other.release("coder", message_id)  # not its claim: nothing changes
    assert redelivery.claim("coder", message_id, lease_s=600) is Claim.BUSY
    first.release("coder", message_id)
    assert redelivery.claim("coder", message_id, lease_s=600) is Claim.TAKEN
    redelivery.finish("coder", message_id)
    redelivery.release("coder", message_id)  # a finished delivery stays finished
    assert first.claim("coder", message_id, lease_s=600) is Claim.DONE


def push_to_interpreter(stack: Stack, message: Envelope) -> int:
    """POST the standard push body for `message` straight to the interpreter; the HTTP status."""
    body = envelope_push(
        message,
        f"dup-{message.id[:12]}",
        project=stack.project,
        subscription="agentlobby-coding-interpreter",
        published=message.created_at,
    )
    return post_push(push_url(stack, "interpreter", message.lobby), body)


def test_a_duplicate_code_delivery_runs_once(stack: Stack, user: JsonUser) -> None:
    tok = token()
    slow = "import time\n\ntime.sleep(2)\n\n\n" + GOOD_ADD
    play(stack, {"agent": "coder", "match": tok, "replies": [python_block(slow)]})
    posted = user.post("coding", add_task(tok), tests=ADD_TESTS)
    conversation_id = posted["conversation_id"]
    conversations = Conversations(stack.project)

    def code_message() -> Envelope | None:
        found = [m for m in conversations.transcript(conversation_id) if m.kind == "code"]
        return found[0] if found else None

    code: Envelope = wait_for(code_message, 30.0, interval_s=0.05)
    assert isinstance(code.content, CodeContent)
    # While the first run is still going: the same push twice at once, and a republish.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: push_to_interpreter(stack, code), range(2)))
    republish(stack.project, code)
    finished(user, conversation_id)
    # And once it was processed: published again, and pushed again.
    republish(stack.project, code)
    assert push_to_interpreter(stack, code) == 200  # a duplicate of done work is acknowledged
    settle()  # Pub/Sub redelivers what was answered "busy"; give it time to come back

    assert all(status in (200, 500) for status in answers), answers  # 500: busy, retry later
    view = user.conversation(conversation_id)
    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    results = [m for m in of_kind(view, "execution-result") if m["content"]["code_id"] == code.id]
    assert len(results) == 1
    assert handled_count(stack, "interpreter", "code", conversation_id) == 1
    assert view["dead_letters"] == []
