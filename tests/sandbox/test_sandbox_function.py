"""The sandbox function's request handling, in-process: it runs code within its own limits and
refuses bad requests. The stack's sandbox function and its token:
tests/emulator/test_sandbox_function_token.py.
"""

from __future__ import annotations

import json

import pytest

from agentlobby.config import load_settings
from agentlobby.sandbox.service import handle_run


def test_sandbox_function_runs_code_and_caps_limits() -> None:
    config = load_settings({"AGENTLOBBY_SANDBOX_TIMEOUT_S": "2", "AGENTLOBBY_SANDBOX_TOKEN": "t"})
    ok = json.dumps({"source": "import os\nprint(sorted(os.environ))", "timeout_s": 1}).encode()
    body, status = handle_run("POST", "/run", {"x-agentlobby-sandbox-token": "t"}, ok, config)
    assert status == 200
    assert body["exit_code"] == 0
    assert "AGENTLOBBY_SANDBOX_TOKEN" not in body["stdout"]

    slow = json.dumps({"source": "while True: pass", "timeout_s": 60}).encode()
    body, status = handle_run("POST", "/run", {"x-agentlobby-sandbox-token": "t"}, slow, config)
    assert status == 200
    assert body["timed_out"] or body["reason"] in ("timeout", "cpu-time")
    assert body["duration_ms"] < 10_000  # capped at the function's 2 s, not the asked 60 s


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 422),
        (json.dumps({"source": ""}).encode(), 422),
        (json.dumps({"source": "x", "extra": 1}).encode(), 422),
        (json.dumps({"source": "x", "files": {"a.txt": "%%%"}}).encode(), 422),
    ],
)
def test_sandbox_function_rejects_bad_requests(body: bytes, status: int) -> None:
    config = load_settings({})
    answer, got = handle_run("POST", "/run", {}, body, config)
    assert got == status
    assert answer["error"]
