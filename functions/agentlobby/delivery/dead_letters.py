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
from agentlobby.delivery.push import read_push
from agentlobby.errors import InvalidMessage
from agentlobby.lifecycle import Lifecycle
from agentlobby.logs import configure
from agentlobby.messages import Envelope, now
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import Conversations, DeadLetter

log = logging.getLogger(__name__)
EXCERPT_CHARS = 500


def record_dead_letter(
    config: Settings,
    agent: str | None,
    message: Envelope | None,
    attributes: dict[str, str],
    reason: str,
    excerpt: str,
    delivery_id: str | None = None,
) -> None:
    """Record a problem once per message: keyed by the envelope's id, else Pub/Sub's."""
    message_id = message.id if message else attributes.get("message_id")
    conversation_id = message.conversation_id if message else attributes.get("conversation_id")
    fallback = f"pubsub-{delivery_id}" if delivery_id else now().strftime("%Y%m%dT%H%M%S%f")
    key = f"{agent or 'unknown'}__{message_id or fallback}"
    letter = DeadLetter(
        id=key,
        conversation_id=conversation_id,
        message_id=message_id,
        agent=agent,
        lobby=message.lobby if message else attributes.get("lobby"),
        reason=reason,
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
    """Entry for the dead-letter topic: Pub/Sub gave up on a message after its attempts."""
    config = settings()
    configure(config.log_level)
    try:
        pushed = read_push(event.get("source"), str(event.get("id") or ""), event.data)
    except InvalidMessage as exc:
        log.error("unreadable dead letter: %s", exc)
        return
    attrs = pushed.attributes
    subscription = attrs.get("CloudPubSubDeadLetterSourceSubscription", "unknown subscription")
    attempts = attrs.get("CloudPubSubDeadLetterSourceDeliveryCount", "?")
    name = subscription.rsplit("/", 1)[-1]
    agent = name.rsplit("-", 1)[-1] if name.startswith("agentlobby-") else None
    reason = f"not processed after {attempts} delivery attempts to {subscription}"
    # The attempts may all have been a duplicate told to wait (DeliveryInProgress) while
    # another delivery of the same message did the work: then nothing was lost.
    message_id = attrs.get("message_id")
    progress = Claims(config.project).progress(agent, message_id) if agent and message_id else None
    if progress is Claim.DONE:
        log.info("dead letter of a duplicate: %s handled %s", agent, message_id)
        return
    excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
    record_dead_letter(config, agent, None, attrs, reason, excerpt, pushed.pubsub_message_id)
    if progress is Claim.BUSY:
        return  # its holder is still at work: its outcome decides the conversation
    if conversation_id := attrs.get("conversation_id"):
        Lifecycle(Conversations(config.project)).fail_step(conversation_id, reason)
