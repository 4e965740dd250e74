"""A lobby is an A2A agent: the official a2a-sdk client against the stack's user function.

The client resolves the coding lobby's card, streams a coding task to `completed` and reads
the final code and output as artifacts; an unknown lobby and a missing token get the
protocol's refusals. Raw HTTP then tries to break the endpoint: every malformed request gets a
JSON-RPC error object (never a 5xx), and none of them leaves a conversation behind: a send's
conversation id is fixed by its messageId (conversation_id_for_key), so the test can look for
the conversation a refused send would have opened.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from a2a.client import A2ACardResolver, A2AClientError, AgentCardResolutionError, ClientConfig
from a2a.client import ClientFactory as A2AClientFactory
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from a2a.utils.errors import (
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from agentlobby.api.posting import conversation_id_for_key
from agentlobby.errors import ApiError
from agentlobby.messages import MAX_ENVELOPE_BYTES, MAX_TEXT_CHARS
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.coding import (
    ADD_TESTS,
    GOOD_ADD,
    add_task,
    kinds,
    play,
    python_block,
    reply,
    token,
)
from tests.support.user import JsonUser

T = TypeVar("T")
DEADLINE_S = 120.0  # a bound on each async test body, so a hang fails instead of waiting


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(make(), DEADLINE_S)

    return asyncio.run(bounded())


def http(info: StackInfo, token: str | None = "stack") -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {info.api_token}"}
    return httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60.0))


def user_message(*parts: Part, task_id: str = "") -> Message:
    return Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=parts, task_id=task_id)


def data_part(fields: dict[str, Any]) -> Part:
    part = Part()
    part.data.struct_value.update(fields)
    return part


async def card_of(client: httpx.AsyncClient, info: StackInfo, lobby: str) -> AgentCard:
    return await A2ACardResolver(client, f"{info.user_url}/a2a/{lobby}").get_agent_card()


def assert_no_conversation(user: JsonUser, lobby: str, message_id: str) -> None:
    """The conversation a send with this messageId would have opened does not exist."""
    with pytest.raises(ApiError) as refused:
        user.conversation(conversation_id_for_key(lobby, message_id))
    assert refused.value.status == 404


def test_the_official_client_streams_a_coding_task_to_completed(
    stack: Stack, info: StackInfo, user: JsonUser
) -> None:
    tok = token()
    play(stack, {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 40, 9)]})

    async def scenario() -> tuple[AgentCard, list[StreamResponse], Any]:
        async with http(info) as client:
            card = await card_of(client, info, "coding")
            a2a = A2AClientFactory(ClientConfig(httpx_client=client, streaming=True)).create(card)
            request = SendMessageRequest(
                message=user_message(Part(text=add_task(tok)), data_part({"tests": ADD_TESTS}))
            )
            events = [event async for event in a2a.send_message(request)]
            task_id = events[0].task.id
            return card, events, await a2a.get_task(GetTaskRequest(id=task_id))

    card, events, task = run(scenario)

    assert card.name == "agentlobby coding"
    assert card.supported_interfaces[0].url == f"{info.user_url}/a2a/coding"
    assert card.capabilities.streaming
    assert {skill.id for skill in card.skills} == {"vision", "coder", "interpreter", "checker"}
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert "bearer" in card.security_requirements[0].schemes

    first, *updates, last = events
    assert first.HasField("task")
    assert first.task.status.state == TaskState.TASK_STATE_WORKING
    conversation_id = first.task.id
    assert first.task.context_id == conversation_id
    said = [
        (
            u.status_update.status.message.metadata["sender"],
            u.status_update.status.message.metadata["kind"],
        )
        for u in updates
        if u.HasField("status_update")
    ]
    assert said == [
        ("vision", "spec"),
        ("coder", "code"),
        ("interpreter", "execution-result"),
        ("checker", "verdict"),
        ("checker", "result"),
    ]
    assert all(
        u.status_update.status.state == TaskState.TASK_STATE_WORKING
        for u in updates
        if u.HasField("status_update")
    )
    artifacts = {
        u.artifact_update.artifact.artifact_id: u.artifact_update.artifact
        for u in updates
        if u.HasField("artifact_update")
    }
    assert artifacts["final-code"].parts[0].text == GOOD_ADD
    assert "tests passed" in artifacts["output"].parts[0].text
    assert last.HasField("status_update")
    assert last.status_update.status.state == TaskState.TASK_STATE_COMPLETED

    # GetTask says the same as the stream's end, and the user API agrees with both.
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [a.artifact_id for a in task.artifacts] == ["final-code", "output"]
    view = user.conversation(conversation_id)
    assert view["status"] == "succeeded"
    assert view["final_code"] == GOOD_ADD
    assert [m.message_id for m in task.history] == [m["id"] for m in view["messages"]]
    assert kinds(view)[0] == ("user", "task")
    assert view["messages"][0]["content"]["tests"] == ADD_TESTS


def test_an_unknown_lobby_has_no_card_and_a_send_to_it_gets_the_protocols_error(
    info: StackInfo,
) -> None:
    async def scenario() -> tuple[AgentCardResolutionError, InvalidRequestError]:
        async with http(info) as client:
            with pytest.raises(AgentCardResolutionError) as no_card:
                await card_of(client, info, "no-such-lobby")
            card = await card_of(client, info, "coding")
            card.supported_interfaces[0].url = f"{info.user_url}/a2a/no-such-lobby"
            a2a = A2AClientFactory(ClientConfig(httpx_client=client, streaming=False)).create(card)
            with pytest.raises(InvalidRequestError) as refused:
                async for _ in a2a.send_message(
                    SendMessageRequest(message=user_message(Part(text="hi")))
                ):
                    pass
            return no_card.value, refused.value

    no_card, refused = run(scenario)
    assert no_card.status_code == 404
    assert "unknown lobby 'no-such-lobby'" in refused.message


def test_without_the_token_the_card_is_public_and_a_send_is_refused(
    info: StackInfo, user: JsonUser
) -> None:
    message = user_message(Part(text="let me in"))

    async def scenario() -> A2AClientError:
        async with http(info, token=None) as client:
            card = await card_of(client, info, "chat")  # public: it declares the scheme
            assert "bearer" in card.security_schemes
            a2a = A2AClientFactory(ClientConfig(httpx_client=client, streaming=True)).create(card)
            with pytest.raises(A2AClientError) as refused:
                async for _ in a2a.send_message(SendMessageRequest(message=message)):
                    pass
            return refused.value

    refused = run(scenario)
    assert "401" in str(refused)
    assert_no_conversation(user, "chat", message.message_id)


def test_a_chat_streams_to_input_required_and_cancel_ends_it(
    info: StackInfo, user: JsonUser
) -> None:
    async def scenario() -> tuple[list[StreamResponse], Any, Exception, Exception, Any]:
        async with http(info) as client:
            card = await card_of(client, info, "chat")
            a2a = A2AClientFactory(ClientConfig(httpx_client=client, streaming=True)).create(card)
            first = user_message(Part(text="hello a2a"))
            events = [e async for e in a2a.send_message(SendMessageRequest(message=first))]
            # The task's id follows from the messageId: what assert_no_conversation relies on.
            assert events[0].task.id == conversation_id_for_key("chat", first.message_id)
            task_id = events[0].task.id
            cancelled = await a2a.cancel_task(CancelTaskRequest(id=task_id))
            with pytest.raises(TaskNotCancelableError) as again:
                await a2a.cancel_task(CancelTaskRequest(id=task_id))
            with pytest.raises(UnsupportedOperationError) as after:
                message = user_message(Part(text="still there?"), task_id=task_id)
                async for _ in a2a.send_message(SendMessageRequest(message=message)):
                    pass
            with pytest.raises(TaskNotFoundError) as unknown:
                await a2a.get_task(GetTaskRequest(id="f" * 32))
            return events, cancelled, again.value, after.value, unknown.value

    events, cancelled, _again, after, _unknown = run(scenario)
    last = events[-1].status_update.status
    assert last.state == TaskState.TASK_STATE_INPUT_REQUIRED
    echo = [e.status_update.status.message for e in events[1:-1]]
    assert [m.metadata["sender"] for m in echo] == ["echo"]
    assert "hello a2a" in echo[0].parts[0].text
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert "ended (cancelled)" in after.message
    view = user.conversation(cancelled.id)
    assert view["status"] == "cancelled"
    assert len(view["messages"]) == 2  # the refused message after the cancel was not written


# --- bad input, by raw HTTP -------------------------------------------------------------------

A2A_HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()


def send_body(message_id: str, *parts: dict[str, Any], **message: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "SendMessage",
        "params": {
            "message": {
                "messageId": message_id,
                "role": "ROLE_USER",
                "parts": list(parts),
                **message,
            }
        },
    }


def bad_sends(mid: str) -> list[tuple[str, Any, int, str]]:
    """(case, body, JSON-RPC error code, words the message must hold), each a send with `mid`."""
    text = {"text": "write fizzbuzz"}
    return [
        (
            "a file by url",
            send_body(mid, text, {"url": "http://127.0.0.1/x.png"}),
            -32005,
            "by URL",
        ),
        (
            "a pdf",
            send_body(mid, text, {"raw": PNG, "mediaType": "application/pdf"}),
            -32005,
            "pdf",
        ),
        (
            "a png that is not one",
            send_body(
                mid, text, {"raw": base64.b64encode(b"hello").decode(), "mediaType": "image/png"}
            ),
            -32602,
            "image",
        ),
        (
            "unknown task field",
            send_body(mid, text, {"data": {"shell": "rm -rf /"}}),
            -32602,
            "'shell'",
        ),
        ("data not an object", send_body(mid, text, {"data": [1, 2]}), -32602, "JSON object"),
        ("no text", send_body(mid, {"data": {"tests": "assert True"}}), -32602, "no text"),
        ("agent role", send_body(mid, text, role="ROLE_AGENT"), -32602, "ROLE_AGENT"),
        ("no parts", send_body(mid), -32602, "parts"),
        ("text too long", send_body(mid, {"text": "x" * (MAX_TEXT_CHARS + 1)}), -32602, "text"),
        ("too large", send_body(mid, {"text": "x" * MAX_ENVELOPE_BYTES}), -32600, "too large"),
        (
            "wrong params type",
            {**send_body(mid, text), "params": {"message": "hi"}},
            -32602,
            "message.parts",
        ),
        (
            "0.3 method name",
            {**send_body(mid, text), "method": "message/send"},
            -32601,
            "message/send",
        ),
        (
            "no jsonrpc",
            {k: v for k, v in send_body(mid, text).items() if k != "jsonrpc"},
            -32600,
            "jsonrpc",
        ),
        ("bool id", {**send_body(mid, text), "id": True}, -32600, "id"),
        ("unserved method", {**send_body(mid, text), "method": "ListTasks"}, -32004, "ListTasks"),
        (
            "push config",
            {**send_body(mid, text), "method": "CreateTaskPushNotificationConfig"},
            -32003,
            "push",
        ),
    ]


@pytest.mark.parametrize("case", [c[0] for c in bad_sends("x")])
def test_a_bad_request_gets_a_json_rpc_error_and_writes_nothing(
    info: StackInfo, user: JsonUser, case: str
) -> None:
    mid = uuid.uuid4().hex
    ((_, body, code, words),) = [c for c in bad_sends(mid) if c[0] == case]
    answer = httpx.post(
        f"{info.user_url}/a2a/coding",
        content=json.dumps(body).encode(),
        headers={**A2A_HEADERS, "Authorization": f"Bearer {info.api_token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == code, error
    assert words.lower() in error["message"].lower(), error
    assert answer.json()["jsonrpc"] == "2.0"
    assert_no_conversation(user, "coding", mid)


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"{not json", A2A_HEADERS, -32700),
        (b"\xff\xfe", A2A_HEADERS, -32700),
        (b"[]", A2A_HEADERS, -32600),
        (b'"SendMessage"', A2A_HEADERS, -32600),
        (b'{"jsonrpc": "2.0", "id": 1}', A2A_HEADERS, -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "Nope", "params": {}}', A2A_HEADERS, -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {}}', A2A_HEADERS, -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "abc"}}', {}, -32009),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "abc"}}',
            A2A_HEADERS,
            -32001,
        ),
        (b"[" * 100_000, A2A_HEADERS, -32700),
    ],
    ids=[
        "bad-json",
        "not-utf8",
        "batch",
        "a-string",
        "no-method",
        "unknown-method",
        "no-task-id",
        "no-version",
        "unknown-task",
        "deep",
    ],
)
def test_malformed_json_rpc_gets_the_protocols_error_objects(
    info: StackInfo, body: bytes, headers: dict[str, str], code: int
) -> None:
    answer = httpx.post(
        f"{info.user_url}/a2a/coding",
        content=body,
        headers={**headers, "Authorization": f"Bearer {info.api_token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["error"]["code"] == code, answer.text[:300]


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    info: StackInfo, user: JsonUser
) -> None:
    mid = uuid.uuid4().hex
    body = json.dumps(
        send_body(mid, {"text": "y" * 10}, metadata={"pad": "z" * (MAX_ENVELOPE_BYTES + 1)})
    )
    answer = httpx.post(
        f"{info.user_url}/a2a/coding",
        content=body.encode(),
        headers={**A2A_HEADERS, "Authorization": f"Bearer {info.api_token}"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.json()["error"]["code"] == -32600
    assert "too large" in answer.json()["error"]["message"].lower()
    assert_no_conversation(user, "coding", mid)
