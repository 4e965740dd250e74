"""Bad input on the real stack: refused HTTP posts write nothing, bad Pub/Sub data is recorded.

Over HTTP every refusal is a JSON `{"error": ...}` naming the problem. On Pub/Sub an agent
acknowledges what it can never process and records it as a dead letter, which the
conversation named in the message's attributes shows.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from agentlobby.messages import MAX_ENVELOPE_BYTES
from agentlobby.store.clients import firestore_client
from agentlobby.store.lobbies import topic_path
from local_emulator.stack_state import StackInfo
from tests.conftest import JsonUser, wait_for, wait_for_messages
from tests.lobby_support import create_lobby_with, recording, settings_for

RETRY_WINDOW_S = 3.0  # Pub/Sub retries a refused push after 1 s (the minimum backoff)


def request(
    info: StackInfo,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = "default",
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {info.api_token if token == 'default' else token}"
    req = urllib.request.Request(info.user_url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        assert exc.headers.get_content_type() == "application/json", raw[:200]
        return exc.code, json.loads(raw)


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
            answer = request(info, "POST", f"/lobbies/{lobby_name}/messages", body)
            assert answer[0] == status, (body[:60], answer)
            assert expected in answer[1]["error"]
        # Also into an existing conversation: refused before anything is stored.
        into_existing = {"conversation_id": existing["conversation_id"], "text": "hi", "x": 1}
        status, answer = request(
            info, "POST", f"/lobbies/{lobby_name}/messages", json.dumps(into_existing).encode()
        )
        assert (status, answer) == (
            422,
            {"error": "invalid message: x: Extra inputs are not permitted"},
        )
        for token in (None, "wrong-token"):
            status, answer = request(
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
        ("GET", "/lobbies", 404, "no route GET /lobbies"),
    ],
)
def test_http_errors_name_the_problem(
    info: StackInfo, method: str, path: str, status: int, expected: str
) -> None:
    body = b'{"text": "hi"}' if method in ("POST", "PUT") else None
    answer = request(info, method, path, body)
    assert answer[0] == status, answer
    assert expected in answer[1]["error"]


def test_unknown_lobby_creates_nothing(info: StackInfo, lobby_name: str) -> None:
    status, answer = request(info, "POST", f"/lobbies/{lobby_name}/messages", b'{"text": "hi"}')
    assert status == 404
    assert answer["error"] == (
        f"unknown lobby {lobby_name!r}: create it with `agentlobby lobbies create {lobby_name}` "
        "or list the lobbies with `agentlobby lobbies`"
    )
    assert conversations_in(info, lobby_name) == []


def envelope(conversation_id: str, lobby: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "id": "bad-0",
        "conversation_id": conversation_id,
        "lobby": lobby,
        "sender": "user",
        "content": {"kind": "text", "text": "hello"},
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_bad_pubsub_messages_are_acknowledged_and_recorded(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    from google.cloud import pubsub_v1

    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    posted = user.post(lobby_name, "a good message first")
    cid = posted["conversation_id"]
    wait_for_messages(user, cid, 2)

    bad = {
        "malformed": (b"{this is not json", "invalid envelope: (top level): Invalid JSON"),
        "unknown kind": (
            envelope(cid, lobby_name, content={"kind": "poem", "text": "roses"}),
            "content: Input tag 'poem' found using 'kind' does not match any of the expected",
        ),
        "missing fields": (
            envelope(cid, lobby_name, created_at=None, sender=None),
            "sender: Field required; created_at: Field required",
        ),
        "extra fields": (
            envelope(cid, lobby_name, priority="high"),
            "priority: Extra inputs are not permitted",
        ),
        "wrong type": (envelope(cid, lobby_name, hops="many"), "hops: Input should be a valid"),
        "other lobby": (
            envelope(cid, "chat"),
            f"envelope says lobby 'chat' but it was delivered from {lobby_name!r}",
        ),
        "empty": (b"", "push message has empty data: expected a JSON envelope"),
    }
    publisher = pubsub_v1.PublisherClient()
    for data, _ in bad.values():
        raw = json.dumps(data).encode() if isinstance(data, dict) else data
        attributes = {"conversation_id": cid, "kind": "text"}  # no lobby: the push path says
        publisher.publish(topic_path(info.project, lobby_name), raw, **attributes).result()

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


def test_a_task_no_member_takes_on_stays_open(user: JsonUser) -> None:
    """A task posted to chat (where only echo listens, and not to tasks) is not `running`."""
    posted = user.post("chat", "write something", tests="assert True")
    time.sleep(1.5)
    state = user.conversation(posted["conversation_id"])
    assert state["status"] == "open"
    assert [m["kind"] for m in state["messages"]] == ["task"]
