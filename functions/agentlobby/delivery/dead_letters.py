"""Dead letters: what can never be processed is recorded once, with the reason, and acknowledged.

Two ways in: the pipeline records a permanent problem it met itself (a malformed push, an agent
that gave up), and the `dead_letters` function records what Pub/Sub gave up on after the
subscription's delivery attempts. Either way the conversation shows the record, and a running
conversation whose step was lost fails with the reason (lifecycle.py).
"""

from __future__ import annotations

import logging
from typing import Any

from agentlobby.config import Settings, settings
from agentlobby.delivery.push import PushedMessage, read_push
from agentlobby.errors import InvalidMessage, PermanentError
from agentlobby.lifecycle import Lifecycle
from agentlobby.logs import configure
from agentlobby.messages import AGENT_NAME, Envelope, document_key, is_identifier, now
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import Conversations, DeadLetter

log = logging.getLogger(__name__)
EXCERPT_CHARS = 500
MAX_FIELD_CHARS = 200
MAX_REASON_CHARS = 4_000


def record_dead_letter(
    config: Settings,
    agent: str | None,
    message: Envelope | None,
    attributes: dict[str, str],
    reason: str,
    excerpt: str,
    delivery_id: str | None = None,
) -> None:
    """Record a problem once per message: keyed by the envelope's id, else Pub/Sub's.

    Attributes are whatever a publisher set (any length, any characters): they are cut to a
    field's size and never used as a document key unchecked (messages.document_key)."""
    message_id = message.id if message else _field(attributes.get("message_id"))
    conversation_id = message.conversation_id if message else attributes.get("conversation_id")
    fallback = f"pubsub-{delivery_id}" if delivery_id else now().strftime("%Y%m%dT%H%M%S%f")
    key = document_key(f"{agent or 'unknown'}__{message_id or fallback}")
    letter = DeadLetter(
        id=key,
        conversation_id=conversation_id if is_identifier(conversation_id) else None,
        message_id=message_id,
        agent=agent,
        lobby=message.lobby if message else _field(attributes.get("lobby")),
        reason=reason[:MAX_REASON_CHARS],
        payload_excerpt=excerpt,
        recorded_at=now(),
    )
    Conversations(config.project).record_dead_letter(letter)
    log.warning(
        "dead letter: %s",
        reason,
        extra={"agent": agent, "conversation_id": conversation_id, "message_id": message_id},
    )


def record_dead_lettered(event: Any) -> None:
    """Entry for the dead-letter topic: Pub/Sub gave up on a message after its attempts.

    Anything may arrive here (a publisher can write to the topic directly): a message that
    cannot be recorded is logged and acknowledged, never failed into a redelivery cycle."""
    config = settings()
    configure(config.log_level)
    try:
        pushed = read_push(event.get("source"), str(event.get("id") or ""), event.data)
    except InvalidMessage as exc:
        log.error("unreadable dead letter: %s", exc)
        return
    try:
        _record_pushed(config, pushed)
    except PermanentError as exc:
        log.error("dead letter %s not recordable: %s", pushed.pubsub_message_id, exc)


def _record_pushed(config: Settings, pushed: PushedMessage) -> None:
    attrs = pushed.attributes
    subscription = _field(attrs.get("CloudPubSubDeadLetterSourceSubscription")) or "unknown"
    attempts = _field(attrs.get("CloudPubSubDeadLetterSourceDeliveryCount")) or "?"
    name = subscription.rsplit("/", 1)[-1]
    agent = name.rsplit("-", 1)[-1] if name.startswith("agentlobby-") else None
    if agent is not None and not AGENT_NAME.fullmatch(agent):
        agent = None
    reason = f"not processed after {attempts} delivery attempts to {subscription}"
    # The attempts may all have been copies while another delivery of the same message did
    # the work (or still does): then nothing was lost.
    message_id = attrs.get("message_id")
    if not is_identifier(message_id):
        message_id = None
    progress = Claims(config.project).progress(agent, message_id) if agent and message_id else None
    if progress is Claim.DONE:
        log.info("dead letter of a duplicate: %s handled %s", agent, message_id)
        return
    if agent and message_id and (error := Claims(config.project).last_error(agent, message_id)):
        reason += f"; last error: {error}"
    excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
    record_dead_letter(config, agent, None, attrs, reason, excerpt, pushed.pubsub_message_id)
    if progress is Claim.BUSY:
        return  # its holder is still at work: its outcome decides the conversation
    conversation_id = attrs.get("conversation_id")
    if conversation_id is not None and is_identifier(conversation_id):
        Lifecycle(Conversations(config.project)).fail_step(conversation_id, reason)


def _field(value: str | None) -> str | None:
    """An attribute cut to a size that any document field holds."""
    return None if value is None else value[:MAX_FIELD_CHARS]
