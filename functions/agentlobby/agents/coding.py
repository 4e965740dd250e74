"""What the coding agents share: the task of a conversation, its limits, and how it ends.

A coding conversation starts with one user message (a `task`, or plain `text`); every later
step is read back from the transcript, so agents keep no state of their own between deliveries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentlobby.agents import AgentContext, Outgoing
from agentlobby.cost import cost_of, usd
from agentlobby.errors import InvalidMessage
from agentlobby.messages import (
    USER_SENDER,
    CodeContent,
    Envelope,
    ResultContent,
    SpecContent,
    TaskContent,
    TaskImage,
    Usage,
    total_usage,
)

# Every fenced block, whatever its language, so a block's closing fence is never taken for
# the opening fence of the next one.
_FENCED_BLOCK = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)```", re.DOTALL)
PYTHON_TAGS = frozenset({"", "python", "py", "python3"})
CODE_CORRECTION = (
    "Your answer must contain the complete program in exactly one ```python code block, "
    "with nothing omitted. Answer again."
)
CHECKER_AGENT = "checker"


@dataclass(frozen=True)
class Task:
    """The user's request, whichever content kind it came as."""

    text: str
    tests: str | None
    image: TaskImage | None
    max_rounds: int | None
    token_budget: int | None
    cost_budget: float | None = None


def task_of(transcript: list[Envelope]) -> Task:
    for message in transcript:
        if message.sender != USER_SENDER:
            continue
        content = message.content
        if isinstance(content, TaskContent):
            return Task(
                content.text,
                content.tests,
                content.image,
                content.max_rounds,
                content.token_budget,
                content.cost_budget,
            )
        text = message.text()
        if text:
            return Task(text, None, None, None, None)
    raise InvalidMessage("the conversation has no task from the user to work on")


def max_rounds(task: Task, ctx: AgentContext) -> int:
    """Per task first, then the checker's registry settings, then AGENTLOBBY_MAX_ROUNDS."""
    if task.max_rounds is not None:
        return task.max_rounds
    configured = ctx.agent_setting(CHECKER_AGENT, "max_rounds")
    return (
        int(configured)
        if isinstance(configured, int | str) and str(configured).isdigit()
        else ctx.settings.max_rounds
    )


def budget_left(task: Task, transcript: list[Envelope], ctx: AgentContext) -> str | None:
    """None while tokens and money remain; otherwise the reason the conversation must stop."""
    budget = task.token_budget or ctx.settings.token_budget
    used = total_usage(transcript).total_tokens
    if used >= budget:
        return f"token budget spent: {used} tokens used of {budget}"
    cost_budget = task.cost_budget or ctx.settings.cost_budget
    if cost_budget is not None:
        spent = cost_of(transcript, ctx.settings.prices).total_usd
        if spent >= cost_budget:
            return f"cost budget spent: {usd(spent)} used of {usd(cost_budget)}"
    return None


def extract_code(answer: str) -> str:
    """The first python (or untagged) code block of an answer; ValueError says what was missing."""
    if not answer.strip():
        raise ValueError("the answer was empty")
    blocks = (m for m in _FENCED_BLOCK.finditer(answer) if m.group(1).lower() in PYTHON_TAGS)
    match = next(blocks, None)
    if match is None:
        raise ValueError("the answer had no ```python code block")
    code = match.group(2).strip("\n")
    if not code.strip():
        raise ValueError("the code block was empty")
    return code + "\n"


def spec_of(transcript: list[Envelope]) -> str:
    """The specification vision wrote, or the task's own text before there is one."""
    specs = [m.content.text for m in transcript if isinstance(m.content, SpecContent)]
    return specs[0] if specs else task_of(transcript).text


def latest_code(transcript: list[Envelope]) -> CodeContent | None:
    codes = [m.content for m in transcript if isinstance(m.content, CodeContent)]
    return codes[-1] if codes else None


def finish_failed(
    message: Envelope,
    ctx: AgentContext,
    reason: str,
    transcript: list[Envelope],
    usage: Usage | None = None,
) -> list[Outgoing]:
    """End the conversation `failed`, telling the user why in a final `result` message."""
    code = latest_code(transcript)
    result = ResultContent(
        status="failed",
        rounds=code.round if code else 0,
        code=code.source if code else None,
        output=None,
        reason=reason,
        text=f"failed: {reason}",
    )
    return [Outgoing(content=result, usage=usage, ends_conversation="failed", reason=reason)]
