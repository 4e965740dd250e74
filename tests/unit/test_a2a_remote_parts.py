"""A remote A2A member without I/O: what is sent, how answers read, how errors are sorted,
which member a push path names, and that the roster knows the `remote` function."""

from __future__ import annotations

import base64

import httpx
import pytest
from a2a.client import A2AClientError, A2AClientTimeoutError
from a2a.client.errors import AgentCardResolutionError
from a2a.helpers.proto_helpers import new_text_artifact, new_text_message
from a2a.types import Part, Task, TaskState, TaskStatus
from a2a.utils.errors import InternalError, InvalidParamsError, UnsupportedOperationError

from agentlobby.a2a_remote.call import translated
from agentlobby.a2a_remote.parts import (
    TRUNCATED,
    a2a_message_id,
    message_answer,
    outgoing_message,
    task_answer,
    text_to_send,
)
from agentlobby.agents.remote import spec_for
from agentlobby.delivery.remote import agent_in_path, endpoint_for
from agentlobby.errors import InvalidMessage, RemoteAgentRejected, RemoteAgentUnavailable
from agentlobby.messages import MAX_TEXT_CHARS, ImageContent, TaskContent
from local_emulator.roster import discover_targets
from tests.support.envelopes import user_message
from tests.support.paths import MAIN_PY


def test_the_message_id_is_the_same_for_every_delivery_and_differs_per_member() -> None:
    assert a2a_message_id("shouter", "m1") == a2a_message_id("shouter", "m1")
    assert a2a_message_id("shouter", "m1") != a2a_message_id("shouter", "m2")
    assert a2a_message_id("shouter", "m1") != a2a_message_id("whisperer", "m1")


def test_the_a2a_message_carries_the_text_the_conversation_and_where_it_came_from() -> None:
    message = user_message("t-lobby", "hello")
    sent = outgoing_message("shouter", message, "hello")
    assert [p.text for p in sent.parts] == ["hello"]
    assert sent.context_id == message.conversation_id
    assert sent.message_id == a2a_message_id("shouter", message.id)
    assert sent.metadata["agentlobby"]["lobby"] == "t-lobby"
    assert sent.metadata["agentlobby"]["message_id"] == message.id


def test_a_task_is_sent_with_its_tests_and_a_caption_less_image_is_not_sent() -> None:
    base = user_message("t-lobby", "x")
    task = base.model_copy(update={"content": TaskContent(text="write f", tests="assert f()")})
    assert text_to_send(task) == "write f\n\nTests:\nassert f()"
    image = base.model_copy(
        update={"content": ImageContent(mime_type="image/png", data=base64.b64encode(b"png"))}
    )
    assert text_to_send(image) is None


def test_answers_read_as_one_text_and_a_failed_task_says_so() -> None:
    assert message_answer(new_text_message("LOUD")).text == "LOUD"
    data = new_text_message("a")
    data.parts.append(Part(url="https://x/y.png", filename="y.png", media_type="image/png"))
    assert message_answer(data).text == "a\n[file y.png (image/png)]"
    done = Task(
        id="t1",
        status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
        artifacts=[new_text_artifact("a", "ONE"), new_text_artifact("b", "TWO")],
    )
    assert task_answer("shouter", done).text == "ONE\nTWO"
    assert not task_answer("shouter", done).failed
    failed = Task(
        id="t2",
        status=TaskStatus(
            state=TaskState.TASK_STATE_FAILED, message=new_text_message("out of ideas")
        ),
    )
    answer = task_answer("shouter", failed)
    assert (answer.text, answer.failed) == ("shouter's A2A task t2 failed\nout of ideas", True)
    empty = Task(id="t3", status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED))
    assert task_answer("shouter", empty).text == "(shouter's task completed without text)"


def test_an_answer_longer_than_a_message_is_cut_to_fit() -> None:
    text = message_answer(new_text_message("x" * (MAX_TEXT_CHARS + 10))).text
    assert len(text) == MAX_TEXT_CHARS and text.endswith(TRUNCATED)


def _status_error(status: int) -> A2AClientError:
    request = httpx.Request("POST", "http://127.0.0.1:1/")
    response = httpx.Response(status, request=request)
    error = A2AClientError(f"HTTP Error {status}")
    error.__cause__ = httpx.HTTPStatusError("x", request=request, response=response)
    return error


def _connect_error() -> A2AClientError:
    error = A2AClientError("Network communication error")
    error.__cause__ = httpx.ConnectError("refused")
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (A2AClientTimeoutError("slow"), RemoteAgentUnavailable),
        (_connect_error(), RemoteAgentUnavailable),
        (_status_error(500), RemoteAgentUnavailable),
        (_status_error(503), RemoteAgentUnavailable),
        (_status_error(429), RemoteAgentUnavailable),
        (InternalError("boom"), RemoteAgentUnavailable),
        (AgentCardResolutionError("down", status_code=502), RemoteAgentUnavailable),
        (_status_error(400), RemoteAgentRejected),
        (_status_error(404), RemoteAgentRejected),
        (InvalidParamsError("bad"), RemoteAgentRejected),
        (UnsupportedOperationError("no"), RemoteAgentRejected),
        (AgentCardResolutionError("no card", status_code=404), RemoteAgentRejected),
        (A2AClientError("JSON Decode Error"), RemoteAgentRejected),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, type) else None,
)
def test_what_may_pass_is_transient_and_a_refusal_is_permanent(
    error: Exception, kind: type[Exception]
) -> None:
    assert isinstance(error, Exception)
    result = translated("remote A2A agent s at http://127.0.0.1:1", error)  # type: ignore[arg-type]
    assert type(result) is kind
    assert str(result).startswith("remote A2A agent s at http://127.0.0.1:1 ")


@pytest.mark.parametrize(
    "path",
    ["/projects/p/topics/chat", "/agents//projects/p", "/agents/Bad-Name/x", "/agents/a", ""],
)
def test_a_push_path_that_names_no_remote_agent_is_refused(path: str) -> None:
    with pytest.raises(InvalidMessage, match="names no remote agent"):
        agent_in_path(path)


def test_the_registered_endpoint_and_the_push_path_agree() -> None:
    endpoint = endpoint_for("http://127.0.0.1:9000/", "shouter")
    assert endpoint == "http://127.0.0.1:9000/agents/shouter"
    assert agent_in_path("/agents/shouter/projects/p/topics/chat") == "shouter"
    assert agent_in_path("/agents/shouter") == "shouter"


def test_a_remote_member_is_exclusive_and_tuned_by_its_settings() -> None:
    spec = spec_for("shouter", "http://127.0.0.1:1", (), {"timeout_s": 5, "tries": 1})
    assert spec.exclusive and spec.name == "shouter"
    assert spec.listens_to == frozenset({"text"})
    call = spec.handle.args[0]  # type: ignore[attr-defined]
    assert (call.timeout_s, call.tries, call.url) == (5.0, 1, "http://127.0.0.1:1")
    agent_reply = user_message("t-lobby", "hi").model_copy(update={"sender": "echo"})
    assert spec.handle(agent_reply, None) == []  # type: ignore[arg-type]


def test_the_roster_has_the_remote_function() -> None:
    kinds = {t.name: t.kind for t in discover_targets(MAIN_PY)}
    assert kinds["remote"] == "remote"
