"""One trace per conversation across every function: a two-round coding task, traced on the
local stack (its span collector), read back through the user API and `agentlobby trace`."""

from __future__ import annotations

import itertools
import re
from typing import Any

from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import cli_ok
from tests.support.coding import (
    run_add_task,
    token,
    two_round_rules,
)
from tests.support.user import JsonUser, api_request
from tests.support.waiting import wait_for

# The deliveries that do the work, in causal order: each handles what the one before sent.
HANDLED_CHAIN = [
    ("user", "user posts to coding"),
    ("vision", "vision handles task"),
    ("coder", "coder handles spec"),
    ("interpreter", "interpreter handles code"),
    ("checker", "checker handles execution-result"),
    ("coder", "coder handles verdict"),
    ("interpreter", "interpreter handles code"),
    ("checker", "checker handles execution-result"),
]


def _two_round_task(stack: Stack, user: JsonUser) -> dict[str, Any]:
    tok = token()
    _, view = run_add_task(stack, user, tok, *two_round_rules(tok))
    assert view["status"] == "succeeded", view["reason"]
    return view


def _replied(span: dict[str, Any]) -> bool:
    attributes = span["attributes"]
    return (
        attributes.get("agentlobby.outcome") == "handled" and attributes["agentlobby.replies"] > 0
    )


def _trace_once_complete(info: StackInfo, conversation_id: str) -> dict[str, Any]:
    """The trace, once the last delivery's span reached the collector (each function flushes
    its spans as it answers, which may be just after the conversation shows it ended)."""

    def complete() -> dict[str, Any] | None:
        status, trace = api_request(info, "GET", f"/conversations/{conversation_id}/trace")
        assert status == 200, trace
        handled = [s for s in trace["spans"] if _replied(s)]
        return trace if len(handled) >= len(HANDLED_CHAIN) - 1 else None

    found: dict[str, Any] = wait_for(complete, timeout_s=20)
    return found


def test_a_two_round_task_is_one_trace_with_every_hop_linked_to_its_cause(
    stack: Stack, user: JsonUser, info: StackInfo
) -> None:
    view = _two_round_task(stack, user)
    trace = _trace_once_complete(info, view["conversation_id"])
    spans = trace["spans"]
    by_id = {s["span_id"]: s for s in spans}
    assert re.fullmatch(r"[0-9a-f]{32}", trace["trace_id"])

    # Every hop, once, in causal order, each the child of the span that sent its message.
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["user posts to coding"]
    work = [s for s in spans if _replied(s)]
    chain = [roots[0], *sorted(work, key=lambda s: s["start_unix_nano"])]
    assert [(s["agent"], s["name"]) for s in chain] == HANDLED_CHAIN
    for parent, child in itertools.pairwise(chain):
        assert child["parent_id"] == parent["span_id"], (parent["name"], child["name"])
        assert child["start_unix_nano"] >= parent["start_unix_nano"]
    for span in work:
        assert span["attributes"]["gen_ai.conversation.id"] == view["conversation_id"]
        assert span["status"] == "ok"

    # Model calls: GenAI conventions, under the delivery that made them, with their tokens.
    calls = sorted(
        (s for s in spans if s["name"].startswith("chat ")), key=lambda s: s["start_unix_nano"]
    )
    got = [
        (
            by_id[c["parent_id"]]["name"],
            c["attributes"]["gen_ai.agent.name"],
            c["attributes"]["gen_ai.usage.input_tokens"],
            c["attributes"]["gen_ai.usage.output_tokens"],
        )
        for c in calls
    ]
    assert got == [
        ("coder handles spec", "coder", 40, 12),
        ("checker handles execution-result", "checker", 70, 9),
        ("coder handles verdict", "coder", 90, 12),
    ]
    for call in calls:
        attributes = call["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.conversation.id"] == view["conversation_id"]
        assert call["name"] == f"chat {attributes['gen_ai.request.model']}"
        assert attributes["gen_ai.response.model"]

    # Sandbox runs: under the interpreter's deliveries, round 1 failing its tests, round 2 not.
    runs = sorted(
        (s for s in spans if s["name"] == "sandbox run"), key=lambda s: s["start_unix_nano"]
    )
    assert [by_id[r["parent_id"]]["name"] for r in runs] == ["interpreter handles code"] * 2
    first, second = (r["attributes"] for r in runs)
    assert first["agentlobby.sandbox.exit_code"] != 0
    assert second["agentlobby.sandbox.exit_code"] == 0
    for run in (first, second):
        assert run["agentlobby.sandbox.timed_out"] is False
        assert run["agentlobby.sandbox.isolation"]
        assert run["agentlobby.sandbox.duration_ms"] >= 0

    # Anything else is a delivery that had nothing to do (the coder reading the final verdict)
    # or a duplicate delivery, marked as one, never hidden.
    others = [s for s in spans if s not in chain and s not in calls and s not in runs]
    for span in others:
        attributes = span["attributes"]
        idle = attributes["agentlobby.outcome"] in ("conversation over", "handled")
        assert attributes.get("agentlobby.redelivery") is True or idle, span
        assert attributes.get("agentlobby.replies", 0) == 0, span


def test_agentlobby_trace_prints_the_span_tree(
    stack: Stack, user: JsonUser, info: StackInfo, cli_env: dict[str, str]
) -> None:
    view = _two_round_task(stack, user)
    _trace_once_complete(info, view["conversation_id"])
    out = cli_ok(cli_env, "trace", view["conversation_id"]).splitlines()

    assert out[0].startswith("trace ") and view["conversation_id"] in out[0]
    tree = [line for line in out[1:] if "REDELIVERY" not in line]
    depth = {line.strip().split("  ")[0]: (len(line) - len(line.lstrip())) // 2 for line in tree}
    assert depth["user posts to coding"] == 0
    assert depth["vision handles task"] == 1
    assert depth["coder handles spec"] == 2
    coder_line = next(line for line in tree if "coder handles spec" in line)
    assert "[coder]" in coder_line and "handled" in coder_line
    assert any("chat " in line and "40+12 tokens" in line for line in tree)
    assert any("sandbox run" in line and "exit 0" in line for line in tree)


def test_a_conversation_without_a_trace_says_so(info: StackInfo, cli_env: dict[str, str]) -> None:
    status, answer = api_request(info, "GET", "/conversations/" + "0" * 32 + "/trace")
    assert status == 404, answer
    status, answer = api_request(info, "GET", "/conversations/x/trace", token="wrong")
    assert status == 401, answer
