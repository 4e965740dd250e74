"""The coder agent: a specification, or the checker's feedback, becomes Python code.

Round n+1 sees the specification, the tests if any, its previous code, that code's execution
result and the checker's feedback. A `final` verdict is not answered: the checker ends the
conversation with it.
"""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.agents.coding import (
    CODE_CORRECTION,
    budget_left,
    extract_code,
    finish_failed,
    latest_code,
    spec_of,
    task_of,
)
from agentlobby.errors import ModelOutputError
from agentlobby.messages import (
    CodeContent,
    Envelope,
    ExecutionResultContent,
    SpecContent,
    VerdictContent,
)

SYSTEM_PROMPT = (
    "You are a careful Python programmer. Write one complete, runnable Python 3 program for "
    "the specification, using only the standard library. Answer with exactly one ```python "
    "code block. If tests are given, they run right after your code in the same file, so "
    "define what they use at module level and do not read from stdin."
)


def _request(spec: str, tests: str | None, transcript: list[Envelope]) -> list[dict[str, str]]:
    prompt = f"Specification:\n{spec}"
    if tests:
        prompt += f"\n\nThese tests must pass when appended to your program:\n```python\n{tests}```"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    results = {
        m.content.code_id: m.content
        for m in transcript
        if isinstance(m.content, ExecutionResultContent)
    }
    verdicts = {
        m.content.round: m.content for m in transcript if isinstance(m.content, VerdictContent)
    }
    for message in transcript:
        code = message.content
        if not isinstance(code, CodeContent):
            continue
        messages.append({"role": "assistant", "content": f"```python\n{code.source}```"})
        result = results.get(message.id)
        verdict = verdicts.get(code.round)
        feedback = f"Round {code.round} failed."
        if result is not None:
            feedback += (
                f"\nExit code: {result.exit_code}; stopped: {result.reason or 'no'}"
                f"\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
            )
        if verdict is not None:
            feedback += f"\nReviewer feedback: {verdict.feedback}"
        messages.append({"role": "user", "content": feedback + "\nFix the program."})
    return messages


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    content = message.content
    if isinstance(content, VerdictContent) and (content.passed or content.final):
        return []
    transcript = ctx.transcript(message.conversation_id)
    if ctx.lifecycle.is_over(message.conversation_id):
        return []
    if not any(isinstance(m.content, SpecContent) for m in transcript):
        return []
    previous = latest_code(transcript)
    round_number = previous.round + 1 if previous else 1
    if isinstance(content, SpecContent) and previous is not None:
        return []  # the spec was already coded; this is a stale duplicate
    task = task_of(transcript)
    if reason := budget_left(task, transcript, ctx):
        return finish_failed(message, ctx, reason, transcript)
    try:
        parsed = ctx.model.complete_parsed(
            _request(spec_of(transcript), task.tests, transcript), extract_code, CODE_CORRECTION
        )
    except ModelOutputError as exc:
        return finish_failed(message, ctx, str(exc), transcript, exc.usage)  # type: ignore[arg-type]
    code = CodeContent(source=parsed.value, round=round_number, text=f"round {round_number}")
    return [Outgoing(content=code, usage=parsed.usage)]


AGENT = AgentSpec(
    name="coder",
    description="Writes Python code from a specification and the checker's feedback.",
    listens_to=frozenset({"spec", "verdict"}),
    handle=handle,
    default_lobbies=("coding",),
    exclusive=True,
)
