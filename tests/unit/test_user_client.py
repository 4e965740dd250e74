"""The HTTP client's headers: the API token always, the IAM identity only when given."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agentlobby.errors import ApiError
from agentlobby_cli.client import UserClient
from tests.support.fake_http import QuietHandler, serving

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

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            status = 200 if self.path == "/conversations/c1" else 404
            body = json.dumps(EMPTY_CONVERSATION if status == 200 else {"error": "nope"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    with serving(Handler) as url:
        yield url, seen


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

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            html = self.path == "/conversations/c1"
            body = b"<html>hello</html>" if html else b'["no object"]'
            self.send_response(200 if html else 403)
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as url:
        yield url


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
