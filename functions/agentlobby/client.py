"""A small client of the user agent's HTTP API, for the CLI and scripts (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from agentlobby.errors import AgentlobbyError, BackendUnavailable


class ApiError(AgentlobbyError):
    """The user API answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class UserClient:
    """`id_token` is for a deployment behind IAM: Cloud Run checks it in its own header and
    leaves `Authorization` (the API token) to the function."""

    def __init__(
        self, base_url: str, token: str, timeout_s: float = 30.0, id_token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.id_token = id_token

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if self.id_token:
            headers["X-Serverless-Authorization"] = f"Bearer {self.id_token}"
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except (ValueError, OSError):
                answer = None
            error = answer.get("error") if isinstance(answer, dict) else None
            raise ApiError(exc.code, str(error or exc.reason)) from exc
        except OSError as exc:
            raise BackendUnavailable(
                f"the user agent at {self.base_url} did not answer ({exc}); is the stack running?"
            ) from exc
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:  # a usage error to the CLI if it went up as a ValueError
            raise ApiError(
                status,
                f"{url} answered something that is not JSON ({raw[:80]!r}); is "
                "AGENTLOBBY_USER_URL the user function's URL?",
            ) from exc

    def post(self, lobby: str, text: str, **fields: Any) -> dict[str, str]:
        body = {"text": text, **{k: v for k, v in fields.items() if v is not None}}
        result: dict[str, str] = self._call("POST", f"/lobbies/{lobby}/messages", body)
        return result

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/conversations/{conversation_id}")
        return result
