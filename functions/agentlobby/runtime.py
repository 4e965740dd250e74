"""Delivering one pushed message to one agent, at least once in, exactly once in effect.

The order of a delivery:
1. decode and validate; a permanent problem is recorded as a dead letter and acknowledged;
2. skip what the agent does not listen to, and what it already finished (`deliveries`);
3. exclusive agents take a leased claim; a fresh claim held elsewhere means "retry later";
4. run the handler; reply ids are derived from (agent, incoming id, index), so a rerun after
   a crash produces the same ids;
5. store the replies in the transcript in one create() batch (first run wins) and publish what
   is stored; a rerun finds the stored replies first and republishes them without running the
   handler again, so two runs' answers never mix;
6. mark the delivery done. A crash anywhere before this leaves it to the redelivery.
Transient errors and bugs propagate once the claim is released, so the redelivery can take it
at once: functions-framework answers 500 and Pub/Sub redelivers, until the subscription's
dead-letter policy moves the message to the dead-letter topic.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any

from agentlobby import lobby as pubsub_lobby
from agentlobby.agent import AgentContext, AgentSpec, Outgoing
from agentlobby.config import Settings, settings
from agentlobby.conversations import Conversations, DeadLetter, Reply
from agentlobby.deliveries import Claim, Deliveries
from agentlobby.errors import (
    DeliveryInProgress,
    HopLimitExceeded,
    InvalidMessage,
    PermanentError,
    UnknownAgent,
)
from agentlobby.logs import configure
from agentlobby.messages import Envelope, after, check_size, now, reply_id
from agentlobby.push import PushedMessage, envelope_of, read_push

log = logging.getLogger(__name__)
EXCERPT_CHARS = 500


@functools.cache
def load_agent(module_path: str) -> AgentSpec:
    """Import an agent module on first use, so a function imports only its own agent."""
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise UnknownAgent(module_path) from exc
    spec = getattr(module, "AGENT", None)
    if not isinstance(spec, AgentSpec):
        raise UnknownAgent(f"{module_path} (it defines no AGENT = AgentSpec(...))")
    return spec


def deliver(event: Any, agent_module: str) -> None:
    """Entry for every lobby agent: `event` is the CloudEvent functions-framework made."""
    config = settings()
    configure(config.log_level)
    spec = load_agent(agent_module)
    try:
        pushed = read_push(event.get("source"), str(event.get("id") or ""), event.data)
    except InvalidMessage as exc:
        excerpt = repr(event.data)[:EXCERPT_CHARS]
        _dead_letter(config, spec.name, None, {}, str(exc), excerpt, str(event.get("id") or ""))
        return
    deliver_pushed(spec, pushed, config)


def deliver_pushed(spec: AgentSpec, pushed: PushedMessage, config: Settings) -> None:
    try:
        message = envelope_of(pushed)
    except InvalidMessage as exc:
        excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
        # The lobby it was delivered in, even when the attributes do not say.
        where = {**pushed.attributes, "lobby": pushed.lobby} if pushed.lobby else pushed.attributes
        _dead_letter(config, spec.name, None, where, str(exc), excerpt, pushed.pubsub_message_id)
        return
    if message.kind not in spec.listens_to or message.sender == spec.name:
        return
    deliveries = Deliveries(config.project)
    if spec.exclusive:
        claim = deliveries.claim(spec.name, message.id, spec.lease_s or config.claim_lease_s)
        if claim is Claim.DONE:
            return
        if claim is Claim.BUSY:
            raise DeliveryInProgress(f"{spec.name} is already handling message {message.id}")
    elif deliveries.is_done(spec.name, message.id):
        return
    fields = {"agent": spec.name, "conversation_id": message.conversation_id}
    log.info("handling %s from %s", message.kind, message.sender, extra=fields)
    try:
        try:
            _handle(spec, message, config)
        except PermanentError as exc:
            log.warning("giving up on %s: %s", message.id, exc, extra=fields)
            excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
            _dead_letter(config, spec.name, message, pushed.attributes, str(exc), excerpt)
            _fail_running(config, message.conversation_id, f"{spec.name} gave up: {exc}")
        deliveries.finish(spec.name, message.id)
    except Exception:
        if spec.exclusive:
            deliveries.release(spec.name, message.id)  # the redelivery may start at once
        raise


def _handle(spec: AgentSpec, message: Envelope, config: Settings) -> None:
    conversations = Conversations(config.project)
    # Replies an earlier run stored decide this delivery: a handler that calls a model
    # answers differently each time, so it is not asked again and two runs never mix.
    stored = conversations.stored_replies(message, spec.name)
    if not stored:
        stored = conversations.record_replies(message, _replies(spec, message, config))
    for reply in stored:
        pubsub_lobby.publish(config.project, reply.envelope)
        if reply.ends_conversation is not None:
            conversations.finish(message.conversation_id, reply.ends_conversation, reply.reason)


def _replies(spec: AgentSpec, message: Envelope, config: Settings) -> list[Reply]:
    ctx = AgentContext(agent=spec.name, lobby=message.lobby, settings=config)
    outgoing = list(spec.handle(message, ctx))
    if outgoing and message.hops + 1 > config.max_hops:
        raise HopLimitExceeded(
            f"{spec.name} would reply at hop {message.hops + 1}, past the limit of "
            f"{config.max_hops} (AGENTLOBBY_MAX_HOPS): agents are probably answering each other"
        )
    return [
        Reply(_envelope(spec.name, message, item, i), item.ends_conversation, item.reason)
        for i, item in enumerate(outgoing)
    ]


def _envelope(agent: str, parent: Envelope, item: Outgoing, index: int) -> Envelope:
    return check_size(
        Envelope(
            id=reply_id(agent, parent.id, index),
            conversation_id=parent.conversation_id,
            lobby=item.lobby or parent.lobby,
            sender=agent,
            content=item.content,
            parent_id=parent.id,
            hops=parent.hops + 1,
            created_at=after(parent.created_at),
            usage=item.usage,
        )
    )


def _dead_letter(
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


def _fail_running(config: Settings, conversation_id: str, reason: str) -> None:
    """A working conversation cannot go on once a step is dead-lettered: end it, saying why."""
    conversations = Conversations(config.project)
    try:
        if conversations.get(conversation_id).status == "running":
            conversations.finish(conversation_id, "failed", reason)
    except PermanentError:
        pass  # no such conversation: the dead letter is all there is to record


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
    progress = (
        Deliveries(config.project).progress(agent, message_id) if agent and message_id else None
    )
    if progress is Claim.DONE:
        log.info("dead letter of a duplicate: %s handled %s", agent, message_id)
        return
    excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
    _dead_letter(config, agent, None, attrs, reason, excerpt, pushed.pubsub_message_id)
    if progress is Claim.BUSY:
        return  # its holder is still at work: its outcome decides the conversation
    if conversation_id := attrs.get("conversation_id"):
        _fail_running(config, conversation_id, reason)
