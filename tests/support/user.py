"""The user API as a user sees it: typed answers dumped back to JSON, and raw HTTP requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from agentlobby_cli.client import UserClient
from local_emulator.stack_state import StackInfo
from tests.support.waiting import wait_for

STACK_TOKEN = "<the stack's own token>"


class JsonUser:
    """The user API's answers as the JSON a user sees. They go through the CLI's typed client,
    which checks each against the API's models, and are dumped back to JSON for assertions."""

    def __init__(self, client: UserClient) -> None:
        self.client = client

    @classmethod
    def of(cls, info: StackInfo) -> JsonUser:
        """The user of a stack, with its URL and token."""
        return cls(UserClient(info.user_url, info.api_token))

    def post(self, lobby: str, text: str, **fields: Any) -> dict[str, Any]:
        return self.client.post(lobby, text, **fields).model_dump(mode="json")

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        return self.client.conversation(conversation_id).model_dump(mode="json")


def wait_for_messages(
    user: JsonUser, conversation_id: str, count: int, timeout_s: float = 15.0
) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        messages = user.conversation(conversation_id)["messages"]
        return messages if len(messages) >= count else None

    result: list[dict[str, Any]] = wait_for(enough, timeout_s)
    return result


def api_request(
    info: StackInfo,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = STACK_TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One raw request to the user API: (status, JSON answer). Every answer, refusals included,
    must be JSON. `token` None sends no Authorization header."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {info.api_token if token == STACK_TOKEN else token}"
    req = urllib.request.Request(info.user_url + path, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        assert exc.headers.get_content_type() == "application/json", raw[:200]
        return exc.code, json.loads(raw)
