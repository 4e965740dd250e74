"""The HTTP client's headers: the API token always, the IAM identity only when given."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentlobby.errors import ApiError
from agentlobby_cli.client import UserClient

EMPTY_CONVERSATION = {
    "conversation_id": "c1",
    "lobby": "chat",
    "status": "open",
    "reason": None,
    "rounds": 0,
    "final_code": None,
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    "messages": [],
    "dead_letters": [],
}


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            status = 200 if self.path == "/conversations/c1" else 404
            body = json.dumps(EMPTY_CONVERSATION if status == 200 else {"error": "nope"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_id_token_goes_in_cloud_runs_own_header(recorder: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = recorder
    UserClient(url, "api-token").conversation("c1")
    UserClient(url, "api-token", id_token="google-id").conversation("c1")
    assert seen[0]["authorization"] == "Bearer api-token"
    assert "x-serverless-authorization" not in seen[0]
    assert seen[1]["authorization"] == "Bearer api-token"
    assert seen[1]["x-serverless-authorization"] == "Bearer google-id"


def test_errors_carry_status_and_message(recorder: tuple[str, list[dict[str, str]]]) -> None:
    url, _seen = recorder
    with pytest.raises(ApiError) as caught:
        UserClient(url, "t").conversation("other")
    assert caught.value.status == 404
    assert "nope" in str(caught.value)


@pytest.fixture
def not_the_api() -> Iterator[str]:
    """A server that is not the user function: an HTML page, and a JSON list for an error."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            html = self.path == "/conversations/c1"
            body = b"<html>hello</html>" if html else b'["no object"]'
            self.send_response(200 if html else 403)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_that_is_not_the_apis_is_an_api_error(not_the_api: str) -> None:
    """Not a JSONDecodeError (the CLI would call it a usage mistake) nor an AttributeError."""
    with pytest.raises(ApiError) as caught:
        UserClient(not_the_api, "t").conversation("c1")
    assert caught.value.status == 200
    assert "not JSON" in str(caught.value) and "AGENTLOBBY_USER_URL" in str(caught.value)
    with pytest.raises(ApiError) as caught:
        UserClient(not_the_api, "t").conversation("c2")
    assert caught.value.status == 403
    assert "Forbidden" in str(caught.value)
