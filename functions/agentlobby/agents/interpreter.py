"""The interpreter agent: runs each code version in the sandbox and reports what happened.

When the task has tests, they run right after the code in the same program, so the exit code
says whether they passed. The interpreter is exclusive: a duplicate delivery of a code
message waits for the first run's result instead of running the code again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlobby.agent import AgentContext, AgentSpec, Outgoing
from agentlobby.coding import task_of
from agentlobby.config import Settings
from agentlobby.conversations import TERMINAL
from agentlobby.messages import CodeContent, Envelope, ExecutionResultContent
from agentlobby.sandbox_service import result_from_json, run_remote

if TYPE_CHECKING:
    from agentlobby.sandbox import ExecutionResult

# Each stream kept in the message: two of them must fit one transcript document.
OUTPUT_CHARS = 50_000
TESTS_SEPARATOR = "\n\n# ---- tests given with the task ----\n"


def program(code: str, tests: str | None) -> str:
    return code if not tests else code.rstrip("\n") + TESTS_SEPARATOR + tests


def execute(source: str, settings: Settings) -> ExecutionResult:
    """Run in the sandbox function when one is configured (the cloud), else in-process."""
    from agentlobby.sandbox import SandboxLimits, run_python

    if settings.sandbox_url:
        answer = run_remote(
            source, settings, settings.sandbox_timeout_s, settings.sandbox_memory_mb
        )
        return result_from_json(answer)
    limits = SandboxLimits(
        timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb
    )
    return run_python(source, limits=limits)


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    code = message.content
    if not isinstance(code, CodeContent):
        return []
    if ctx.conversations.get(message.conversation_id).status in TERMINAL:
        return []
    task = task_of(ctx.transcript(message.conversation_id))
    result = execute(program(code.source, task.tests), ctx.settings)
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
    lease_s=120.0,
)
