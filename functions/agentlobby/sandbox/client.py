"""The interpreter's way to run code: the sandbox function over HTTP, or in-process.

In the cloud (AGENTLOBBY_SANDBOX_URL set) code runs in the sandbox function, whose account has
no roles and whose network has no route out; the caller sends an ID token. Without a URL the
sandbox runs in this process. Either way the caller gets an ExecutionResult.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any

from agentlobby.config import Settings
from agentlobby.errors import BackendUnavailable, InvalidMessage
from agentlobby.sandbox.runner import ExecutionResult, SandboxLimits, run_python
from agentlobby.sandbox.service import TOKEN_HEADER
from agentlobby.tracing import record_sandbox_result, sandbox_span


def run_code(source: str, settings: Settings) -> ExecutionResult:
    """Run in the sandbox function when one is configured (the cloud), else in-process; a span
    in the conversation's trace either way (the sandbox function itself has no egress)."""
    with sandbox_span(remote=bool(settings.sandbox_url)) as span:
        if settings.sandbox_url:
            answer = run_remote(
                source, settings, settings.sandbox_timeout_s, settings.sandbox_memory_mb
            )
            result = result_from_json(answer)
        else:
            limits = SandboxLimits(
                timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb
            )
            result = run_python(source, limits=limits)
        record_sandbox_result(
            span, result.exit_code, result.duration_ms, result.isolation, result.timed_out
        )
        return result


def run_remote(source: str, config: Settings, timeout_s: float, memory_mb: int) -> dict[str, Any]:
    """Call the sandbox function; BackendUnavailable (transient) when it does not answer."""
    assert config.sandbox_url is not None
    url = config.sandbox_url.rstrip("/") + "/run"
    body = json.dumps({"source": source, "timeout_s": timeout_s, "memory_mb": memory_mb}).encode()
    headers = {"Content-Type": "application/json"}
    if config.sandbox_token:
        headers[TOKEN_HEADER] = config.sandbox_token
    if url.startswith("https://"):
        from agentlobby.store.clients import id_token

        headers["Authorization"] = f"Bearer {id_token(config.sandbox_url)}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s + 60) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        # 401/403 stay transient: a fresh run.invoker grant takes minutes to reach Cloud Run.
        if exc.code in (400, 404, 413, 422):
            raise InvalidMessage(f"the sandbox refused the run ({exc.code}): {detail}") from exc
        raise BackendUnavailable(f"the sandbox answered {exc.code}: {detail}") from exc
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"the sandbox at {url} did not answer: {exc}") from exc


def result_from_json(answer: dict[str, Any]) -> ExecutionResult:
    """The sandbox function's answer as an ExecutionResult; InvalidMessage if it is not one."""
    names = [field.name for field in dataclasses.fields(ExecutionResult)]
    try:
        return ExecutionResult(**{name: answer[name] for name in names})
    except (KeyError, TypeError) as exc:
        raise InvalidMessage(f"the sandbox answered something else than a result: {exc}") from exc
