"""The envelope and its contents as plain values: validation, limits, names, ids and order."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agentlobby.errors import InvalidMessage, PayloadTooLarge
from agentlobby.messages import (
    KINDS,
    MAX_ENVELOPE_BYTES,
    MAX_TEXT_CHARS,
    Envelope,
    after,
    check_agent_name,
    check_lobby_name,
    check_size,
    order_key,
    parse_envelope,
    reply_id,
)
from tests.support.envelopes import T0, envelope_fields

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()

CONTENTS: dict[str, dict[str, Any]] = {
    "text": {"kind": "text", "text": "hello"},
    "code": {"kind": "code", "source": "print(1)", "round": 2, "text": "try this"},
    "image": {"kind": "image", "mime_type": "image/png", "data": PNG},
    "attachment": {"kind": "attachment", "name": "a.csv", "mime_type": "text/csv", "data": PNG},
    "task": {
        "kind": "task",
        "text": "sum two numbers",
        "tests": "assert add(1, 2) == 3",
        "image": {"mime_type": "image/png", "data": PNG},
        "max_rounds": 3,
    },
    "spec": {"kind": "spec", "text": "def add(a, b) -> int"},
    "execution-result": {
        "kind": "execution-result",
        "round": 1,
        "code_id": "abc123",
        "exit_code": 0,
        "stdout": "3\n",
        "stderr": "",
        "timed_out": False,
        "duration_ms": 12,
        "truncated": False,
        "reason": None,
        "tests_passed": True,
    },
    "verdict": {"kind": "verdict", "round": 1, "passed": False, "feedback": "off by one"},
    "result": {
        "kind": "result",
        "status": "succeeded",
        "rounds": 1,
        "code": "print(3)",
        "output": "3\n",
        "reason": None,
    },
}


def problem(raw: Any) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_envelope(raw)
    return str(caught.value)


def test_every_kind_has_an_example() -> None:
    assert set(CONTENTS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_round_trips_through_json(kind: str) -> None:
    envelope = parse_envelope(json.dumps(envelope_fields(content=CONTENTS[kind])).encode())
    assert envelope.kind == kind
    again = parse_envelope(envelope.to_json_bytes())
    assert again == envelope
    assert json.loads(again.to_json_bytes()) == json.loads(envelope.to_json_bytes())


def test_round_trip_keeps_every_field() -> None:
    original = Envelope.model_validate(
        envelope_fields(
            sender="coder",
            parent_id="m0",
            hops=3,
            usage={"prompt_tokens": 10, "completion_tokens": 5},
        )
    )
    again = parse_envelope(original.to_json_bytes())
    assert again == original
    assert again.created_at == T0
    assert again.usage is not None and again.usage.total_tokens == 15
    assert again.text() == "hello"


def test_binary_data_survives_base64() -> None:
    envelope = parse_envelope(envelope_fields(content=CONTENTS["image"]))
    assert envelope.content.data == b"\x89PNG\r\n\x1a\n fake"  # type: ignore[union-attr]
    assert parse_envelope(envelope.to_json_bytes()) == envelope


def test_attributes_repeat_the_routing_fields() -> None:
    envelope = parse_envelope(envelope_fields(sender="echo", hops=2))
    assert envelope.attributes() == {
        "v": "1",
        "message_id": "m1",
        "conversation_id": "c1",
        "lobby": "chat",
        "sender": "echo",
        "kind": "text",
        "hops": "2",
    }


def test_envelopes_are_frozen() -> None:
    envelope = parse_envelope(envelope_fields())
    with pytest.raises(ValidationError):
        envelope.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "invalid envelope"),
        (b"[]", "invalid envelope"),
        (envelope_fields(content={"kind": "poem", "text": "x"}), "content"),
        (envelope_fields(content={"kind": "text"}), "content.text.text: Field required"),
        (envelope_fields(content={"kind": "text", "text": ""}), "content.text.text"),
        (envelope_fields(extra="x"), "extra: Extra inputs are not permitted"),
        (envelope_fields(content={"kind": "text", "text": "x", "bold": True}), "bold"),
        (envelope_fields(v=2), "v: Input should be 1"),
        (envelope_fields(hops=-1), "hops"),
        (envelope_fields(hops="many"), "hops"),
        (envelope_fields(created_at="yesterday"), "created_at"),
        (envelope_fields(id="has space"), "id"),
        (envelope_fields(lobby="Chat"), "lobby"),
        (envelope_fields(sender="User"), "sender"),
        (envelope_fields(content=dict(CONTENTS["image"], mime_type="image/bmp")), "mime_type"),
        (envelope_fields(content=dict(CONTENTS["image"], data="a")), "Base64 decoding error"),
        (envelope_fields(content=dict(CONTENTS["attachment"], name="../etc/passwd")), "name"),
        (envelope_fields(content=dict(CONTENTS["task"], max_rounds=21)), "max_rounds"),
        (envelope_fields(content=dict(CONTENTS["result"], status="maybe")), "status"),
    ],
)
def test_invalid_envelopes_name_the_problem(raw: Any, expected: str) -> None:
    if isinstance(raw, dict):
        raw = json.dumps(raw).encode()
    assert expected in problem(raw)


def test_missing_fields_are_each_named() -> None:
    body = envelope_fields()
    del body["created_at"], body["conversation_id"]
    message = problem(json.dumps(body))
    assert "created_at: Field required" in message
    assert "conversation_id: Field required" in message


def test_text_limit() -> None:
    at_limit = envelope_fields(content={"kind": "text", "text": "x" * MAX_TEXT_CHARS})
    assert len(parse_envelope(at_limit).text() or "") == MAX_TEXT_CHARS
    over = envelope_fields(content={"kind": "text", "text": "x" * (MAX_TEXT_CHARS + 1)})
    assert f"at most {MAX_TEXT_CHARS} characters" in problem(over)


def test_envelope_byte_limit_on_parse() -> None:
    raw = b" " * (MAX_ENVELOPE_BYTES + 1)
    with pytest.raises(PayloadTooLarge) as caught:
        parse_envelope(raw)
    assert str(caught.value) == (
        f"envelope is {MAX_ENVELOPE_BYTES + 1} bytes; the limit is {MAX_ENVELOPE_BYTES}"
    )


def test_check_size_refuses_what_would_not_fit_a_document() -> None:
    big = "€" * MAX_TEXT_CHARS  # three bytes each in UTF-8: under the char limits, over the bytes
    content = {"kind": "code", "source": big, "text": big, "round": 1}
    envelope = Envelope.model_validate(envelope_fields(content=content))
    with pytest.raises(PayloadTooLarge, match=r"the limit is 900000 .*split it"):
        check_size(envelope)
    small = Envelope.model_validate(envelope_fields())
    assert check_size(small) is small


@pytest.mark.parametrize("name", ["chat", "abc", "a-b-c", "lobby-2", "a" + "b" * 62])
def test_good_lobby_names(name: str) -> None:
    assert check_lobby_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "ab", "Chat", "2chat", "-chat", "chat_room", "chat room", "a" + "b" * 63, "é-x"]
)
def test_bad_lobby_names(name: str) -> None:
    with pytest.raises(ValueError, match="3-63 characters of a-z, 0-9 and '-'"):
        check_lobby_name(name)


@pytest.mark.parametrize("name", ["echo", "echo_twin", "coder2", "ab", "a" + "b" * 39])
def test_good_agent_names(name: str) -> None:
    assert check_agent_name(name) == name


@pytest.mark.parametrize("name", ["a", "Echo", "echo-twin", "2echo", "_echo", "a" + "b" * 40])
def test_bad_agent_names(name: str) -> None:
    with pytest.raises(ValueError, match="2-40 characters of a-z, 0-9 and '_'"):
        check_agent_name(name)


def test_user_is_the_only_sender_that_is_not_an_agent_name() -> None:
    assert parse_envelope(envelope_fields(sender="user")).sender == "user"
    assert parse_envelope(envelope_fields(sender="echo")).sender == "echo"
    assert "sender" in problem(envelope_fields(sender="a"))


@pytest.mark.parametrize("value", ["a", "A-b_9", "x" * 64])
def test_good_ids(value: str) -> None:
    assert parse_envelope(envelope_fields(id=value, conversation_id=value)).id == value


@pytest.mark.parametrize("value", ["", "x" * 65, "a/b", "a.b", "__x__ ", "__x__", "____"])
def test_bad_ids(value: str) -> None:
    assert "must be 1-64 characters" in problem(envelope_fields(id=value))
    assert "conversation_id" in problem(envelope_fields(conversation_id=value))


def test_reply_ids_are_deterministic_and_distinct() -> None:
    first = reply_id("echo", "m1", 0)
    assert first == reply_id("echo", "m1", 0)
    others = {reply_id("echo", "m1", 1), reply_id("echo", "m2", 0), reply_id("coder", "m1", 0)}
    assert first not in others and len(others) == 3
    # A reply id is itself a valid id, so replies to replies work.
    assert parse_envelope(envelope_fields(id=first)).id == first


def test_reply_time_never_precedes_its_parent() -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    assert after(future) == future + timedelta(microseconds=1)
    past = datetime(2000, 1, 1, tzinfo=UTC)
    assert after(past) > past + timedelta(days=365)


def test_order_key_sorts_by_time_then_id() -> None:
    def at(seconds: float, message_id: str) -> Envelope:
        return Envelope.model_validate(
            envelope_fields(id=message_id, created_at=(T0 + timedelta(seconds=seconds)).isoformat())
        )

    messages = [at(10, "a"), at(2, "z"), at(2, "b"), at(0.000001, "c")]
    ordered = sorted(messages, key=order_key)
    assert [m.id for m in ordered] == ["c", "b", "z", "a"]
