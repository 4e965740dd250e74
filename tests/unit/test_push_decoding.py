"""Reading a Pub/Sub push as functions-framework hands it over: the envelope inside, or
InvalidMessage saying why there is none. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentlobby.delivery.push import envelope_of, read_push
from agentlobby.errors import InvalidMessage
from agentlobby.messages import parse_envelope
from tests.support.envelopes import envelope_fields
from tests.support.pubsub import push_json


def push_data(envelope: dict[str, Any], **attributes: str) -> dict[str, Any]:
    return push_json(json.dumps(envelope).encode(), attributes, "42")


def test_push_body_decodes_to_the_envelope() -> None:
    source = "//pubsub.googleapis.com/projects/p/topics/chat"
    pushed = read_push(source, "42", push_data(envelope_fields(), kind="text"))
    assert pushed.lobby == "chat" and pushed.pubsub_message_id == "42"
    assert pushed.attributes == {"kind": "text"}
    assert envelope_of(pushed) == parse_envelope(envelope_fields())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, "no 'message' object"),
        ({"message": "x"}, "no 'message' object"),
        ({"message": {"data": "###"}}, "not base64"),
        ({"message": {"data": "e30=", "attributes": ["x"]}}, "attributes are not an object"),
    ],
)
def test_unreadable_pushes(data: Any, expected: str) -> None:
    with pytest.raises(InvalidMessage, match=expected):
        read_push(None, "1", data)


def test_push_from_another_lobby_is_refused() -> None:
    pushed = read_push(
        "//pubsub.googleapis.com/projects/p/topics/other", "1", push_data(envelope_fields())
    )
    with pytest.raises(InvalidMessage, match="says lobby 'chat' but it was delivered from 'other'"):
        envelope_of(pushed)


def test_empty_push_data_is_refused() -> None:
    pushed = read_push(None, "1", {"message": {"data": ""}})
    with pytest.raises(InvalidMessage, match="empty data"):
        envelope_of(pushed)
