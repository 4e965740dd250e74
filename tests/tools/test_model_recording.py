"""Recording a model's answers and replaying the recording offline.

The model server in record mode forwards every request upstream and writes what it heard as a
script. The upstream here is a second offline model server: it stands in for OpenAI on
loopback. What matters is that the recording alone reproduces the answers, and a whole coding
conversation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest

from agentlobby.errors import ConfigError
from agentlobby_cli.demo import FIZZBUZZ_TASK, FIZZBUZZ_TESTS
from local_emulator.model_server.server import ModelServer, Script, load_script_file
from local_emulator.stack import Stack
from tests.support.coding import finished
from tests.support.model_server import ask, client
from tests.support.paths import REPO
from tests.support.user import JsonUser

DEMO_SCRIPT = REPO / "local_emulator" / "scripts" / "demo.json"


def run_task(stack: Stack) -> dict[str, Any]:
    """Post the demo's task to the stack's coding lobby; the conversation once it ended."""
    assert stack.info is not None
    user = JsonUser.of(stack.info)
    posted = user.post("coding", FIZZBUZZ_TASK, tests=FIZZBUZZ_TESTS)
    result: dict[str, Any] = finished(user, posted["conversation_id"], timeout_s=90)
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


def test_record_mode_forwards_and_writes_a_replayable_script(tmp_path: Path) -> None:
    out = tmp_path / "recorded.json"
    upstream_script = Script.from_dict(
        {
            "rules": [
                {"agent": "coder", "match": "(?i)sort", "replies": ["sorted(xs)"]},
                {"agent": "reviewer", "match": "sorted", "replies": [{"status": 429}, "LGTM"]},
            ]
        }
    )
    question = "Sort a list (ascending) [3, 1, 2] please. " + "Be quick. " * 10
    with (
        ModelServer(upstream_script) as upstream,
        ModelServer(record_to=out, upstream=upstream.url) as recorder,
    ):
        with client(recorder, "coder") as coder, client(recorder, "reviewer", retries=1) as rev:
            recorded = [ask(coder, question), ask(rev, "review: sorted(xs)")]
        assert upstream.stats()["agents"]["reviewer"]["requests"] == 2  # the 429 was relayed
        assert recorder.stats()["requests"] == 3
    assert recorded == ["sorted(xs)", "LGTM"]
    rules = json.loads(out.read_text())["rules"]
    assert [r["agent"] for r in rules] == ["coder", "reviewer"]
    assert rules[0]["match"] == re.escape(question[:60])
    assert re.search(rules[0]["match"], question)
    assert rules[1]["replies"] == [
        {"content": "LGTM", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    ]

    with ModelServer(load_script_file(out)) as replay:
        with client(replay, "coder") as coder, client(replay, "reviewer") as reviewer:
            replayed = [ask(coder, question), ask(reviewer, "review: sorted(xs)")]
        assert replayed == recorded
        assert replay.stats()["unused_replies"] == []


def test_record_mode_extends_an_existing_recording(tmp_path: Path) -> None:
    out = tmp_path / "recorded.json"
    out.write_text(json.dumps({"rules": [{"match": "earlier", "replies": ["kept"]}]}))
    upstream_script = Script.from_dict({"rules": [{"match": "", "replies": ["new"]}]})
    with (
        ModelServer(upstream_script) as upstream,
        ModelServer(record_to=out, upstream=upstream.url) as recorder,
        client(recorder) as model,
    ):
        assert ask(model, "later") == "new"
    rules = load_script_file(out).rules
    assert [rule.match.pattern for rule in rules] == ["earlier", "later"]


def test_record_mode_relays_an_unreachable_upstream_as_502(tmp_path: Path) -> None:
    with ModelServer() as gone:
        dead_url = gone.url
    with (
        ModelServer(record_to=tmp_path / "out.json", upstream=dead_url) as recorder,
        client(recorder) as model,
        pytest.raises(openai.InternalServerError, match="did not answer") as caught,
    ):
        ask(model, "hello")
    assert caught.value.status_code == 502
    assert not (tmp_path / "out.json").exists()


def test_record_mode_and_a_script_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either a script or record_to"):
        ModelServer(Script(), record_to=tmp_path / "out.json")
    with pytest.raises(ConfigError, match="also give record_to"):
        ModelServer(upstream="http://127.0.0.1:9/v1")
