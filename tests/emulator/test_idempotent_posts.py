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
