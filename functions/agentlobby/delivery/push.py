"""Decoding a Pub/Sub push, as functions-framework hands it over, into a validated envelope.

The lobby comes from the event's source (the push endpoint's path names the topic), falling
back to the `lobby` attribute; it must agree with the envelope. Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from agentlobby.errors import InvalidMessage
from agentlobby.messages import Envelope, parse_envelope

_TOPIC_IN_SOURCE = re.compile(r"projects/[^/]+/topics/([^/?]+)")


@dataclass(frozen=True)
class PushedMessage:
    """One push delivery: where it came from and what it carries."""

    lobby: str | None
    pubsub_message_id: str
    attributes: dict[str, str]
    data: bytes


def lobby_from_source(source: str | None) -> str | None:
    match = _TOPIC_IN_SOURCE.search(source or "")
    return match.group(1) if match else None


def read_push(source: str | None, event_id: str, data: Any) -> PushedMessage:
    """The Pub/Sub message inside a CloudEvent's data; InvalidMessage when it is not one."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        raise InvalidMessage("push body has no 'message' object: not a Pub/Sub push")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise InvalidMessage("push message attributes are not an object")
    try:
        raw = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidMessage(f"push message data is not base64: {exc}") from exc
    lobby = lobby_from_source(source) or attributes.get("lobby")
    message_id = str(message.get("messageId") or message.get("message_id") or event_id)
    return PushedMessage(
        lobby=lobby,
        pubsub_message_id=message_id,
        attributes={str(k): str(v) for k, v in attributes.items()},
        data=raw,
    )


def envelope_of(pushed: PushedMessage) -> Envelope:
    if not pushed.data:
        raise InvalidMessage("push message has empty data: expected a JSON envelope")
    envelope = parse_envelope(pushed.data)
    if pushed.lobby is not None and pushed.lobby != envelope.lobby:
        raise InvalidMessage(
            f"envelope says lobby {envelope.lobby!r} but it was delivered from {pushed.lobby!r}"
        )
    return envelope
