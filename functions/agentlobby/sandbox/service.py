"""The sandbox function's HTTP handler: runs code for the interpreter, nothing else.

In the cloud, code runs in its own function (`sandbox`) whose account has no roles and whose
network has no route out, so nothing the code steals opens anything; the interpreter agent,
which must store and publish results, calls it with an ID token and gets the result in the
response. Locally the stack runs the same function and points the interpreter at it.
Without AGENTLOBBY_SANDBOX_URL the interpreter runs the sandbox in its own process.

    POST /run  {"source": str, "files"?: {name: base64}, "timeout_s"?: float, "memory_mb"?: int}
            -> 200 {"exit_code", "stdout", "stderr", "timed_out", "duration_ms", "truncated",
                    "reason", "isolation"}
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import Field, ValidationError

from agentlobby.auth import tokens_match
from agentlobby.config import Settings
from agentlobby.logs import configure
from agentlobby.messages import MAX_TEXT_CHARS, Wire, describe_validation_error

TOKEN_HEADER = "x-agentlobby-sandbox-token"
MAX_BODY_BYTES = 2_000_000
MAX_TIMEOUT_S = 600.0  # asked-for limits are capped by the function's settings anyway
MAX_MEMORY_MB = 65_536


class RunRequest(Wire):
    source: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    files: dict[Annotated[str, Field(pattern=r"^[\w.-]{1,100}$")], str] = Field(
        default_factory=dict
    )
    timeout_s: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)] | None = None
    memory_mb: Annotated[int, Field(gt=0, le=MAX_MEMORY_MB)] | None = None


def handle_run(
    method: str, path: str, headers: dict[str, str], body: bytes, config: Settings
) -> tuple[dict[str, Any], int]:
    """The sandbox function: limits asked for are capped by the function's own settings."""
    configure(config.log_level)
    from agentlobby.sandbox.runner import SandboxLimits, run_python

    if path.rstrip("/") == "/healthz":
        return {"status": "ok"}, 200
    if config.sandbox_token is not None and not tokens_match(
        headers.get(TOKEN_HEADER, ""), config.sandbox_token
    ):
        return {"error": f"missing or wrong {TOKEN_HEADER} header"}, 401
    if method != "POST" or path.rstrip("/") not in ("", "/run"):
        return {"error": "POST /run with a JSON body"}, 404
    if len(body) > MAX_BODY_BYTES:
        return {"error": f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"}, 413
    try:
        request = RunRequest.model_validate_json(body)
        files = {
            name: base64.b64decode(data, validate=True) for name, data in request.files.items()
        }
    except ValidationError as exc:
        return {"error": describe_validation_error(exc, "run request")}, 422
    except (binascii.Error, ValueError) as exc:
        return {"error": f"a file is not base64: {exc}"}, 422
    limits = SandboxLimits(
        timeout_s=min(request.timeout_s or config.sandbox_timeout_s, config.sandbox_timeout_s),
        memory_mb=min(request.memory_mb or config.sandbox_memory_mb, config.sandbox_memory_mb),
    )
    return run_python(request.source, files=files, limits=limits).to_json_dict(), 200
