"""The entry points of functions/main.py, driven in-process through functions-framework.

`create_app(target, source, signature_type)` builds the very app that `functions-framework
--target ...` serves; its test client posts what Pub/Sub's push subscription posts (the push
body, to /projects/{project}/topics/{lobby}: the topic in the path names the lobby) and what a
user sends to the user function. What the entry points store and publish lands on the session
stack's emulators, whose addresses the Stack put in this process's environment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from agentlobby.config import Settings, settings
from agentlobby.messages import Envelope, reply_id
from agentlobby.store.clients import firestore_client
from agentlobby.store.conversations import Conversations
from local_emulator.stack_state import StackInfo
from tests.support.envelopes import started_conversation, stored_user_message
from tests.support.lobbies import create_lobby_with, recording
from tests.support.paths import MAIN_PY
from tests.support.pubsub import dead_letter_push, envelope_push, push_body, push_json

TOKEN = "in-process-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def config(info: StackInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The settings the entry points read (once, cached) in this process: the stack's project
    and emulators, and our own API token. The JSON log handler they install is taken off again."""
    monkeypatch.setenv("AGENTLOBBY_PROJECT", info.project)
    monkeypatch.setenv("AGENTLOBBY_API_TOKEN", TOKEN)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    settings.cache_clear()
    try:
        yield settings()
    finally:
        settings.cache_clear()
        root.handlers[:] = handlers
        root.setLevel(level)


def entry_point(target: str, signature_type: str) -> FlaskClient:
    return create_app(target, str(MAIN_PY), signature_type).test_client()


def topic_path(config: Settings, lobby: str) -> str:
    return f"/projects/{config.project}/topics/{lobby}"


def push(target: str, config: Settings, lobby: str, body: bytes) -> int:
    """POST a push body to a CloudEvent entry point, as a push subscription of `lobby` does."""
    answer = entry_point(target, "cloudevent").post(
        topic_path(config, lobby), data=body, content_type="application/json"
    )
    return answer.status_code


def dead_letter(config: Settings, letter_id: str) -> dict[str, Any]:
    snapshot = firestore_client(config.project).collection("dead_letters").document(letter_id)
    found: dict[str, Any] | None = snapshot.get().to_dict()
    assert found is not None, f"no dead letter {letter_id}"
    return found


def texts(config: Settings, message: Envelope) -> list[tuple[str, str | None]]:
    transcript = Conversations(config.project).transcript(message.conversation_id)
    return [(m.sender, m.text()) for m in transcript]


def test_echo_answers_a_push_once_and_publishes_its_reply(
    config: Settings, lobby_name: str
) -> None:
    create_lobby_with(config, lobby_name)  # no members: only our pushes reach an agent
    message = stored_user_message(config, lobby_name, "pushed in-process")
    body = envelope_push(message, "4242", project=config.project, subscription="in-process")
    with recording(config.project, lobby_name) as tail:
        assert push("echo", config, lobby_name, body) == 200
        assert push("echo", config, lobby_name, body) == 200  # a redelivery
        heard = tail.messages(settle_s=1.0)
    assert texts(config, message) == [("user", "pushed in-process"), ("echo", "pushed in-process")]
    reply = Conversations(config.project).transcript(message.conversation_id)[1]
    assert (reply.id, reply.parent_id, reply.hops) == (
        reply_id("echo", message.id, 0),
        message.id,
        1,
    )
    assert [m.id for m in heard] == [reply.id]  # published once, to the lobby of the path


def test_the_lobby_is_the_topic_in_the_push_path(config: Settings, lobby_name: str) -> None:
    create_lobby_with(config, lobby_name)
    message = stored_user_message(config, lobby_name, "which lobby?")
    body = envelope_push(message, "4343", project=config.project)  # its attributes say lobby_name
    assert push("echo", config, "elsewhere", body) == 200
    (letter,) = Conversations(config.project).dead_letters(message.conversation_id)
    assert letter.reason == (
        f"envelope says lobby {lobby_name!r} but it was delivered from 'elsewhere'"
    )
    assert (letter.agent, letter.lobby, letter.times) == ("echo", "elsewhere", 1)
    assert texts(config, message) == [("user", "which lobby?")]


