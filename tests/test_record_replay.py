"""Record a coding conversation against a "real" model, then replay the recording offline.

The upstream here is a second offline model server playing the demo script: it stands in for
OpenAI on loopback. What matters is that the recording alone reproduces the conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentlobby_cli.client import UserClient
from agentlobby_cli.demo import FIZZBUZZ_TASK, FIZZBUZZ_TESTS
from local_emulator.model_server.server import ModelServer, load_script_file
from local_emulator.stack import Stack
from tests.conftest import JsonUser, wait_for

DEMO_SCRIPT = Path(__file__).resolve().parent.parent / "local_emulator" / "scripts" / "demo.json"


def run_task(stack: Stack) -> dict[str, Any]:
    assert stack.info is not None
    user = JsonUser(UserClient(stack.info.user_url, stack.info.api_token))
    posted = user.post("coding", FIZZBUZZ_TASK, tests=FIZZBUZZ_TESTS)

    def finished() -> dict[str, Any] | None:
        state = user.conversation(posted["conversation_id"])
        return state if state["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = wait_for(finished, timeout_s=90)
    return result


def test_a_recorded_run_replays_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = tmp_path / "recorded.json"
    with ModelServer(load_script_file(DEMO_SCRIPT)) as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.url)
        monkeypatch.setenv("OPENAI_API_KEY", "upstream-key")
        with Stack(port_base=0, record_model_to=recording, log_dir=tmp_path / "rec") as stack:
            recorded = run_task(stack)
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")

    assert recorded["status"] == "succeeded"
    rules = json.loads(recording.read_text())["rules"]
    assert {rule["agent"] for rule in rules} == {"coder", "checker"}

    with Stack(port_base=0, model_script=recording, log_dir=tmp_path / "replay") as stack:
        replayed = run_task(stack)
    assert replayed["status"] == "succeeded"
    assert replayed["rounds"] == recorded["rounds"] == 2
    assert replayed["final_code"] == recorded["final_code"]
    assert replayed["usage"] == recorded["usage"]
