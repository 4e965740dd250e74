"""A small client of the user agent's HTTP API, for the CLI and scripts.

It speaks urllib (no HTTP library to import) and reads answers into the API's own models
(agentlobby.api.schema), so the CLI never picks fields out of JSON by name.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentlobby.api.schema import ConversationView, Posted
from agentlobby.api.traces import TraceView
from agentlobby.errors import ApiError, BackendUnavailable

M = TypeVar("M", bound=BaseModel)


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

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        headers |= extra_headers or {}
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
            error = str((answer.get("error") if isinstance(answer, dict) else None) or exc.reason)
            if exc.code >= 500:
                raise BackendUnavailable(
                    f"the user agent at {self.base_url} answered {exc.code}, retry later: {error}"
                ) from exc
            raise ApiError(exc.code, error) from exc
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

    def post(
        self, lobby: str, text: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> Posted:
        """Post a message; with `idempotency_key` a retried post is the same post."""
        body = {"text": text, **{k: v for k, v in fields.items() if v is not None}}
        key = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._read(Posted, self._call("POST", f"/lobbies/{lobby}/messages", body, key))

    def conversation(self, conversation_id: str) -> ConversationView:
        return self._read(ConversationView, self._call("GET", f"/conversations/{conversation_id}"))

    def trace(self, conversation_id: str) -> TraceView:
        path = f"/conversations/{conversation_id}/trace"
        return self._read(TraceView, self._call("GET", path))

    def _read(self, model: type[M], answer: Any) -> M:
        try:
            return model.model_validate(answer)
        except ValidationError as exc:
            raise ApiError(
                200,
                f"{self.base_url} answered something that is not the API's {model.__name__} "
                f"({exc.error_count()} problems); is AGENTLOBBY_USER_URL the user function's URL?",
            ) from exc
