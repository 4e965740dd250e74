"""Defects found in review, each pinned by the test that showed it, on the real emulators."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from agentlobby.client import UserClient
from agentlobby.stack_state import StackInfo
from tests.conftest import wait_for_messages
from tests.lobby_support import create_lobby_with, settings_for


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
    info: StackInfo, user: UserClient, lobby_name: str
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
