"""The sweeper: finds steps that stalled and drives them again, or ends them with the reason.

Pub/Sub delivers at least once, but not always again: a push that kept failing may never be
retried (the emulator sometimes gives up after three or four tries) or runs out of attempts
while the claim of a dead holder still looked alive. So nothing here waits on Pub/Sub: on a
schedule (Cloud Scheduler in the cloud, a timer in the local stack) the sweeper looks at every
conversation that is open or running and has been quiet for `stall_s`:

- each of its messages is checked against the members that should handle it (in the lobby
  when it was posted, listening to its kind, not its sender). A delivery with no done marker
  and no live claim is pending;
- a pending message is published again. Members that finished it skip it, the one that did
  not handles it: handlers are idempotent and reply ids are derived, so nothing is duplicated;
- a message redriven `max_redrives` times and still pending is given up: a dead letter names
  the agents and their last error, and a running conversation fails (lifecycle.fail_step);
- a running conversation with nothing pending that stays quiet for three times `stall_s`
  fails too: no step is left that could end it.

docs/architecture.md gives the bound this puts on a stalled conversation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field, ValidationError

from agentlobby.config import Settings
from agentlobby.delivery.dead_letters import record_dead_letter
from agentlobby.errors import TransientError
from agentlobby.lifecycle import Lifecycle, is_over
from agentlobby.logs import configure
from agentlobby.messages import Envelope, Identifier, Wire, describe_validation_error, now
from agentlobby.store import lobbies
from agentlobby.store.claims import Claim, Claims
from agentlobby.store.conversations import ConversationRecord, Conversations
from agentlobby.store.registry import Registry

log = logging.getLogger(__name__)
HORIZON = timedelta(days=1)  # conversations quiet for longer are left alone (and were swept)
QUIET_FACTOR = 3


class SweepRequest(Wire):
    conversation_ids: Annotated[list[Identifier], Field(max_length=1_000)] | None = None


@dataclass
class SweepReport:
    """What one sweep did, as the sweeper function answers it."""

    conversations: int = 0
    redriven: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, object]:
        return {
            "conversations": self.conversations,
            "redriven": self.redriven,
            "given_up": self.given_up,
            "failed": self.failed,
        }


def sweep(config: Settings, conversation_ids: list[str] | None = None) -> SweepReport:
    """One pass over the quiet conversations (or only those named, quiet or not, as an operator
    asks); safe to run twice at once: all of it is idempotent."""
    conversations = Conversations(config.project)
    stamp = now()
    if conversation_ids is None:
        quiet = conversations.quiet(
            since=stamp - HORIZON, until=stamp - timedelta(seconds=config.stall_s)
        )
    else:
        found = (conversations.find(cid) for cid in conversation_ids)
        quiet = [r for r in found if r is not None and not is_over(r.status)]
    report = SweepReport(conversations=len(quiet))
    sweeper = _Sweeper(config, conversations)
    for record in quiet:
        sweeper.conversation(record, report)
    return report


class _Sweeper:
    def __init__(self, config: Settings, conversations: Conversations) -> None:
        self.config = config
        self.conversations = conversations
        self.claims = Claims(config.project)
        self.registry = Registry(config.project)
        self.lifecycle = Lifecycle(conversations)
        self._members: dict[str, dict[str, tuple[datetime, frozenset[str]]]] = {}

    def conversation(self, record: ConversationRecord, report: SweepReport) -> None:
        transcript = self.conversations.transcript(record.id)
        pending, working = self._pending(record.lobby, transcript)
        for message, agents in pending:
            redrives = self.claims.count_redrive(message.id, every_s=self.config.stall_s)
            if redrives is None:
                continue  # redriven a moment ago: give that time to land
            if redrives > self.config.max_redrives:
                self._give_up(record, message, agents, report)
            else:
                log.warning(
                    "redriving %s (%s) for %s, time %d",
                    message.id,
                    message.kind,
                    ", ".join(agents),
                    redrives,
                    extra={"conversation_id": record.id, "message_id": message.id},
                )
                lobbies.publish(self.config.project, message)
                report.redriven.append(message.id)
        quiet_for = now() - (record.active_at or record.updated_at)
        stuck = timedelta(seconds=self.config.stall_s * QUIET_FACTOR)
        if pending or working:
            return
        if record.status == "open":
            self.conversations.mark_swept(record)  # a quiet chat: look again once active
        elif quiet_for > stuck:
            reason = (
                f"no progress for {quiet_for.total_seconds():.0f}s and no step left to run: "
                "every message was handled but none ended the conversation"
            )
            self.lifecycle.fail_step(record.id, reason)
            report.failed.append(record.id)

    def _pending(
        self, lobby: str, transcript: list[Envelope]
    ) -> tuple[list[tuple[Envelope, list[str]]], int]:
        """Messages with members that should handle them and have neither finished nor hold a
        live claim on them, oldest first; and how many deliveries a live claim holds."""
        if lobby not in self._members:  # read once a sweep: most conversations share lobbies
            self._members[lobby] = self.registry.members_since(lobby)
        members = self._members[lobby]
        given_up = self.claims.given_up_among([message.id for message in transcript])
        expected = [
            (message, agent)
            for message in transcript
            if message.id not in given_up
            for agent, (entered_at, listens_to) in members.items()
            if agent != message.sender
            and message.kind in listens_to
            and entered_at <= message.created_at
        ]
        progress = self.claims.progress_of([(agent, m.id) for m, agent in expected])
        pending: dict[str, tuple[Envelope, list[str]]] = {}
        working = 0
        for message, agent in expected:
            state = progress.get((agent, message.id))
            if state is None:
                pending.setdefault(message.id, (message, []))[1].append(agent)
            working += state is Claim.BUSY
        return list(pending.values()), working

    def _give_up(
        self,
        record: ConversationRecord,
        message: Envelope,
        agents: list[str],
        report: SweepReport,
    ) -> None:
        errors = [
            f"{agent}: {error}"
            for agent in agents
            if (error := self.claims.last_error(agent, message.id))
        ]
        reason = (
            f"{', '.join(agents)} did not handle {message.kind} message {message.id} after "
            f"{self.config.max_redrives} redrives"
            + (f"; last error: {'; '.join(errors)}" if errors else "")
        )
        for agent in agents:
            excerpt = message.to_json_bytes()[:500].decode("utf-8", "replace")
            record_dead_letter(self.config, agent, message, message.attributes(), reason, excerpt)
        self.claims.give_up(message.id)
        self.lifecycle.fail_step(record.id, reason)
        report.given_up.append(message.id)
        if record.status == "running":
            report.failed.append(record.id)


def handle_sweep(
    method: str, path: str, headers: dict[str, str], body: bytes, config: Settings
) -> tuple[dict[str, object], int]:
    """The sweeper function: POST runs one sweep and answers its report; a body
    {"conversation_ids": [...]} sweeps those conversations now, quiet or not.

    Deployed private (only the scheduler's account may invoke it); locally it listens on
    loopback. Sweeping twice at once is harmless, so it needs no token of its own."""
    configure(config.log_level)
    if path.rstrip("/") == "/healthz":
        return {"status": "ok"}, 200
    if path.rstrip("/") not in ("", "/sweep"):
        return {"error": f"no route {path}: POST / runs a sweep"}, 404
    if method != "POST":
        return {"error": f"method {method} not allowed: POST / runs a sweep"}, 405
    try:
        request = SweepRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return {"error": describe_validation_error(exc, "sweep request")}, 422
    try:
        return sweep(config, request.conversation_ids).to_json_dict(), 200
    except TransientError as exc:
        log.warning("sweep stopped: %s", exc)
        return {"error": f"temporarily unavailable, retry: {exc}"}, 503
