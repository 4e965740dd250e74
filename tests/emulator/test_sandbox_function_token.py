"""The stack's sandbox function over HTTP: how the interpreter reaches it, locally as in the
cloud, and only with the sandbox's token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from local_emulator.stack import Stack


def call(url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Agentlobby-Sandbox-Token"] = token
    request = urllib.request.Request(
        url + "/run", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_stacks_sandbox_function_wants_its_token(stack: Stack) -> None:
    url = stack.url("sandbox")
    for token in (None, "wrong"):
        status, body = call(url, {"source": "print('hi')"}, token=token)
        assert status == 401
        assert "x-agentlobby-sandbox-token" in body["error"]
