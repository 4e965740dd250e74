"""Conversations in Firestore: status, and the ordered transcript of every message.

`conversations/{id}` holds the status; `conversations/{id}/messages/{message_id}` holds one
envelope each, sorted by `order_key` (creation time, causal by construction). A message is
written with create(), so the first write of an id wins and a redelivery cannot duplicate it;
an agent's replies to one message are written together, so a rerun finds all of them or none.
Token use is derived from the transcript rather than kept in a counter: no hot document.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from agentlobby.errors import TransientError, UnknownConversation
from agentlobby.lifecycle import Status, is_over
from agentlobby.messages import (
    Envelope,
    Identifier,
    LobbyName,
    Traceparent,
    Wire,
    now,
    order_key,
    reply_id,
)
from agentlobby.store.clients import firestore_client, translated

log = logging.getLogger(__name__)
# Stored beside the envelope in a message document, never part of it.
_STORAGE_FIELDS = ("order_key", "ends_conversation", "end_reason")


class ConversationRecord(Wire):
    v: int = 1
    id: Identifier
    lobby: LobbyName
    status: Status
    reason: str | None = None
    created_at: datetime
    updated_at: datetime
    # Messages stored so far, counted in the same write that stores them (a runaway's bound).
    message_count: int = 0
    # Model calls its agents made, counted before each call (a runaway's other bound).
    model_calls: int = 0
    # The last write of a message or a status, while the sweeper may have work here: None
    # once the conversation is over, or swept with nothing pending, until the next message.
    active_at: datetime | None = None
    # The span that opened it: later posts join its trace (tracing.py); None when tracing is off.
    traceparent: Traceparent | None = None


class DeadLetter(Wire):
    """A message that can never be processed, kept with the reason instead of retried."""

    v: int = 1
    id: str
    conversation_id: str | None
    message_id: str | None
    agent: str | None
    lobby: str | None
    reason: str
    payload_excerpt: str
    recorded_at: datetime
    times: int = 1  # how often this same problem arrived: more than 1 means redeliveries


@dataclass(frozen=True)
class Reply:
    """An agent's reply as stored: the envelope, and the status it ends its conversation with."""

    envelope: Envelope
    ends_conversation: Status | None = None
    reason: str | None = None


def _stored_envelope(body: dict[str, Any]) -> Envelope:
    return Envelope.model_validate({k: v for k, v in body.items() if k not in _STORAGE_FIELDS})


