"""Envelopes and conversations built by hand: as JSON fields, or as an agent would leave them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentlobby.config import Settings
from agentlobby.messages import Envelope, TextContent, after, new_id, now, reply_id
from agentlobby.store.conversations import Conversations

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def envelope_fields(**overrides: Any) -> dict[str, Any]:
    """A valid envelope's JSON fields with `overrides`; an override of None drops the field."""
    body: dict[str, Any] = {
        "v": 1,
        "id": "m1",
        "conversation_id": "c1",
        "lobby": "chat",
        "sender": "user",
        "content": {"kind": "text", "text": "hello"},
        "created_at": T0.isoformat(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def user_message(lobby: str, text: str) -> Envelope:
    """A user's text message opening a new conversation."""
    return Envelope(
        id=new_id(),
        conversation_id=new_id(),
        lobby=lobby,
        sender="user",
        content=TextContent(text=text),
        created_at=now(),
    )


def reply_to(parent: Envelope, sender: str, text: str, index: int = 0) -> Envelope:
    """The text reply an agent's delivery would make as its `index`th reply to `parent`."""
    return Envelope(
        id=reply_id(sender, parent.id, index),
        conversation_id=parent.conversation_id,
        lobby=parent.lobby,
        sender=sender,
        content=TextContent(text=text),
        parent_id=parent.id,
        hops=parent.hops + 1,
        created_at=after(parent.created_at),
    )


def stored_user_message(settings: Settings, lobby: str, text: str) -> Envelope:
    """A user message stored as the user agent stores it, not yet published."""
    envelope = user_message(lobby, text)
    conversations = Conversations(settings.project)
    conversations.open(envelope.conversation_id, lobby)
    conversations.record(envelope)
    return envelope


def started_conversation(settings: Settings, lobby: str) -> Envelope:
    """A running conversation with one user message in it, as the user agent leaves it."""
    envelope = user_message(lobby, "judge this")
    Conversations(settings.project).start(envelope, "running")
    return envelope
