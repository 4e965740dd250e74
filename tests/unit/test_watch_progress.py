"""What `watch` says about a conversation's progress, and how it draws it: in place on a
terminal, as plain lines (no escape codes) anywhere else. No I/O: messages are built here."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from agentlobby.api.schema import MessageView
from agentlobby_cli.live_status import ERASE_LINE, LiveStatus
from agentlobby_cli.progress import progress_of, status_text, working_agents

CODING = {
    "vision": frozenset({"task", "text"}),
    "coder": frozenset({"spec", "verdict"}),
    "interpreter": frozenset({"code"}),
    "checker": frozenset({"execution-result"}),
}
T0 = "2025-01-01T00:00:00+00:00"


def msg(i: int, sender: str, content: dict[str, Any], at: str = T0, **usage: int) -> MessageView:
    return MessageView.model_validate(
        {
            "id": f"m{i}",
            "sender": sender,
            "kind": content["kind"],
            "lobby": "coding",
            "parent_id": None,
            "hops": i,
            "created_at": at,
            "content": content,
            "usage": usage or None,
        }
    )


TASK = msg(0, "user", {"kind": "task", "text": "add", "max_rounds": 4})
SPEC = msg(1, "vision", {"kind": "spec", "text": "spec"}, prompt_tokens=10, completion_tokens=5)
CODE1 = msg(2, "coder", {"kind": "code", "source": "a\nb\n", "round": 1}, completion_tokens=7)
RUN1 = msg(
    3,
    "interpreter",
    {
        "kind": "execution-result",
        "round": 1,
        "code_id": "m2",
        "exit_code": 1,
        "stdout": "",
        "stderr": "AssertionError",
        "timed_out": False,
        "duration_ms": 30,
        "truncated": False,
        "reason": None,
    },
)
FAIL1 = msg(4, "checker", {"kind": "verdict", "round": 1, "passed": False, "feedback": "no"})
PASS = msg(
    4, "checker", {"kind": "verdict", "round": 1, "passed": True, "feedback": "ok", "final": True}
)
NOW = datetime(2025, 1, 1, 0, 0, 12, tzinfo=UTC)


def at(messages: list[MessageView], status: str = "running", **kw: Any) -> Any:
    return progress_of(messages, status, CODING, 3, NOW, **kw)


def test_who_works_follows_the_last_kind_and_the_members_listens_to() -> None:
    assert working_agents(TASK, CODING) == ["vision"]
    assert working_agents(SPEC, CODING) == ["coder"]
    assert working_agents(CODE1, CODING) == ["interpreter"]
    assert working_agents(RUN1, CODING) == ["checker"]
    assert working_agents(FAIL1, CODING) == ["coder"]
    assert working_agents(PASS, CODING) == ["checker"]  # its result is next
    assert working_agents(None, CODING) == []
    # Nobody answers their own message, and nobody listens to a result.
    assert working_agents(msg(9, "vision", {"kind": "text", "text": "hi"}), CODING) == []
    result = {"kind": "result", "status": "succeeded", "rounds": 1, "code": "x", "output": None}
    result["reason"] = None
    assert working_agents(msg(9, "checker", result), CODING) == []


def test_the_round_counts_from_the_code_and_moves_on_after_a_failing_verdict() -> None:
    assert at([TASK]).round == 1
    assert at([TASK, SPEC, CODE1]).round == 1
    assert at([TASK, SPEC, CODE1, RUN1, FAIL1]).round == 2
    assert at([TASK, SPEC, CODE1, RUN1, PASS]).round == 1
    assert at([TASK]).max_rounds == 4  # the task's own max_rounds wins
    plain_task = msg(0, "user", {"kind": "task", "text": "add"})
    assert at([plain_task]).max_rounds == 3


def test_a_chat_has_no_rounds() -> None:
    hello = msg(0, "user", {"kind": "text", "text": "hi"})
    progress = progress_of([hello], "open", {"echo": frozenset({"text"})}, 3, NOW)
    assert progress.round is None and progress.max_rounds is None
    assert progress.working == ("echo",)
    assert "round" not in status_text(progress)


def test_time_tokens_and_the_latest_run_are_shown() -> None:
    later = msg(3, "interpreter", RUN1.content.model_dump(), at="2025-01-01T00:00:05+00:00")
    progress = at([TASK, SPEC, CODE1, later])
    assert progress.elapsed_s == 12.0  # since the first message, the clock still running
    assert progress.tokens == 22
    assert progress.result is not None and progress.result.exit_code == 1
    text = status_text(progress)
    assert text.startswith("checker working | round 1/4 | 12.0s | 22 tokens")
    assert "code round 1 (2 lines): exit 1" in text
    # Once over, the clock stops at the last message, and nobody is working.
    done = at([TASK, SPEC, CODE1, later], status="failed")
    assert done.elapsed_s == 5.0 and done.working == ()
    assert status_text(done).startswith("failed | round 1/4 | 5.0s")


def test_code_not_run_yet_says_so_and_an_older_run_is_not_its_run() -> None:
    code2 = msg(5, "coder", {"kind": "code", "source": "c\n", "round": 2})
    progress = at([TASK, SPEC, CODE1, RUN1, FAIL1, code2])
    assert progress.result is None
    assert "code round 2 (1 lines): running" in status_text(progress)


def test_cost_is_shown_as_dollars_with_the_digits_a_small_cost_needs() -> None:
    assert "$" not in status_text(at([TASK]))
    assert status_text(at([TASK], cost_usd=0.0123)).endswith("| $0.0123")
    assert status_text(at([TASK], cost_usd=0.00021)).endswith("| $0.00021")


def test_plain_output_has_no_escape_codes_and_one_line_per_step() -> None:
    out = io.StringIO()
    live = LiveStatus(out, terminal=False)
    live.update(at([TASK]))
    live.update(at([TASK]))  # the clock alone moved: no new line
    live.message("[vision] spec: spec")
    live.update(at([TASK, SPEC]))
    live.close(at([TASK, SPEC], status="failed"))
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == [
        "-- vision working | round 1/4 | 12.0s | 0 tokens",
        "[vision] spec: spec",
        "-- coder working | round 1/4 | 12.0s | 15 tokens",
        "-- failed | round 1/4 | 0.0s | 15 tokens",
    ]


def test_a_terminal_redraws_the_status_in_place_and_prints_messages_above_it() -> None:
    out = io.StringIO()
    live = LiveStatus(out, terminal=True)
    live.update(at([TASK]))
    live.message("[vision] spec: spec")
    live.update(at([TASK, SPEC]))
    live.close(at([TASK, SPEC], status="succeeded"))
    status1 = "vision working | round 1/4 | 12.0s | 0 tokens"
    assert out.getvalue() == (
        f"{ERASE_LINE}{status1}"
        f"{ERASE_LINE}[vision] spec: spec\n{status1}"
        f"{ERASE_LINE}coder working | round 1/4 | 12.0s | 15 tokens"
        f"{ERASE_LINE}succeeded | round 1/4 | 0.0s | 15 tokens\n"
    )


def test_a_status_from_hostile_text_cannot_move_the_cursor() -> None:
    out = io.StringIO()
    live = LiveStatus(out, terminal=False)
    hello = msg(0, "user", {"kind": "text", "text": "hi"})
    live.update(progress_of([hello], "open", {"ev\x1b[2Jil": frozenset({"text"})}, 3, NOW))
    assert "\x1b" not in out.getvalue()
