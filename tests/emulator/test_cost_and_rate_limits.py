"""Cost, cost budgets and rate limits on the real emulators, as a user sees them.

Cost budgets and the view's cost run on the session stack's own agents (their price table is
the default one). The post limit runs on a user function of its own, started with the limit
in its environment; the model limit runs the real ModelClient from several threads (as several
instances would) against a model server that notes when each request arrived.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agentlobby.config import DEFAULT_MODEL, load_settings
from agentlobby.cost import cost_of, load_prices
from agentlobby.messages import parse_envelope
from agentlobby.model import ModelClient
from agentlobby.store.rate_limits import RateWindows
from local_emulator.model_server.script import Script
from local_emulator.model_server.server import Answer, ModelServer
from local_emulator.stack import FUNCTIONS_DIR, Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import cli_ok
from tests.support.coding import (
    GOOD_ADD,
    PASSED_ROUND_ONE,
    add_task,
    kinds,
    named_stats,
    python_block,
    reply,
    requests_of,
    run_add_task,
    run_task,
    token,
)
from tests.support.lobbies import create_lobby_with, function_server, new_lobby_name, settings_for
from tests.support.user import JsonUser

PRICE = load_prices({}).prices[DEFAULT_MODEL]


def expected_usd(prompt: int, completion: int) -> float:
    return (prompt * PRICE.input_per_million + completion * PRICE.output_per_million) / 1e6


def test_the_view_prices_each_agents_model_use_with_the_table(stack: Stack, user: JsonUser) -> None:
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 4000, 1200)]},
    )
    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    coder_usd = expected_usd(4000, 1200)
    assert view["cost"] == {
        "total_usd": pytest.approx(coder_usd),
        "by_agent": {"coder": pytest.approx(coder_usd)},  # no other agent used the model
        "unpriced_models": [],
    }
    assert view["cost"]["total_usd"] > 0
    # The same figure from the transcript by the pure function the CLI and the trace use.
    transcript = [_envelope(view, m) for m in view["messages"]]
    assert cost_of(transcript, load_prices({})).total_usd == view["cost"]["total_usd"]


def _envelope(view: dict[str, Any], m: dict[str, Any]) -> Any:
    """A transcript entry of the view back as the envelope it was stored as."""
    keys = ("id", "sender", "lobby", "parent_id", "hops", "created_at", "content", "usage")
    return parse_envelope({"conversation_id": view["conversation_id"], **{k: m[k] for k in keys}})


def test_a_spent_cost_budget_fails_the_task_and_no_model_call_follows(
    stack: Stack, user: JsonUser
) -> None:
    """The coder's one call spends the tiny budget; the checker, which would ask the model for
    a verdict (no tests), ends the conversation instead."""
    tok = token()
    _, view = run_task(
        stack,
        user,
        add_task(tok),
        {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 1000, 100)]},
        {"agent": "checker", "match": tok, "replies": ["looks right"]},
        cost_budget=1e-6,
    )
    assert view["status"] == "failed"
    reason = view["reason"]
    assert reason.startswith("cost budget spent: $0.00021 used of $0.000001"), reason
    assert kinds(view) == [*PASSED_ROUND_ONE[:4], ("checker", "result")]
    assert view["cost"]["total_usd"] == pytest.approx(expected_usd(1000, 100))
    stats = named_stats(stack)
    assert len(requests_of(stats, "coder")) == 1
    assert requests_of(stats, "checker") == []  # the call the budget forbade was not made


def test_a_corrective_retry_past_the_budget_is_not_made(stack: Stack, user: JsonUser) -> None:
    """The coder's first answer has no code; asking again would pass the budget the first
    answer spent, so the call is refused before it reaches the model."""
    tok = token()
    _, view = run_task(
        stack,
        user,
        add_task(tok),
        {
            "agent": "coder",
            "match": tok,
            "replies": [reply("no code, sorry", 1000, 100), reply(python_block(GOOD_ADD), 10, 10)],
        },
        cost_budget=1e-6,
    )
    assert view["status"] == "failed"
    assert view["reason"].startswith("cost budget spent"), view["reason"]
    assert "coder's next model call was not made" in view["reason"]
    stats = named_stats(stack)
    assert len(requests_of(stats, "coder")) == 1
    assert stats["unused_replies"] != []  # the second reply was never asked for


def test_a_budget_that_is_not_reached_changes_nothing(stack: Stack, user: JsonUser) -> None:
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 40, 12)]},
        cost_budget=0.5,
    )
    assert view["status"] == "succeeded", view["reason"]
    assert view["messages"][0]["content"]["cost_budget"] == 0.5


def _post(url: str, token_: str, lobby: str, text: str) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(
        f"{url}/lobbies/{lobby}/messages",
        data=json.dumps({"text": text}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token_}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _get(url: str, path: str, token_: str) -> int:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token_}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return int(response.status)


def _early_in_a_window(window_s: float) -> None:
    """Start a burst in the first quarter of a window, so the burst is not split by its end."""
    while time.time() % window_s > window_s / 4:
        time.sleep(0.05)


def test_the_post_limit_answers_429_with_retry_after_and_a_later_post_succeeds(
    info: StackInfo, tmp_path: Path
) -> None:
    window_s = 8.0
    settings = settings_for(info)
    lobby = new_lobby_name()
    create_lobby_with(settings, lobby)  # no members: posts are stored and published, no more
    env = {
        "AGENTLOBBY_PROJECT": info.project,
        "AGENTLOBBY_API_TOKEN": info.api_token,
        "AGENTLOBBY_POST_RATE_LIMIT": "2",
        "AGENTLOBBY_RATE_WINDOW_S": str(window_s),
    }
    with function_server(
        "user", info, tmp_path / "logs", source=FUNCTIONS_DIR / "main.py", **env
    ) as url:
        _early_in_a_window(window_s)
        answers = [_post(url, info.api_token, lobby, f"post {i}") for i in range(3)]
        assert [status for status, _, _ in answers[:2]] == [202, 202]
        status, headers, body = answers[2]
        assert status == 429, body
        wait = int(headers["Retry-After"])
        assert 1 <= wait <= window_s
        assert "AGENTLOBBY_POST_RATE_LIMIT" in body["error"] and "retry in" in body["error"]
        # Reads and health are not limited.
        conversation = answers[0][2]["conversation_id"]
        assert _get(url, f"/conversations/{conversation}", info.api_token) == 200
        assert _get(url, "/healthz", info.api_token) == 200
        time.sleep(wait)  # what a client does with Retry-After
        status, _, body = _post(url, info.api_token, lobby, "after the wait")
        assert status == 202, body
    reported = [r for r in RateWindows(info.project).reported() if r.what == "posts"]
    assert reported and reported[0].limits == {"posts_per_minute": 2, "window_s": window_s}
    # The token itself is stored nowhere: windows are kept under its digest.
    from agentlobby.store.clients import firestore_client

    ids = [
        doc.id
        for doc in firestore_client(info.project).collection("post_rate_limits").list_documents()
    ]
    assert ids and all(info.api_token not in doc_id for doc_id in ids)


class TimedModelServer(ModelServer):
    """The offline model server, noting the time each chat request arrived."""

    def __init__(self, script: Script) -> None:
        super().__init__(script, port=0)
        self.arrivals: list[float] = []

    def _chat(self, body: bytes, headers: dict[str, str]) -> Answer:
        self.arrivals.append(time.time())
        return super()._chat(body, headers)


def test_a_model_rate_limit_makes_a_burst_queue_across_instances(
    info: StackInfo, cli_env: dict[str, str]
) -> None:
    """RPM 2, four calls at once from four clients: two go in each window, all four finish,
    and `agentlobby agents` shows the limit under the agent that called."""
    window_s, calls = 4.0, 4
    model = f"rate-test-{token()}"  # a model of its own: fresh windows, no other test's calls
    script = Script.from_dict({"rules": [{"match": "", "replies": ["ok"] * calls}]})
    with TimedModelServer(script) as server:
        env = {
            "AGENTLOBBY_PROJECT": info.project,
            **info.client_environment(),
            "OPENAI_BASE_URL": server.url,
            "OPENAI_API_KEY": "offline",
            "AGENTLOBBY_MODEL": model,
            "AGENTLOBBY_MODEL_RATE_LIMITS": json.dumps({model: {"requests_per_minute": 2}}),
            "AGENTLOBBY_RATE_WINDOW_S": str(window_s),
        }
        settings = load_settings(env)

        def call(i: int) -> str:
            client = ModelClient.for_agent("checker", settings)  # its own client: an instance
            return client.complete([{"role": "user", "content": f"call {i}"}]).text

        _early_in_a_window(window_s)
        with concurrent.futures.ThreadPoolExecutor(calls) as pool:
            answers = list(pool.map(call, range(calls)))
        arrivals = list(server.arrivals)

    assert answers == ["ok"] * calls  # every call finished
    per_window = {}
    for t in arrivals:
        per_window[int(t // window_s)] = per_window.get(int(t // window_s), 0) + 1
    assert sorted(per_window.values()) == [2, 2], per_window  # queued, never more than 2
    first, second = sorted(per_window)
    assert second == first + 1  # the waiters went in the very next window

    out = cli_ok(cli_env, "agents")
    assert f"rate limit of {model} = 2 requests per 4s" in out, out
