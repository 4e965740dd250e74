"""The user agent's request handling as a plain function: what it refuses before any I/O.

Every case here is decided before the handler touches Firestore or Pub/Sub; a guard makes the
test fail loudly if one ever reaches them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentlobby.api import overview, posting, routes
from agentlobby.config import Settings, load_settings
from agentlobby.messages import MAX_ENVELOPE_BYTES, MAX_TEXT_CHARS

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
POST_PATH = "/lobbies/chat/messages"


@pytest.fixture
def config() -> Settings:
    return load_settings({"AGENTLOBBY_API_TOKEN": TOKEN, "AGENTLOBBY_PROJECT": "no-io-here"})


@pytest.fixture(autouse=True)
def no_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a case that should be refused reaches Firestore or Pub/Sub."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"reached a backend with {args!r}: the request was not refused")

    monkeypatch.setattr(posting, "Registry", refuse)  # posting: what routes.py posts with
    monkeypatch.setattr(posting, "Conversations", refuse)
    monkeypatch.setattr(overview, "Conversations", refuse)  # the conversation reads
    monkeypatch.setattr(posting.lobbies, "publish", refuse)
    yield


def call(
    config: Settings,
    body: bytes | dict[str, Any] | None = None,
    *,
    method: str = "POST",
    path: str = POST_PATH,
    headers: dict[str, str] | None = None,
) -> tuple[str, int]:
    raw = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    answer, status = routes.handle_request(
        method, path, AUTH if headers is None else headers, raw, config
    )
    assert set(answer) == {"error"}, answer
    assert isinstance(answer["error"], str) and answer["error"]
    return answer["error"], status


def test_health_needs_no_token(config: Settings) -> None:
    assert routes.handle_request("GET", "/healthz", {}, b"", config) == ({"status": "ok"}, 200)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": TOKEN},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": "Bearer "},
    ],
)
def test_missing_or_wrong_token_is_401(config: Settings, headers: dict[str, str]) -> None:
    error, status = call(config, {"text": "hi"}, headers=headers)
    assert status == 401
    assert "Authorization: Bearer <token>" in error


def test_no_token_configured_refuses_everyone() -> None:
    config = load_settings({"AGENTLOBBY_PROJECT": "no-io-here"})
    _, status = call(config, {"text": "hi"}, headers={"authorization": "Bearer "})
    assert status == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", POST_PATH),
        ("PUT", POST_PATH),
        ("DELETE", POST_PATH),
        ("POST", "/conversations/abc"),
        ("DELETE", "/conversations/abc"),
    ],
)
def test_wrong_method_is_405(config: Settings, method: str, path: str) -> None:
    error, status = call(config, {"text": "hi"}, method=method, path=path)
    assert status == 405
    assert error == f"method {method} not allowed on {path}"


@pytest.mark.parametrize("path", ["/nowhere", "/lobbies/chat", "/conversations/abc/messages"])
def test_unknown_route_is_404(config: Settings, path: str) -> None:
    error, status = call(config, method="GET", path=path)
    assert status == 404
    assert error.startswith(f"no route GET {path}") and "docs/messages.md" in error


@pytest.mark.parametrize("lobby", ["Chat", "ab", "chat_room", "bytes_room", "1chat", "x" * 64])
def test_bad_lobby_name_is_422(config: Settings, lobby: str) -> None:
    error, status = call(config, {"text": "hi"}, path=f"/lobbies/{lobby}/messages")
    assert status == 422
    assert error == (
        f"lobby name {lobby!r} must be 3-63 characters of a-z, 0-9 and '-', starting with a letter"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe\x00", "body is not valid JSON"),
        (b"", 'body must be a JSON object like {"text": "hello"}'),
        (b"[]", 'body must be a JSON object like {"text": "hello"}'),
        (b'"hello"', 'body must be a JSON object like {"text": "hello"}'),
        (b"42", 'body must be a JSON object like {"text": "hello"}'),
        ({}, "invalid message: text: Field required"),
        ({"message": "hi"}, "text: Field required; message: Extra inputs are not permitted"),
        ({"text": ""}, "invalid message: text: String should have at least 1 character"),
        ({"text": "hi", "sender": "echo"}, "sender: Extra inputs are not permitted"),
        ({"text": "hi", "bytes": 3}, "bytes: Extra inputs are not permitted"),
        ({"text": 5}, "text: Input should be a valid string"),
        ({"text": ["hi"]}, "text: Input should be a valid string"),
        ({"text": "hi", "conversation_id": 7}, "conversation_id: Input should be a valid string"),
        ({"text": "hi", "conversation_id": "a/b"}, "conversation_id: Value error, id 'a/b'"),
        ({"text": "hi", "conversation_id": "__x__"}, "conversation_id: Value error, id '__x__'"),
        ({"text": "hi", "max_rounds": "many"}, "max_rounds: Input should be a valid integer"),
        ({"text": "hi", "max_rounds": 0}, "max_rounds: Input should be greater than or equal"),
        ({"text": "hi", "image": "cat.png"}, "image: Input should be a valid dictionary"),
        (
            {"text": "hi", "image": {"mime_type": "image/bmp", "data_base64": "YWJj"}},
            "invalid image: mime_type: Input should be 'image/png'",
        ),
        (
            {"text": "hi", "image": {"mime_type": "image/png", "data_base64": "a"}},
            "invalid image: data: Base64 decoding error",
        ),
        (
            {"text": "x" * (MAX_TEXT_CHARS + 1)},
            f"text: String should have at most {MAX_TEXT_CHARS}",
        ),
    ],
)
def test_bad_body_is_422_naming_the_problem(
    config: Settings, body: bytes | dict[str, Any], expected: str
) -> None:
    error, status = call(config, body)
    assert status == 422, error
    assert expected in error


def test_oversize_body_is_413() -> None:
    config = load_settings({"AGENTLOBBY_API_TOKEN": TOKEN, "AGENTLOBBY_PROJECT": "no-io-here"})
    body = json.dumps({"text": "x" * MAX_ENVELOPE_BYTES}).encode()
    error, status = call(config, body)
    assert status == 413
    assert error == f"body is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}"


@pytest.mark.parametrize("conversation_id", ["__reserved__", "..", ".", "a b"])
def test_impossible_conversation_id_is_404(config: Settings, conversation_id: str) -> None:
    error, status = call(config, method="GET", path=f"/conversations/{conversation_id}")
    assert status == 404
    assert error == f"unknown conversation {conversation_id!r}"