@pytest.mark.parametrize(
    ("malformed", "reason"),
    [
        ("bad base64", "push message data is not base64"),
        ("not an envelope", "invalid envelope"),
    ],
)
def test_a_malformed_push_is_acknowledged_and_left_as_a_dead_letter(
    config: Settings, lobby_name: str, malformed: str, reason: str
) -> None:
    create_lobby_with(config, lobby_name)
    message = stored_user_message(config, lobby_name, "a conversation to attach it to")
    pubsub_id = f"malformed-{message.id}"
    attributes = {"conversation_id": message.conversation_id}
    if malformed == "bad base64":
        pushed = push_json(b"", attributes, pubsub_id, project=config.project)
        pushed["message"]["data"] = "### not base64 ###"
        body = json.dumps(pushed).encode()
    else:
        body = push_body(b'{"not": "an envelope"}', attributes, pubsub_id, project=config.project)
    status = push("echo", config, lobby_name, body)
    assert 200 <= status < 300  # acknowledged: Pub/Sub must not retry it
    letter = dead_letter(config, f"echo__pubsub-{pubsub_id}")
    assert reason in letter["reason"]
    assert (letter["agent"], letter["times"]) == ("echo", 1)
    assert texts(config, message) == [("user", "a conversation to attach it to")]
    if malformed == "not an envelope":  # its attributes could be read: its conversation shows it
        (shown,) = Conversations(config.project).dead_letters(message.conversation_id)
        assert (shown.id, shown.lobby) == (letter["id"], lobby_name)


def test_dead_letters_records_what_pubsub_gave_up_on_and_fails_the_step(
    config: Settings, lobby_name: str
) -> None:
    create_lobby_with(config, lobby_name)
    message = started_conversation(config, lobby_name)
    body = dead_letter_push(config.project, message, "checker", attempts=5)
    assert push("dead_letters", config, "agentlobby-dead-letter", body) == 200
    user = entry_point("user", "http")
    answer = user.get(f"/conversations/{message.conversation_id}", headers=AUTH)
    assert answer.status_code == 200
    view = answer.get_json()
    assert view["status"] == "failed"
    source = f"projects/{config.project}/subscriptions/agentlobby-{lobby_name}-checker"
    assert view["reason"] == f"not processed after 5 delivery attempts to {source}"
    (letter,) = view["dead_letters"]
    assert (letter["agent"], letter["message_id"], letter["lobby"]) == (
        "checker",
        message.id,
        lobby_name,
    )
    assert letter["reason"] == view["reason"]


def test_the_user_function_stores_publishes_and_reads_back_a_post(
    config: Settings, lobby_name: str
) -> None:
    create_lobby_with(config, lobby_name)  # no members: the post stays as it is
    user = entry_point("user", "http")
    health = user.get("/healthz")
    assert (health.status_code, health.get_json()) == (200, {"status": "ok"})
    path = f"/lobbies/{lobby_name}/messages"
    refused = user.post(path, json={"text": "no token"})
    assert refused.status_code == 401
    assert "Authorization: Bearer <token>" in refused.get_json()["error"]
    unknown = user.post("/lobbies/no-such-lobby/messages", json={"text": "hi"}, headers=AUTH)
    assert unknown.status_code == 404
    assert "unknown lobby 'no-such-lobby'" in unknown.get_json()["error"]

    with recording(config.project, lobby_name) as tail:
        posted = user.post(path, json={"text": "hello in-process"}, headers=AUTH)
        assert posted.status_code == 202
        ids = posted.get_json()
        assert set(ids) == {"conversation_id", "message_id"}
        heard = tail.messages(settle_s=1.0)
    assert [(m.id, m.sender, m.text()) for m in heard] == [
        (ids["message_id"], "user", "hello in-process")
    ]
    stored = Conversations(config.project).transcript(ids["conversation_id"])
    assert [(m.id, m.lobby, m.text()) for m in stored] == [
        (ids["message_id"], lobby_name, "hello in-process")
    ]

    read = user.get(f"/conversations/{ids['conversation_id']}", headers=AUTH)
    assert read.status_code == 200
    view = read.get_json()
    assert (view["conversation_id"], view["lobby"], view["status"]) == (
        ids["conversation_id"],
        lobby_name,
        "open",
    )
    assert [(m["id"], m["sender"], m["text"]) for m in view["messages"]] == [
        (ids["message_id"], "user", "hello in-process")
    ]


@pytest.mark.parametrize(
    ("target", "signature", "method", "path", "status"),
    [
        ("user", "http", "GET", "/robots.txt", 404),
        ("user", "http", "GET", "/favicon.ico", 404),
        ("sandbox", "http", "GET", "/favicon.ico", 404),
        ("echo", "cloudevent", "GET", "/", 405),
        ("dead_letters", "cloudevent", "PUT", "/", 405),
    ],
)
def test_what_functions_framework_answers_itself_is_json_too(
    config: Settings, target: str, signature: str, method: str, path: str, status: int
) -> None:
    """Not an HTML page: every answer of every function is JSON with the error."""
    answer = entry_point(target, signature).open(path, method=method)
    assert answer.status_code == status
    assert answer.is_json and "error" in answer.get_json(), answer.get_data()[:200]