@translated
class Conversations:
    """Reads and writes conversations of one project."""

    def __init__(self, project: str) -> None:
        self._db = firestore_client(project)

    def _doc(self, conversation_id: str) -> Any:
        return self._db.collection("conversations").document(conversation_id)

    def _message_doc(self, envelope: Envelope) -> Any:
        return self._doc(envelope.conversation_id).collection("messages").document(envelope.id)

    @staticmethod
    def _message_body(envelope: Envelope) -> dict[str, Any]:
        body = envelope.model_dump(mode="json")
        body["order_key"] = order_key(envelope)
        return body

    def open(self, conversation_id: str, lobby: str, status: Status = "open") -> None:
        """Start a conversation unless it exists (a retried POST must not reset it)."""
        from google.api_core import exceptions

        stamp = now()
        record = ConversationRecord(
            id=conversation_id,
            lobby=lobby,
            status=status,
            created_at=stamp,
            updated_at=stamp,
            active_at=stamp,
        )
        with contextlib.suppress(exceptions.AlreadyExists):
            self._doc(conversation_id).create(record.model_dump(mode="json"))

    def start(self, envelope: Envelope, status: Status) -> Envelope:
        """A new conversation and its first message in one write (one round trip, not two);
        returns the message as stored (a retried post gets what the first one stored)."""
        from google.api_core import exceptions

        record = ConversationRecord(
            id=envelope.conversation_id,
            lobby=envelope.lobby,
            status=status,
            created_at=envelope.created_at,
            updated_at=envelope.created_at,
            message_count=1,
            active_at=envelope.created_at,
            traceparent=envelope.traceparent,
        )
        batch = self._db.batch()
        batch.create(self._doc(record.id), record.model_dump(mode="json"))
        batch.create(self._message_doc(envelope), self._message_body(envelope))
        try:
            batch.commit()
        except exceptions.AlreadyExists:  # a retried post: keep what the first one wrote
            self.open(record.id, record.lobby, status)
            return self.record(envelope)[0]
        return envelope

    def get(self, conversation_id: str) -> ConversationRecord:
        snap = self._doc(conversation_id).get()
        if not snap.exists:
            raise UnknownConversation(conversation_id)
        return ConversationRecord.model_validate(snap.to_dict())

    def record(self, envelope: Envelope) -> tuple[Envelope, bool]:
        """Store a message once; returns the stored envelope and whether this call wrote it."""
        from google.api_core import exceptions

        ref = self._message_doc(envelope)
        try:
            self._create_counted(envelope.conversation_id, [(ref, self._message_body(envelope))])
            return envelope, True
        except exceptions.AlreadyExists:
            return _stored_envelope(ref.get().to_dict()), False

    def record_replies(self, parent: Envelope, replies: list[Reply]) -> list[Reply]:
        """Store one handler run's replies in one write, all or none; returns what is stored.

        When an earlier run (a redelivery, a concurrent duplicate) stored its replies first,
        those are returned instead: a handler that calls a model answers differently each
        time, and mixing two runs' replies would contradict itself.
        """
        from google.api_core import exceptions

        if not replies:
            return []
        documents = []
        for reply in replies:
            body = self._message_body(reply.envelope)
            if reply.ends_conversation is not None:
                body |= {"ends_conversation": reply.ends_conversation, "end_reason": reply.reason}
            documents.append((self._message_doc(reply.envelope), body))
        try:
            self._create_counted(parent.conversation_id, documents)
        except exceptions.AlreadyExists:
            return self.stored_replies(parent, replies[0].envelope.sender)
        return replies

    def _create_counted(self, conversation_id: str, documents: list[tuple[Any, Any]]) -> None:
        """Create message documents and count them on their conversation, in one write; with
        no conversation document (a message published by hand) they are created uncounted."""
        from google.api_core import exceptions

        for counted in (True, False):
            batch = self._db.batch()
            for ref, body in documents:
                batch.create(ref, body)
            if counted:
                batch.update(self._doc(conversation_id), self._counted(len(documents)))
            try:
                batch.commit()
                return
            except exceptions.NotFound:
                continue

    @staticmethod
    def _counted(added: int) -> dict[str, Any]:
        from google.cloud import firestore

        return {"message_count": firestore.Increment(added), "active_at": now().isoformat()}

    def count_model_call(self, conversation_id: str) -> int:
        """Count one more model call of the conversation; returns the count so far (0 when
        there is no conversation document: a message published by hand)."""
        from google.api_core import exceptions
        from google.cloud import firestore

        ref = self._doc(conversation_id)
        try:
            ref.update({"model_calls": firestore.Increment(1)})
        except exceptions.NotFound:
            return 0
        return int(ref.get().get("model_calls"))

    def find(self, conversation_id: str) -> ConversationRecord | None:
        """The conversation, or None when there is none (a message published by hand)."""
        snap = self._doc(conversation_id).get()
        return ConversationRecord.model_validate(snap.to_dict()) if snap.exists else None

    def recent(self, limit: int) -> list[ConversationRecord]:
        """The `limit` most recently created conversations, newest first (the page's list;
        one field's order, so no composite index is needed in the cloud)."""
        from google.cloud import firestore

        query = (
            self._db.collection("conversations")
            .order_by("created_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        records = []
        for snap in query.stream():
            try:
                records.append(ConversationRecord.model_validate(snap.to_dict()))
            except ValidationError as exc:  # one bad document must not hide the others
                log.error("conversation %s is not readable, not listed: %s", snap.id, exc)
        return records

    def quiet(self, *, since: datetime, until: datetime) -> list[ConversationRecord]:
        """Open or running conversations last active between `since` and `until` (the
        sweeper's work list: ended and swept ones have no `active_at`, so they are not read)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (
            self._db.collection("conversations")
            .where(filter=FieldFilter("active_at", ">=", since.isoformat()))
            .where(filter=FieldFilter("active_at", "<=", until.isoformat()))
        )
        records = []
        for snap in query.stream():
            try:
                records.append(ConversationRecord.model_validate(snap.to_dict()))
            except ValidationError as exc:  # one bad document must not stop every sweep
                log.error("conversation %s is not readable, not swept: %s", snap.id, exc)
        return [record for record in records if not is_over(record.status)]

    def mark_swept(self, record: ConversationRecord) -> None:
        """Nothing was pending: leave it out of sweeps until its next message. Unless a message
        came meanwhile: then the sweep saw too little, and the next one looks again."""
        from google.api_core import exceptions

        ref = self._doc(record.id)
        snap = ref.get()
        stored = (snap.to_dict() or {}).get("active_at") if snap.exists else None
        if stored is None or datetime.fromisoformat(str(stored)) != record.active_at:
            return
        with contextlib.suppress(exceptions.FailedPrecondition, exceptions.Aborted):
            ref.update(
                {"active_at": None},
                option=self._db.write_option(last_update_time=snap.update_time),
            )

    def look_before_handling(
        self, parent: Envelope, agent: str
    ) -> tuple[list[Reply], ConversationRecord | None]:
        """What a delivery reads first, in one round trip: the replies an earlier run of `agent`
        stored for `parent` (empty for a first run), and the conversation (None if there is no
        document: a message published by hand)."""
        messages = self._doc(parent.conversation_id).collection("messages")
        first = messages.document(reply_id(agent, parent.id, 0))
        conversation = self._doc(parent.conversation_id)
        snaps = {snap.reference.path: snap for snap in self._db.get_all([first, conversation])}
        record_snap = snaps.get(conversation.path)
        record = (
            ConversationRecord.model_validate(record_snap.to_dict())
            if record_snap is not None and record_snap.exists
            else None
        )
        reply_snap = snaps.get(first.path)
        if reply_snap is None or not reply_snap.exists:
            return [], record
        return self.stored_replies(parent, agent), record

    def stored_replies(self, parent: Envelope, agent: str) -> list[Reply]:
        """The replies an earlier run of `agent` stored for `parent`: their ids are derived."""
        messages = self._doc(parent.conversation_id).collection("messages")
        out: list[Reply] = []
        while True:
            snap = messages.document(reply_id(agent, parent.id, len(out))).get()
            if not snap.exists:
                return out
            body = snap.to_dict()
            out.append(
                Reply(_stored_envelope(body), body.get("ends_conversation"), body.get("end_reason"))
            )

    def transcript(self, conversation_id: str) -> list[Envelope]:
        query = self._doc(conversation_id).collection("messages").order_by("order_key")
        return [_stored_envelope(snap.to_dict()) for snap in query.stream()]

    def change_status(
        self, conversation_id: str, status: Status, reason: str | None, *, only_from: set[str]
    ) -> bool:
        """Move to `status` if the current status is in `only_from`; False when it was not.
        TransientError if other writes kept winning: nothing was decided, retry.

        The write is conditional on the document being unchanged since it was read, so two
        steps moving it at once (a success and a dead letter) cannot overwrite each other.
        Which moves are allowed is decided in lifecycle.py, not here.
        """
        from google.api_core import exceptions

        ref = self._doc(conversation_id)
        for _attempt in range(5):
            snap = ref.get()
            if not snap.exists:
                raise UnknownConversation(conversation_id)
            if snap.get("status") not in only_from:
                return False
            try:
                stamp = now().isoformat()
                active = None if is_over(status) else stamp  # over: nothing left to sweep
                ref.update(
                    {"status": status, "reason": reason, "updated_at": stamp, "active_at": active},
                    option=self._db.write_option(last_update_time=snap.update_time),
                )
                return True
            except (exceptions.FailedPrecondition, exceptions.Aborted):
                continue  # changed meanwhile: read again
        # Not "already moved on": the caller must not mark its delivery done; Pub/Sub retries.
        raise TransientError(
            f"conversation {conversation_id} changed under it on each of 5 tries to make it "
            f"{status}; retry later"
        )

    def record_dead_letter(self, letter: DeadLetter) -> None:
        """One document per problem: a redelivered copy counts up `times` instead of adding one."""
        from google.cloud import firestore

        body: dict[str, Any] = letter.model_dump(mode="json")
        body["times"] = firestore.Increment(1)
        self._db.collection("dead_letters").document(letter.id).set(body, merge=True)

    def dead_letters(self, conversation_id: str) -> list[DeadLetter]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._db.collection("dead_letters").where(
            filter=FieldFilter("conversation_id", "==", conversation_id)
        )
        letters = [DeadLetter.model_validate(s.to_dict()) for s in query.stream()]
        return sorted(letters, key=lambda d: d.recorded_at)
