"""An `Idempotency-Key` makes a retried post a no-op, within one conversation only."""

from __future__ import annotations

import json
from typing import Any

from local_emulator.stack_state import StackInfo
from tests.support.lobbies import create_lobby_with, settings_for
from tests.support.user import JsonUser, api_request, wait_for_messages


def post_with_key(info: StackInfo, lobby: str, body: dict[str, Any], key: str) -> dict[str, str]:
    status, answer = api_request(
        info,
        "POST",
        f"/lobbies/{lobby}/messages",
        json.dumps(body).encode(),
        headers={"Idempotency-Key": key},
    )
    assert 200 <= status < 300, (status, answer)
    return dict(answer)


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


def test_a_key_reused_with_a_different_body_is_a_conflict_not_the_first_post(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    """As payment APIs do: the second body is refused, the first message stays as it was."""
    create_lobby_with(settings_for(info), lobby_name)
    first = post_with_key(info, lobby_name, {"text": "pay 10"}, "key-reused")
    body = json.dumps({"text": "pay 1000"}).encode()
    headers = {"Idempotency-Key": "key-reused"}
    path = f"/lobbies/{lobby_name}/messages"
    status, answer = api_request(info, "POST", path, body, headers=headers)
    assert status == 422
    assert (
        "Idempotency-Key 'key-reused' was already used for a different message" in answer["error"]
    )
    messages = user.conversation(first["conversation_id"])["messages"]
    assert [(m["id"], m["text"]) for m in messages] == [(first["message_id"], "pay 10")]


def test_a_post_to_a_conversation_that_does_not_exist_is_404_and_creates_nothing(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    create_lobby_with(settings_for(info), lobby_name)
    body = json.dumps({"text": "hello", "conversation_id": "no-such-conversation"}).encode()
    status, answer = api_request(info, "POST", f"/lobbies/{lobby_name}/messages", body)
    assert (status, answer["error"]) == (404, "unknown conversation 'no-such-conversation'")
    status, _ = api_request(info, "GET", "/conversations/no-such-conversation")
    assert status == 404


def test_a_conversation_is_continued_only_in_its_own_lobby(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    elsewhere = f"{lobby_name}-b"
    create_lobby_with(settings, elsewhere)
    started = user.post(lobby_name, "here")
    body = json.dumps({"text": "there", "conversation_id": started["conversation_id"]}).encode()
    status, answer = api_request(info, "POST", f"/lobbies/{elsewhere}/messages", body)
    assert status == 422
    assert f"post to /lobbies/{lobby_name}/messages" in answer["error"]
    assert len(user.conversation(started["conversation_id"])["messages"]) == 1
