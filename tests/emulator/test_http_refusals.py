"""Refused HTTP requests on the real stack: a JSON `{"error": ...}` naming the problem, and
nothing written or published.

tests/unit/test_user_api_refusals.py checks each refusal on the plain function; these check
that the deployed user function answers the same over HTTP and leaves no trace.
"""

from __future__ import annotations

import json

import pytest

from agentlobby.messages import MAX_ENVELOPE_BYTES
from agentlobby.store.clients import firestore_client
from local_emulator.stack_state import StackInfo
from tests.support.lobbies import create_lobby_with, recording, settings_for
from tests.support.user import JsonUser, api_request, wait_for_messages


def conversations_in(info: StackInfo, lobby: str) -> list[str]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = firestore_client(info.project).collection("conversations")
    return [s.id for s in query.where(filter=FieldFilter("lobby", "==", lobby)).stream()]


REFUSED_POSTS = [
    (b"{not json", 422, "body is not valid JSON"),
    (b'["text", "hi"]', 422, "body must be a JSON object"),
    (b'"hi"', 422, "body must be a JSON object"),
    (b"", 422, "body must be a JSON object"),
    (b'{"txt": "hi"}', 422, "text: Field required; txt: Extra inputs are not permitted"),
    (b'{"text": "hi", "sender": "echo"}', 422, "sender: Extra inputs are not permitted"),
    (b'{"text": 3}', 422, "text: Input should be a valid string"),
    (b'{"text": "hi", "max_rounds": "two"}', 422, "max_rounds: Input should be a valid integer"),
    (
        json.dumps({"text": "x" * MAX_ENVELOPE_BYTES}).encode(),
        413,
        f"bytes; the limit is {MAX_ENVELOPE_BYTES}",
    ),
]


def test_refused_posts_answer_json_errors_and_write_nothing(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    existing = user.post(lobby_name, "before the bad posts")
    before = {m["id"] for m in wait_for_messages(user, existing["conversation_id"], 2)}
    with recording(info.project, lobby_name) as lobby:
        for body, status, expected in REFUSED_POSTS:
            answer = api_request(info, "POST", f"/lobbies/{lobby_name}/messages", body)
            assert answer[0] == status, (body[:60], answer)
            assert expected in answer[1]["error"]
        # Also into an existing conversation: refused before anything is stored.
        into_existing = {"conversation_id": existing["conversation_id"], "text": "hi", "x": 1}
        status, answer = api_request(
            info, "POST", f"/lobbies/{lobby_name}/messages", json.dumps(into_existing).encode()
        )
        assert (status, answer) == (
            422,
            {"error": "invalid message: x: Extra inputs are not permitted"},
        )
        for token in (None, "wrong-token"):
            status, answer = api_request(
                info, "POST", f"/lobbies/{lobby_name}/messages", b'{"text": "hi"}', token
            )
            assert status == 401 and "Authorization: Bearer <token>" in answer["error"]
        # (the echo of the first message may still be on its way: it was stored before it was
        # published)
        assert [m for m in lobby.messages(settle_s=1.0) if m.id not in before] == []
    assert conversations_in(info, lobby_name) == [existing["conversation_id"]]
    transcript = user.conversation(existing["conversation_id"])["messages"]
    assert [m["text"] for m in transcript] == ["before the bad posts"] * 2


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("POST", "/lobbies/Bad_Name/messages", 422, "lobby name 'Bad_Name' must be 3-63"),
        ("POST", "/lobbies/no-such-lobby/messages", 404, "`agentlobby lobbies create no-such"),
        ("GET", "/conversations/0123456789abcdef", 404, "unknown conversation '0123456789abcdef'"),
        ("GET", "/conversations/__reserved__", 404, "unknown conversation '__reserved__'"),
        ("GET", "/conversations/..", 404, "unknown conversation '..'"),
        ("PUT", "/lobbies/chat/messages", 405, "method PUT not allowed on /lobbies/chat/messages"),
        ("DELETE", "/conversations/abc", 405, "method DELETE not allowed"),
        ("GET", "/lobbies/chat", 404, "no route GET /lobbies/chat"),
    ],
)
def test_http_errors_name_the_problem(
    info: StackInfo, method: str, path: str, status: int, expected: str
) -> None:
    body = b'{"text": "hi"}' if method in ("POST", "PUT") else None
    answer = api_request(info, method, path, body)
    assert answer[0] == status, answer
    assert expected in answer[1]["error"]


def test_unknown_lobby_creates_nothing(info: StackInfo, lobby_name: str) -> None:
    status, answer = api_request(info, "POST", f"/lobbies/{lobby_name}/messages", b'{"text": "hi"}')
    assert status == 404
    assert answer["error"] == (
        f"unknown lobby {lobby_name!r}: create it with `agentlobby lobbies create {lobby_name}` "
        "or list the lobbies with `agentlobby lobbies`"
    )
    assert conversations_in(info, lobby_name) == []
