"""Hostile HTTP gets a JSON 4xx, never a 5xx: tokens that are not ASCII, JSON nested past the
recursion limit, numbers past their documented bounds. Refused before any backend is reached."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentlobby.api import routes
from agentlobby.config import load_settings
from agentlobby.sandbox.service import handle_run

TOKEN = "right-token"


@pytest.mark.parametrize(
    "authorization", ["Bearer r\u00e9ght-token", "Bearer \u2603", "B\u00e9arer x", "Bearer \udcff"]
)
def test_a_non_ascii_token_is_refused_not_crashed(authorization: str) -> None:
    config = load_settings({"AGENTLOBBY_API_TOKEN": TOKEN, "AGENTLOBBY_SANDBOX_TOKEN": TOKEN})
    headers = {"authorization": authorization, "x-agentlobby-sandbox-token": authorization}
    body, status = routes.handle_request("GET", "/conversations/abc", headers, b"", config)
    assert status == 401 and "bearer token" in body["error"]
    body, status = handle_run("POST", "/run", headers, b"{}", config)
    assert status == 401 and "header" in body["error"]


def refused_post(body: bytes) -> tuple[dict[str, Any], int]:
    """A post that must be refused before any backend is reached (the project has none)."""
    config = load_settings({"AGENTLOBBY_API_TOKEN": TOKEN})
    headers = {"authorization": f"Bearer {TOKEN}"}
    return routes.handle_request("POST", "/lobbies/chat/messages", headers, body, config)


def test_deep_nesting_is_a_422_not_a_recursion_error() -> None:
    body, status = refused_post(b"[" * 5_000 + b"]" * 5_000)
    assert status == 422 and "nested too deeply" in body["error"]


@pytest.mark.parametrize("field", ["token_budget", "max_rounds"])
@pytest.mark.parametrize("value", [9223372036854775808, 10**30, -1, 0])
def test_numbers_out_of_their_documented_bounds_are_422(field: str, value: int) -> None:
    body, status = refused_post(json.dumps({"text": "x", field: value}).encode())
    assert status == 422 and field in body["error"]


def test_a_sandbox_run_with_absurd_limits_is_422() -> None:
    config = load_settings({"AGENTLOBBY_SANDBOX_TOKEN": TOKEN})
    headers = {"x-agentlobby-sandbox-token": TOKEN}
    for extra in ({"timeout_s": 1e309}, {"timeout_s": 10**9}, {"memory_mb": 2**63}):
        request = json.dumps({"source": "print(1)", **extra}).encode()
        body, status = handle_run("POST", "/run", headers, request, config)
        assert status == 422, (extra, body)
