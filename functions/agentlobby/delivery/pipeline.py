"""Delivering one pushed message to one agent, at least once in, exactly once in effect.

The order of a delivery:
1. decode and validate; a permanent problem is recorded as a dead letter and acknowledged;
2. skip what the agent does not listen to, and what it already finished (store/claims.py);
3. exclusive agents take a leased claim, renewed while they work; a copy that finds a live
   claim held elsewhere is acknowledged (the holder finishes, or the sweeper redrives it);
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

import contextlib
import functools
import importlib
import logging
from collections import Counter
from typing import Any

from opentelemetry.trace import Span, get_current_span

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.config import Settings, settings
from agentlobby.delivery.dead_letters import EXCERPT_CHARS, record_dead_letter
from agentlobby.delivery.push import PushedMessage, envelope_of, read_push
from agentlobby.errors import (
    HopLimitExceeded,
    InvalidMessage,
    MessageLimitExceeded,
    PermanentError,
    RunawayConversation,
    UnknownAgent,
)
from agentlobby.lifecycle import Lifecycle, is_over
from agentlobby.logs import LogContext, configure, log_context
from agentlobby.messages import USER_SENDER, Envelope, after, check_size, reply_id
from agentlobby.store import lobbies
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import Conversations, Reply
from agentlobby.tracing import current_traceparent, delivery_span, flush, mark_failed, setup

log = logging.getLogger(__name__)


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
    deliver_as(event, load_agent(agent_module))


def deliver_as(event: Any, spec: AgentSpec, service: str | None = None) -> None:
    """Deliver to an agent made at run time (a remote member, delivery/remote.py); `service`
    names the function in traces when it serves more than one agent."""
    config = settings()
    configure(config.log_level)
    setup(config, service or spec.name)
    try:
        pushed = read_push(event.get("source"), str(event.get("id") or ""), event.data)
    except InvalidMessage as exc:
        excerpt = repr(event.data)[:EXCERPT_CHARS]
        record_dead_letter(
            config, spec.name, None, {}, str(exc), excerpt, str(event.get("id") or "")
        )
        return
    try:
        deliver_pushed(spec, pushed, config)
    finally:
        flush()


def deliver_pushed(spec: AgentSpec, pushed: PushedMessage, config: Settings) -> None:
    try:
        message = envelope_of(pushed)
    except InvalidMessage as exc:
        excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
        # The lobby it was delivered in, even when the attributes do not say.
        where = {**pushed.attributes, "lobby": pushed.lobby} if pushed.lobby else pushed.attributes
        record_dead_letter(
            config, spec.name, None, where, str(exc), excerpt, pushed.pubsub_message_id
        )
        return
    # Every line logged during this delivery says which one it was (logs.py).
    with log_context(
        conversation_id=message.conversation_id,
        agent=spec.name,
        lobby=message.lobby,
        message_id=message.id,
        kind=message.kind,
    ) as logged:
        _deliver_message(spec, message, pushed, config, logged)


def _deliver_message(
    spec: AgentSpec, message: Envelope, pushed: PushedMessage, config: Settings, logged: LogContext
) -> None:
    if message.kind not in spec.listens_to or message.sender == spec.name:
        return
    with delivery_span(spec.name, message, pushed.pubsub_message_id) as span:
        _claim_and_handle(spec, message, pushed, config, span, logged)


def _claim_and_handle(
    spec: AgentSpec,
    message: Envelope,
    pushed: PushedMessage,
    config: Settings,
    span: Span,
    logged: LogContext,
) -> None:
    claims = Claims(config.project)
    if spec.exclusive:
        claim = claims.claim(spec.name, message.id, config.claim_lease_s)
        if claim is not Claim.TAKEN:
            span.set_attributes({"agentlobby.redelivery": True, "agentlobby.outcome": claim.value})
        if claim is Claim.DONE:
            return
        if claim is Claim.BUSY:
            # Acknowledged: the holder renews its claim while it works, and should it die the
            # sweeper finds the step pending and drives it again (delivery/sweeper.py).
            log.info(
                "%s is already handling %s elsewhere: acknowledging this copy",
                spec.name,
                message.id,
                extra={"agent": spec.name, "conversation_id": message.conversation_id},
            )
            return
    elif not claims.start(spec.name, message.id):
        span.set_attributes({"agentlobby.redelivery": True, "agentlobby.outcome": "done"})
        return
    logged.add(delivery_attempt=claims.attempt)
    if claims.attempt is not None:
        span.set_attribute("agentlobby.delivery_attempt", claims.attempt)
        if claims.attempt > 1:
            span.set_attribute("agentlobby.redelivery", True)
    fields = {"agent": spec.name, "conversation_id": message.conversation_id}
    log.info("handling %s from %s", message.kind, message.sender, extra=fields)
    renewing = (
        claims.kept(spec.name, message.id, config.claim_lease_s)
        if spec.exclusive
        else contextlib.nullcontext()
    )
    try:
        with renewing:
            _handle_or_give_up(spec, message, pushed, config)
        claims.finish(spec.name, message.id)
    except Exception as exc:
        if spec.exclusive:  # the redelivery may start at once, and learns what went wrong
            claims.release(spec.name, message.id, f"{type(exc).__name__}: {exc}")
        raise


def _handle_or_give_up(
    spec: AgentSpec, message: Envelope, pushed: PushedMessage, config: Settings
) -> None:
    """Handle; a permanent problem is recorded as a dead letter and ends what it must end."""
    try:
        _handle(spec, message, config)
    except PermanentError as exc:
        fields = {"agent": spec.name, "conversation_id": message.conversation_id}
        log.warning("giving up on %s: %s", message.id, exc, extra=fields)
        mark_failed("dead-lettered", str(exc))
        excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
        record_dead_letter(config, spec.name, message, pushed.attributes, str(exc), excerpt)
        lifecycle = Lifecycle(Conversations(config.project))
        if isinstance(exc, RunawayConversation):
            lifecycle.stop_runaway(message.conversation_id, str(exc))
        else:
            lifecycle.fail_step(message.conversation_id, f"{spec.name} gave up: {exc}")


def _handle(spec: AgentSpec, message: Envelope, config: Settings) -> None:
    conversations = Conversations(config.project)
    # Replies an earlier run stored decide this delivery: a handler that calls a model
    # answers differently each time, so it is not asked again and two runs never mix.
    stored, record = conversations.look_before_handling(message, spec.name)
    span = get_current_span()
    if stored:  # an earlier run stored its answer: republish it, do not work again
        span.set_attributes({"agentlobby.redelivery": True, "agentlobby.outcome": "replayed"})
    else:
        if record is not None and is_over(record.status):
            span.set_attribute("agentlobby.outcome", "conversation over")
            return  # nothing more happens in a conversation that is over (lifecycle.py)
        replies = _replies(spec, message, config)
        if record is not None and record.message_count + len(replies) > config.max_messages:
            raise MessageLimitExceeded(_runaway(conversations, message, config.max_messages))
        stored = conversations.record_replies(message, replies)
        span.set_attributes({"agentlobby.outcome": "handled", "agentlobby.replies": len(stored)})
    for reply in stored:
        lobbies.publish(config.project, reply.envelope)
        if reply.ends_conversation is not None:
            Lifecycle(conversations).end(
                message.conversation_id, reply.ends_conversation, reply.reason
            )


def _replies(spec: AgentSpec, message: Envelope, config: Settings) -> list[Reply]:
    ctx = AgentContext(
        agent=spec.name,
        lobby=message.lobby,
        settings=config,
        conversation_id=message.conversation_id,
    )
    outgoing = list(spec.handle(message, ctx))
    if outgoing and message.hops + 1 > config.max_hops:
        raise HopLimitExceeded(
            f"{spec.name} would reply to {message.sender} at hop {message.hops + 1}, past the "
            f"limit of {config.max_hops} (AGENTLOBBY_MAX_HOPS): agents are probably answering "
            "each other"
        )
    return [
        Reply(_envelope(spec.name, message, item, i), item.ends_conversation, item.reason)
        for i, item in enumerate(outgoing)
    ]


def _runaway(conversations: Conversations, message: Envelope, limit: int) -> str:
    """Why a conversation is stopped: its size, the limit, and who sent how much of it."""
    senders = Counter(m.sender for m in conversations.transcript(message.conversation_id))
    senders.pop(USER_SENDER, None)
    who = ", ".join(f"{agent} ({count})" for agent, count in senders.most_common(5))
    return (
        f"conversation stopped at its limit of {limit} messages (AGENTLOBBY_MAX_MESSAGES): "
        f"agents are probably answering each other; messages by agent: {who or 'none'}"
    )


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
            traceparent=current_traceparent(),
        )
    )
