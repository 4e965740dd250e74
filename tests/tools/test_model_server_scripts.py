"""The offline model server playing scripts, driven over real HTTP by the real `openai` client.

One server serves the whole module; each test loads its own script, which resets the counters.
Recording a real model and replaying the recording: tests/tools/test_model_recording.py.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from agentlobby.errors import ConfigError
from local_emulator.model_server.server import ModelServer, Script, load_script_file, main
from tests.support.model_server import MODEL, ask, client
from tests.support.paths import REPO

EXAMPLE = REPO / "local_emulator" / "scripts" / "example.json"
PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


def play(server: ModelServer, *rules: dict[str, Any]) -> ModelServer:
    server.load_script(Script.from_dict({"rules": list(rules)}))
    return server


def get(server: ModelServer, path: str) -> Any:
    root = server.url.removesuffix("/v1")
    with urllib.request.urlopen(root + path, timeout=5) as response:
        return json.load(response)


def post(server: ModelServer, path: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url.removesuffix("/v1") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_rules_are_tried_in_order_and_each_reply_is_used_once(server: ModelServer) -> None:
    play(
        server,
        {"match": "fizz", "replies": ["first", "second"]},
        {"match": "fizz", "replies": ["third"]},
    )
    with client(server) as model:
        assert [ask(model, "write fizzbuzz") for _ in range(3)] == ["first", "second", "third"]
        with pytest.raises(openai.BadRequestError, match="used up"):
            ask(model, "write fizzbuzz")
    assert server.stats()["unused_replies"] == []


def test_the_agent_header_selects_the_rules(server: ModelServer) -> None:
    play(
        server,
        {"agent": "reviewer", "match": "code", "replies": ["APPROVED"]},
        {"agent": "coder", "match": "code", "replies": ["def f(): ..."]},
    )
    with client(server, "coder") as coder, client(server, "reviewer") as reviewer:
        assert ask(coder, "write code") == "def f(): ..."
        assert ask(reviewer, "review code") == "APPROVED"
    stats = server.stats()
    assert stats["agents"]["coder"]["requests"] == 1
    assert stats["agents"]["reviewer"]["received"][0]["header"] == "reviewer"
    assert [r["rule"] for r in stats["received"]] == [1, 0]


def test_the_regex_is_searched_in_every_message(server: ModelServer) -> None:
    play(server, {"match": r"SYSTEM-\d+", "replies": ["seen the system prompt"]})
    messages: Any = [
        {"role": "system", "content": "You are SYSTEM-42."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}]},
    ]
    with client(server) as model:
        answer = model.chat.completions.create(model=MODEL, messages=messages)
    assert answer.choices[0].message.content == "seen the system prompt"


def test_no_rule_is_a_400_naming_the_agent_and_the_last_user_message(server: ModelServer) -> None:
    play(server, {"agent": "reviewer", "match": ".", "replies": ["never for the coder"]})
    long_text = "Please write a function that sorts " + "x" * 200
    with client(server) as model, pytest.raises(openai.BadRequestError) as caught:
        ask(model, "earlier message", long_text)
    assert caught.value.status_code == 400
    message = caught.value.message
    assert "'coder'" in message
    assert long_text[:80] in message
    assert long_text[:81] not in message
    assert server.stats()["unused_replies"][0]["left"] == 1


def test_a_request_without_the_agent_header_only_gets_rules_without_agent(
    server: ModelServer,
) -> None:
    play(server, {"agent": "coder", "match": "", "replies": ["for the coder"]})
    with client(server, agent=None) as model, pytest.raises(openai.BadRequestError) as caught:
        ask(model, "hi")
    assert "without the X-Agentlobby-Agent header" in caught.value.message
    assert server.stats()["received"][0]["header"] is None


def test_an_image_part_is_accepted_and_recorded(server: ModelServer) -> None:
    play(server, {"agent": "coder", "match": "this chart", "replies": ["a rising line"]})
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What does this chart show?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1X1}"}},
            ],
        }
    ]
    with client(server) as model:
        answer = model.chat.completions.create(model=MODEL, messages=messages)
    assert answer.choices[0].message.content == "a rising line"
    (received,) = server.stats()["agents"]["coder"]["received"]
    assert received == {
        "agent": "coder",
        "model": MODEL,
        "header": "coder",
        "has_image": True,
        "last_user_text": "What does this chart show?",
        "status": 200,
        "rule": 0,
    }


def test_a_broken_image_data_url_is_refused(server: ModelServer) -> None:
    play(server, {"match": "", "replies": ["unused"]})
    messages: Any = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}],
        }
    ]
    with client(server) as model, pytest.raises(openai.BadRequestError, match="base64"):
        model.chat.completions.create(model=MODEL, messages=messages)
    assert server.stats()["unused_replies"][0]["left"] == 1


def test_429_and_500_are_retried_by_the_client_until_the_next_reply(server: ModelServer) -> None:
    play(server, {"match": "go", "replies": [{"status": 429}, {"status": 500}, "made it"]})
    with client(server, retries=2) as model:
        assert ask(model, "go") == "made it"
    statuses = [r["status"] for r in server.stats()["received"]]
    assert statuses == [429, 500, 200]


def test_an_error_reply_is_consumed_even_without_retries(server: ModelServer) -> None:
    play(server, {"match": "go", "replies": [{"status": 429, "content": "slow down"}, "ok"]})
    with client(server, retries=0) as model:
        with pytest.raises(openai.RateLimitError, match="slow down"):
            ask(model, "go")
        assert ask(model, "go") == "ok"


def test_usage_counts_a_quarter_of_the_characters(server: ModelServer) -> None:
    play(
        server,
        {"match": "count", "replies": ["abcdefghi"]},
        {"match": "forced", "replies": [{"content": "x", "usage": {"prompt_tokens": 1000}}]},
    )
    system = "You count."  # 10 characters
    user = "count me in"  # 11 characters
    messages: Any = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    with client(server) as model:
        usage = model.chat.completions.create(model=MODEL, messages=messages).usage
        forced = model.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "forced"}]
        ).usage
    assert usage is not None and forced is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (math.ceil(21 / 4), 3)
    assert usage.total_tokens == 9
    assert (forced.prompt_tokens, forced.completion_tokens, forced.total_tokens) == (1000, 1, 1001)


def test_stream_true_is_refused_with_a_clear_400(server: ModelServer) -> None:
    play(server, {"match": "", "replies": ["unused"]})
    with client(server) as model, pytest.raises(openai.BadRequestError, match="stream"):
        model.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )


def test_delayed_replies_overlap_and_in_flight_is_counted(server: ModelServer) -> None:
    play(
        server, {"agent": "coder", "match": "", "replies": [{"delay_ms": 300, "content": "x"}] * 2}
    )
    answers: list[str] = []
    with client(server) as model:
        threads = [threading.Thread(target=lambda: answers.append(ask(model, "hi"))) for _ in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    coder = server.stats()["agents"]["coder"]
    assert answers == ["x", "x"]
    assert (coder["requests"], coder["in_flight"], coder["max_in_flight"]) == (2, 0, 2)


def test_models_health_and_runtime_script_over_http(server: ModelServer) -> None:
    assert get(server, "/healthz")["status"] == "ok"
    assert get(server, "/v1/models")["data"][0]["object"] == "model"
    play(server, {"match": "", "replies": ["old"]})
    with client(server) as model:
        ask(model, "hi")
    assert get(server, "/_stats")["requests"] == 1
    status, body = post(server, "/_script", {"rules": [{"match": "", "replies": ["new"]}]})
    assert (status, body["rules"]) == (200, 1)
    assert get(server, "/_stats")["requests"] == 0
    with client(server) as model:
        assert ask(model, "hi") == "new"
    status, body = post(server, "/_script", {"rules": [{"match": "(", "replies": ["x"]}]})
    assert status == 400
    assert "rules[0].match: bad regex" in body["error"]["message"]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ({"rules": [{"match": "(", "replies": ["x"]}]}, r"rules\[0\]\.match: bad regex '\('"),
        ({"rules": [{"match": "a"}]}, r"rules\[0\]: missing 'replies'"),
        ({"rules": [{"match": "a", "replies": []}]}, r"rules\[0\]\.replies: expected a non-empty"),
        ({"rules": [{"match": "a", "reply": ["x"]}]}, r"rules\[0\]: unknown key 'reply'"),
        ({"rules": [{"replies": [{"text": "x"}]}]}, r"rules\[0\]\.replies\[0\]: unknown key"),
        ({"rules": [{"replies": [{"status": 302}]}]}, r"replies\[0\]\.status: expected 200 or"),
        ({"rules": [{"replies": [{"status": 200}]}]}, r"replies\[0\]: missing 'content'"),
        ({"rules": [{"replies": [{"content": "x", "delay_ms": -1}]}]}, r"delay_ms: expected"),
        ({"rules": [], "rulez": []}, r"unknown key 'rulez'"),
        ([], r"expected a JSON object"),
    ],
)
def test_a_bad_script_names_the_field_at_load(
    tmp_path: Path, script: object, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(script))
    with pytest.raises(ConfigError, match=expected) as caught:
        load_script_file(path)
    assert str(path) in str(caught.value)


def test_a_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_script_file(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": [}')
    with pytest.raises(ConfigError, match=r"not valid JSON .* line 1 column 12"):
        load_script_file(broken)


def test_the_shipped_example_script_replays(server: ModelServer) -> None:
    server.load_script(load_script_file(EXAMPLE))
    with client(server, "coder") as coder, client(server, "reviewer", retries=1) as reviewer:
        code = ask(coder, "Write FizzBuzz in Python")
        assert "def fizzbuzz" in code
        assert ask(reviewer, f"Review this:\n{code}").startswith("APPROVED")


def test_the_cli_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "local_emulator.model_server.server", "--script", str(EXAMPLE)]
    with subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline().strip()
            assert line.startswith("model server listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            headers = {"X-Agentlobby-Agent": "coder"}
            with openai.OpenAI(base_url=url, api_key="x", default_headers=headers) as model:
                assert "def fizzbuzz" in ask(model, "fizzbuzz please")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_the_cli_reports_a_bad_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"match": "[", "replies": ["x"]}]}')
    assert main(["--script", str(bad)]) == 2
    assert "rules[0].match: bad regex" in capsys.readouterr().err
    assert main([]) == 2
    assert "--script FILE" in capsys.readouterr().err
