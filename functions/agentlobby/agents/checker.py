"""The checker agent: judges each execution result and ends the conversation or asks again.

With tests, the sandbox's exit code decides and the model only writes feedback on a failure.
Without tests, the model judges, answering JSON {"passed": bool, "feedback": str}. A pass
ends the conversation `succeeded` with the code and its output; a failure sends feedback to the
coder, until the last allowed round, which ends it `failed`.
"""

from __future__ import annotations

import json
from typing import Literal

from agentlobby.agents import AgentContext, AgentSpec, Outgoing, Setting
from agentlobby.agents.coding import (
    Task,
    budget_left,
    finish_failed,
    latest_code,
    max_rounds,
    spec_of,
    task_of,
)
from agentlobby.errors import ModelOutputError
from agentlobby.messages import (
    Envelope,
    ExecutionResultContent,
    ResultContent,
    Usage,
    VerdictContent,
)

FEEDBACK_PROMPT = (
    "You review a Python program that failed. Given the specification, the code and what "
    "happened when it ran, explain briefly and concretely what is wrong and how to fix it."
)
JUDGE_PROMPT = (
    "You review a Python program against its specification, given its code and what happened "
    'when it ran. Answer only with JSON: {"passed": true or false, "feedback": "..."}.'
)
JUDGE_CORRECTION = 'Answer only with one JSON object: {"passed": true|false, "feedback": "..."}.'


def parse_judgement(answer: str) -> tuple[bool, str]:
    """The first JSON object in the answer, whatever text or fences surround it."""
    decoder = json.JSONDecoder()
    data: object = None
    problem = "the answer had no JSON object"
    for start in (i for i, char in enumerate(answer) if char == "{"):
        try:
            data, _ = decoder.raw_decode(answer, start)
            break
        except json.JSONDecodeError as exc:
            problem = f"the JSON did not parse: {exc.msg}"
    else:
        raise ValueError(problem)
    if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
        raise ValueError('the JSON needs a boolean "passed"')
    feedback = data.get("feedback", "")
    if not isinstance(feedback, str):
        raise ValueError('"feedback" must be a string')
    return data["passed"], feedback


def parse_feedback(answer: str) -> str:
    if not answer.strip():
        raise ValueError("the feedback was empty")
    return answer.strip()


def _describe(task: Task, spec: str, code: str, result: ExecutionResultContent) -> str:
    return (
        f"Specification:\n{spec}\n\nCode:\n```python\n{code}```\n\n"
        + (f"Tests:\n```python\n{task.tests}```\n\n" if task.tests else "")
        + f"Exit code: {result.exit_code}; stopped by the sandbox: {result.reason or 'no'}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )


def _judge(
    task: Task, spec: str, code: str, result: ExecutionResultContent, ctx: AgentContext
) -> tuple[bool, str, Usage | None]:
    if task.tests:
        if result.tests_passed:
            return True, "the tests passed", None
        feedback = ctx.model.complete_parsed(
            [
                {"role": "system", "content": FEEDBACK_PROMPT},
                {"role": "user", "content": _describe(task, spec, code, result)},
            ],
            parse_feedback,
            "Answer with your feedback as plain text.",
        )
        return False, feedback.value, feedback.usage
    judged = ctx.model.complete_parsed(
        [
            {"role": "system", "content": JUDGE_PROMPT},
            {"role": "user", "content": _describe(task, spec, code, result)},
        ],
        parse_judgement,
        JUDGE_CORRECTION,
    )
    passed, judge_feedback = judged.value
    return passed, judge_feedback, judged.usage


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    result = message.content
    if not isinstance(result, ExecutionResultContent):
        return []
    if ctx.lifecycle.is_over(message.conversation_id):
        return []
    transcript = ctx.transcript(message.conversation_id)
    task = task_of(transcript)
    code = latest_code(transcript)
    if code is None:
        return []
    needs_model = not (task.tests and result.tests_passed)
    if needs_model and (reason := budget_left(task, transcript, ctx)):
        return finish_failed(message, ctx, reason, transcript)
    try:
        passed, feedback, usage = _judge(task, spec_of(transcript), code.source, result, ctx)
    except ModelOutputError as exc:
        return finish_failed(message, ctx, str(exc), transcript, exc.usage)  # type: ignore[arg-type]
    limit = max_rounds(task, ctx)
    final = passed or result.round >= limit
    verdict = VerdictContent(
        round=result.round,
        passed=passed,
        feedback=feedback,
        final=final,
        text=f"round {result.round}: {'pass' if passed else 'fail'}: {feedback}",
    )
    out = [Outgoing(content=verdict, usage=usage)]
    if final:
        reason = (
            None
            if passed
            else (f"no passing code after {limit} round(s); last feedback: {feedback}")
        )
        status: Literal["succeeded", "failed"] = "succeeded" if passed else "failed"
        final_result = ResultContent(
            status=status,
            rounds=result.round,
            code=code.source,
            output=result.stdout,
            reason=reason,
            text=f"succeeded in round {result.round}" if passed else f"failed: {reason}",
        )
        out.append(Outgoing(content=final_result, ends_conversation=status, reason=reason))
    return out


AGENT = AgentSpec(
    name="checker",
    description="Judges execution results; ends the conversation or sends feedback to the coder.",
    listens_to=frozenset({"execution-result"}),
    handle=handle,
    default_lobbies=("coding",),
    exclusive=True,
    settings=(
        Setting(
            "max_rounds",
            int,
            default=3,
            doc="coding rounds per task; a task's own max_rounds wins",
            minimum=1,
            maximum=20,
            env="AGENTLOBBY_MAX_ROUNDS",
        ),
    ),
)
