"""The A2A edge without I/O: the state table, what a message's parts become, the card."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from a2a.types import Message, Part, Role, TaskState
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError

from agentlobby.a2a_edge.card import base_url, lobby_card
from agentlobby.a2a_edge.inbound import post_of
from agentlobby.a2a_edge.tasks import task_state, to_task
from agentlobby.lifecycle import TERMINAL
from agentlobby.store.registry import AgentRecord

PNG = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + b"\0\0\0\x02\0\0\0\x03" + b"\0" * 20


@pytest.mark.parametrize(
    ("status", "last", "state"),
    [
        ("open", "user", TaskState.TASK_STATE_WORKING),
        ("open", None, TaskState.TASK_STATE_WORKING),
        ("open", "echo", TaskState.TASK_STATE_INPUT_REQUIRED),
        ("running", "coder", TaskState.TASK_STATE_WORKING),
        ("succeeded", "checker", TaskState.TASK_STATE_COMPLETED),
        ("failed", "checker", TaskState.TASK_STATE_FAILED),
        ("cancelled", "user", TaskState.TASK_STATE_CANCELED),
    ],
)
def test_each_status_has_its_task_state(status: str, last: str | None, state: int) -> None:
    assert task_state(status, last) == state


def test_every_terminal_status_maps_and_an_unknown_one_is_refused() -> None:
    for status in TERMINAL:
        task_state(status, "user")  # no KeyError: a new status must be added to the table
    with pytest.raises(ValueError, match="add it to the table"):
        task_state("paused", "user")


def message(*parts: Part, role: Any = Role.ROLE_USER, message_id: str = "m1") -> Message:
    return Message(message_id=message_id, role=role, parts=parts)


def test_text_data_and_an_image_become_one_coding_task() -> None:
    data = Part()
    data.data.struct_value.update({"tests": "assert f() == 1", "max_rounds": 2})
    image = Part(raw=PNG, media_type="image/png")
    post = post_of(message(Part(text="write f"), Part(text="returning 1"), data, image), "c1")
    assert post.text == "write f\n\nreturning 1"
    assert post.tests == "assert f() == 1"
    assert post.max_rounds == 2 and isinstance(post.max_rounds, int)
    assert post.image is not None and base64.b64decode(post.image.data_base64) == PNG
    assert post.conversation_id == "c1"


@pytest.mark.parametrize(
    ("parts", "error", "words"),
    [
        ((Part(text="t"), Part(url="https://x/y.png")), ContentTypeNotSupportedError, "by URL"),
        (
            (Part(text="t"), Part(raw=b"%PDF", media_type="application/pdf")),
            ContentTypeNotSupportedError,
            "pdf",
        ),
        (
            (Part(text="t", media_type="application/octet-stream"),),
            ContentTypeNotSupportedError,
            "text/plain",
        ),
        (
            (
                Part(text="t"),
                Part(raw=PNG, media_type="image/png"),
                Part(raw=PNG, media_type="image/png"),
            ),
            InvalidParamsError,
            "second image",
        ),
        ((Part(text=""),), InvalidParamsError, "no text"),
        ((Part(),), InvalidParamsError, "no content"),
        ((), InvalidParamsError, "empty"),
    ],
)
def test_parts_a_lobby_cannot_take_are_refused(
    parts: tuple[Part, ...], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        post_of(message(*parts), None)


def test_a_data_part_takes_only_task_fields_and_a_user_sends() -> None:
    data = Part()
    data.data.struct_value.update({"text": "sneaked in"})
    with pytest.raises(InvalidParamsError, match="'text'"):
        post_of(message(Part(text="t"), data), None)
    with pytest.raises(InvalidParamsError, match="ROLE_AGENT"):
        post_of(message(Part(text="t"), role=Role.ROLE_AGENT), None)
    with pytest.raises(InvalidParamsError, match="messageId"):
        post_of(message(Part(text="t"), message_id="x" * 201), None)


def view(status: str, *messages: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    return {
        "conversation_id": "c1",
        "lobby": "coding",
        "status": status,
        "reason": reason,
        "rounds": 1,
        "messages": list(messages),
    }


def entry(
    sender: str, kind: str, content: dict[str, Any], text: str | None = None
) -> dict[str, Any]:
    return {
        "id": f"{sender}-{kind}",
        "sender": sender,
        "kind": kind,
        "created_at": datetime(2025, 1, 2, tzinfo=UTC).isoformat(),
        "content": {"kind": kind, **content},
        "text": text,
    }


def test_a_finished_task_has_its_code_and_output_as_artifacts_and_no_image_bytes() -> None:
    task = to_task(
        view(
            "succeeded",
            entry(
                "user",
                "task",
                {"text": "t", "image": {"mime_type": "image/png", "data": "AAAA"}},
                "t",
            ),
            entry(
                "checker",
                "result",
                {"status": "succeeded", "rounds": 1, "code": "print(1)\n", "output": "1\n"},
            ),
        ),
        "coding",
    )
    assert task.id == task.context_id == "c1"
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [(a.artifact_id, a.parts[0].text) for a in task.artifacts] == [
        ("final-code", "print(1)\n"),
        ("output", "1\n"),
    ]
    user, result = task.history
    assert user.role == Role.ROLE_USER and result.role == Role.ROLE_AGENT
    assert user.parts[1].data.struct_value["image"]["bytes"] == "omitted"
    assert "AAAA" not in str(task)


def test_a_failed_task_says_why_in_its_status() -> None:
    task = to_task(
        view("failed", entry("user", "task", {"text": "t"}, "t"), reason="rounds exhausted"),
        "coding",
    )
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert task.status.message.parts[0].text == "rounds exhausted"
    assert list(task.artifacts) == []


def test_the_card_names_the_lobby_its_members_and_the_bearer_scheme() -> None:
    members = [
        AgentRecord(
            name=name,
            endpoint="http://127.0.0.1:1",
            description=f"{name} does things",
            listens_to=listens,
            registered_at=datetime.now(UTC),
        )
        for name, listens in (("vision", ("task",)), ("coder", ("spec", "verdict")))
    ]
    card = lobby_card("coding", members, "https://example.test/a2a/coding")
    assert card.name == "agentlobby coding"
    assert "coding task" in card.description
    assert [(s.id, list(s.tags)) for s in card.skills] == [
        ("vision", ["task"]),
        ("coder", ["spec", "verdict"]),
    ]
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert list(card.security_requirements[0].schemes) == ["bearer"]
    assert card.supported_interfaces[0].url == "https://example.test/a2a/coding"
    assert card.supported_interfaces[0].protocol_version == "1.0"


def test_the_base_url_is_the_public_url_else_where_the_request_came() -> None:
    assert base_url("https://api.example/user/", {}, "chat") == "https://api.example/user/a2a/chat"
    forwarded = {
        "host": "internal:8080",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "fn.example",
    }
    assert base_url(None, forwarded, "chat") == "https://fn.example/a2a/chat"
    assert base_url(None, {"host": "127.0.0.1:9"}, "chat") == "http://127.0.0.1:9/a2a/chat"
