"""The interpreter agent: runs each code version in the sandbox and reports what happened.

When the task has tests, they run right after the code in the same program, so the exit code
says whether they passed. The interpreter is exclusive: a duplicate delivery of a code
message waits for the first run's result instead of running the code again.
"""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.agents.coding import task_of
from agentlobby.messages import CodeContent, Envelope, ExecutionResultContent

# Each stream kept in the message: two of them must fit one transcript document.
OUTPUT_CHARS = 50_000
TESTS_SEPARATOR = "\n\n# ---- tests given with the task ----\n"


def program(code: str, tests: str | None) -> str:
    return code if not tests else code.rstrip("\n") + TESTS_SEPARATOR + tests


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    code = message.content
    if not isinstance(code, CodeContent):
        return []
    if ctx.lifecycle.is_over(message.conversation_id):
        return []
    task = task_of(ctx.transcript(message.conversation_id))
    result = ctx.run_code(program(code.source, task.tests))
    tests_passed = (result.exit_code == 0 and result.reason is None) if task.tests else None
    summary = f"round {code.round}: exit code {result.exit_code}"
    if result.reason:
        summary += f", stopped: {result.reason}"
    content = ExecutionResultContent(
        round=code.round,
        code_id=message.id,
        exit_code=result.exit_code,
        stdout=result.stdout[:OUTPUT_CHARS],
        stderr=result.stderr[:OUTPUT_CHARS],
        timed_out=result.timed_out,
        duration_ms=result.duration_ms,
        truncated=result.truncated or max(len(result.stdout), len(result.stderr)) > OUTPUT_CHARS,
        reason=result.reason,
        tests_passed=tests_passed,
        isolation=result.isolation,
        text=summary,
    )
    return [Outgoing(content=content)]


AGENT = AgentSpec(
    name="interpreter",
    description="Runs code in the sandbox: no network, no secrets, limits on time and memory.",
    listens_to=frozenset({"code"}),
    handle=handle,
    default_lobbies=("coding",),
    exclusive=True,
)
