"""Where a conversation stands, derived from its messages: what `watch` shows beside them.

Who is working now follows from the last message and the lobby's members (the registry's
`listens_to`): every member that listens to the last message's kind, other than its sender,
is working on it. In the coding lobby that gives

    task, text        -> vision         spec -> coder         code -> interpreter
    execution-result  -> checker        verdict (fail) -> coder (the next round)

A final verdict (passed, or the last round failed) is followed by the checker's own `result`,
so the checker is still working; after a `result`, or once the conversation is over, nobody is.

The round is the latest code's round, or the next one while the coder answers a failing
verdict (1 before any code). Its maximum is the task's own `max_rounds`, else the checker's
registry setting, else AGENTLOBBY_MAX_ROUNDS as this machine reads it (agents/coding.py
max_rounds has the same order). Elapsed time runs from the first message's creation; tokens
are the sum of the messages' usage. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agentlobby.api.schema import MessageView
from agentlobby.cost import usd
from agentlobby.lifecycle import is_over
from agentlobby.messages import CodeContent, ExecutionResultContent, TaskContent, VerdictContent


@dataclass(frozen=True)
class Progress:
    """A conversation at one moment, as the status line shows it."""

    status: str
    working: tuple[str, ...]
    round: int | None  # None: not a coding task
    max_rounds: int | None
    elapsed_s: float
    tokens: int
    cost_usd: float | None
    code: CodeContent | None
    result: ExecutionResultContent | None  # the run of `code`, once it came back

    def key(self) -> tuple[object, ...]:
        """What changes as the work moves on (not the clock): plain output prints a line per key."""
        ran = self.result.exit_code if self.result else None
        return (self.status, self.working, self.round, ran)


def working_agents(last: MessageView | None, members: Mapping[str, frozenset[str]]) -> list[str]:
    if last is None or last.kind == "result":
        return []
    if isinstance(last.content, VerdictContent) and (last.content.passed or last.content.final):
        return [last.sender]  # its result comes next
    return sorted(a for a, kinds in members.items() if last.kind in kinds and a != last.sender)


def _parsed(stamp: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def progress_of(
    messages: Sequence[MessageView],
    status: str,
    members: Mapping[str, frozenset[str]],
    default_max_rounds: int | None,
    now: datetime,
    cost_usd: float | None = None,
) -> Progress:
    """The progress of a conversation whose messages so far are `messages` (in order)."""
    last = messages[-1] if messages else None
    over = is_over(status)
    codes = [m.content for m in messages if isinstance(m.content, CodeContent)]
    code = codes[-1] if codes else None
    results = [m.content for m in messages if isinstance(m.content, ExecutionResultContent)]
    result = results[-1] if results and code and results[-1].round == code.round else None
    task = next((m.content for m in messages if isinstance(m.content, TaskContent)), None)
    coding = task is not None or code is not None
    current: int | None = None
    if coding:
        current = code.round if code else 1
        verdict = last.content if last is not None else None
        if not over and isinstance(verdict, VerdictContent) and not verdict.final:
            current += 1  # the coder answers the feedback with the next round
    first = _parsed(messages[0].created_at) if messages else None
    end = _parsed(messages[-1].created_at) if over and messages else now
    elapsed = max(0.0, (end - first).total_seconds()) if first and end else 0.0
    return Progress(
        status=status,
        working=() if over else tuple(working_agents(last, members)),
        round=current,
        max_rounds=(task.max_rounds if task and task.max_rounds else default_max_rounds)
        if coding
        else None,
        elapsed_s=elapsed,
        tokens=sum(m.usage.prompt_tokens + m.usage.completion_tokens for m in messages if m.usage),
        cost_usd=cost_usd,
        code=code,
        result=result,
    )


def status_text(p: Progress) -> str:
    """One line: who works, the round, time, tokens, cost, and the latest code's run."""
    if is_over(p.status):
        parts = [p.status]
    elif p.working:
        parts = [f"{', '.join(p.working)} working"]
    else:
        parts = [f"{p.status}, waiting"]
    if p.round is not None:
        parts.append(f"round {p.round}/{p.max_rounds}" if p.max_rounds else f"round {p.round}")
    parts.append(f"{p.elapsed_s:.1f}s")
    parts.append(f"{p.tokens} tokens")
    if p.cost_usd is not None:
        parts.append(usd(p.cost_usd))
    if p.code is not None:
        lines = len(p.code.source.splitlines())
        run = "running" if p.result is None else _ran(p.result)
        parts.append(f"code round {p.code.round} ({lines} lines): {run}")
    return " | ".join(parts)


def _ran(result: ExecutionResultContent) -> str:
    why = f" ({result.reason})" if result.reason else ""
    return f"exit {result.exit_code}{why}"
