"""Helpers for the coding-loop tests: tasks, scripts for the model server, its stats, waiting.

Plain functions, no fixtures: each test says which script it plays and what it expects.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

from agentlobby.config import DEFAULT_MODEL
from agentlobby.lifecycle import TERMINAL
from local_emulator.model_server.script import Script
from local_emulator.stack import Stack
from tests.support.paths import REPO
from tests.support.user import JsonUser
from tests.support.waiting import wait_for

TASK_TIMEOUT_S = 60.0
MODEL_AGENTS = ("vision", "coder", "checker")
SETTLE_S = 2.0  # long enough for a push hop and a handler: what would come has come by then
IMAGE = REPO / "local_emulator" / "demo_assets" / "checkerboard.png"

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nprint('tests passed')\n"
GOOD_ADD = "def add(a, b):\n    return a + b\n"
BAD_ADD = "def add(a, b):\n    return a - b\n"
PASSED_ROUND_ONE = [
    ("user", "task"),
    ("vision", "spec"),
    ("coder", "code"),
    ("interpreter", "execution-result"),
    ("checker", "verdict"),
    ("checker", "result"),
]
FAILED_THEN_PASSED = [
    ("user", "task"),
    ("vision", "spec"),
    ("coder", "code"),
    ("interpreter", "execution-result"),
    ("checker", "verdict"),
    ("coder", "code"),
    ("interpreter", "execution-result"),
    ("checker", "verdict"),
    ("checker", "result"),
]


FEEDBACK = "add subtracts b from a; it must return a + b"


def two_round_rules(tok: str) -> tuple[dict[str, Any], ...]:
    """The add task's script that fails its tests in round 1 (the checker's feedback is
    FEEDBACK) and passes in round 2; usages 40+12, 70+9 and 90+12."""
    return (
        {
            # Answers only a request that carries the checker's feedback.
            "agent": "coder",
            "match": rf"(?s){tok}.*Round 1 failed.*Reviewer feedback: {re.escape(FEEDBACK)}",
            "replies": [reply(python_block(GOOD_ADD), 90, 12)],
        },
        {"agent": "coder", "match": tok, "replies": [reply(python_block(BAD_ADD), 40, 12)]},
        {"agent": "checker", "match": tok, "replies": [reply(FEEDBACK, 70, 9)]},
    )


def add_task(tok: str) -> str:
    return f"Write add(a, b) that returns the sum of two numbers. [{tok}]"


def token() -> str:
    """A word no other test's task contains, so one test's rules never answer another's."""
    return f"tok{secrets.token_hex(5)}"


def python_block(source: str, before: str = "Here is the program.") -> str:
    return f"{before}\n\n```python\n{source}```\n"


def reply(content: str, prompt: int, completion: int, **extra: Any) -> dict[str, Any]:
    """A scripted reply with forced token counts, so usage assertions are exact."""
    return {
        "content": content,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        **extra,
    }


def play(stack: Stack, *rules: dict[str, Any]) -> None:
    """Give the model server a fresh script (its counters start again from zero)."""
    server: Any = stack.model_server
    server.load_script(Script.from_dict({"rules": list(rules)}, source="test script"))


def run_task(
    stack: Stack, user: JsonUser, text: str, *rules: dict[str, Any], **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Play `rules`, post `text` as a task to the coding lobby and wait for its end: what the
    post answered, and the conversation's final view."""
    play(stack, *rules)
    posted = user.post("coding", text, **fields)
    return posted, finished(user, posted["conversation_id"])


def run_add_task(
    stack: Stack, user: JsonUser, tok: str, *rules: dict[str, Any], **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`run_task` for the add task marked `tok`, with its tests unless `fields` say otherwise."""
    return run_task(stack, user, add_task(tok), *rules, **{"tests": ADD_TESTS, **fields})


def model_stats(stack: Stack) -> dict[str, Any]:
    """What GET /_stats of the model server answers."""
    server: Any = stack.model_server
    base = str(server.url).removesuffix("/v1")
    with urllib.request.urlopen(f"{base}/_stats", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def requests_of(stats: dict[str, Any], agent: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = stats["agents"].get(agent, {}).get("received", [])
    return received


def assert_every_request_named(stats: dict[str, Any]) -> None:
    """Every model request carried X-Agentlobby-Agent with one of the coding agents' names."""
    for entry in stats["received"]:
        assert entry["header"] in MODEL_AGENTS, entry
        assert entry["agent"] == entry["header"], entry
    assert "" not in stats["agents"], "some model requests had no X-Agentlobby-Agent header"


def named_stats(stack: Stack) -> dict[str, Any]:
    """The model server's stats, once checked that every request named its agent."""
    stats = model_stats(stack)
    assert_every_request_named(stats)
    return stats


def finished(user: JsonUser, conversation_id: str, timeout_s: float = TASK_TIMEOUT_S) -> Any:
    """The conversation view once it reached a terminal status."""

    def terminal() -> dict[str, Any] | None:
        view = user.conversation(conversation_id)
        return view if view["status"] in TERMINAL else None

    return wait_for(terminal, timeout_s, interval_s=0.2)


def kinds(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["sender"], m["kind"]) for m in view["messages"]]


def of_kind(view: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in view["messages"] if m["kind"] == kind]


def usage(prompt: int, completion: int, model: str = DEFAULT_MODEL) -> dict[str, int | str]:
    """A message's usage as the view shows it: the stack's agents ask for the default model."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "model": model}


def assert_usage_adds_up(view: dict[str, Any]) -> None:
    """The conversation's usage is the sum of its messages' usage, and its total is the sum."""
    used = [m["usage"] for m in view["messages"] if m["usage"]]
    prompt = sum(u["prompt_tokens"] for u in used)
    completion = sum(u["completion_tokens"] for u in used)
    assert view["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def handled_count(stack: Stack, agent: str, kind: str, conversation_id: str) -> int:
    """How often `agent` ran its handler on a `kind` message of a conversation, from its log."""
    path = Path(stack.log_dir) / f"function-{agent}.log"
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines are not JSON
        if (
            isinstance(record, dict)
            and record.get("conversation_id") == conversation_id
            and str(record.get("message", "")).startswith(f"handling {kind} from ")
        ):
            count += 1
    return count


def settle() -> None:
    time.sleep(SETTLE_S)
