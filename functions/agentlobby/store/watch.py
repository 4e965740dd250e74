"""Firestore real-time listeners, reduced to "these documents changed": what the page's live
streams (api/events.py) wait on instead of polling.

A listener (`on_snapshot`) runs its callback on the client's own thread; `Changes` collects the
ids it reports until the stream's thread asks for them. Every message stored in a conversation
also updates its conversation document (the message count, in the same batch), and so does
every status change, so watching that one document sees all of a conversation's progress.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from agentlobby.store.clients import firestore_client


class Changes:
    """The ids of documents that changed since the last take(); safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._ready = threading.Event()
        self.error: BaseException | None = None

    def add(self, ids: set[str]) -> None:
        with self._lock:
            self._ids |= ids
            self._ready.set()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            self.error = error
            self._ready.set()

    def take(self, timeout_s: float) -> set[str] | None:
        """The ids changed since the last call, waiting up to `timeout_s` for one; None if none
        came. A listener that broke raises here, so the stream ends instead of waiting."""
        if not self._ready.wait(timeout_s):
            return None
        with self._lock:
            if self.error is not None:
                from agentlobby.store.clients import ours

                raise ours(self.error, "Firestore listener") or self.error
            ids, self._ids = self._ids, set()
            self._ready.clear()
            return ids


def _listening(changes: Changes) -> Any:
    def on_snapshot(snapshots: Any, changed: Any, read_time: Any) -> None:
        try:
            changes.add({change.document.id for change in changed})
        except Exception as exc:  # handed to the stream's thread, never lost
            changes.fail(exc)

    return on_snapshot


@contextlib.contextmanager
def conversation_changes(project: str, conversation_id: str) -> Iterator[Changes]:
    """Changes of one conversation's document (its messages and status), while in the block.
    The first report comes at once: the document as it is (or nothing, if there is none)."""
    changes = Changes()
    ref = firestore_client(project).collection("conversations").document(conversation_id)
    watch = ref.on_snapshot(_listening(changes))
    try:
        yield changes
    finally:
        watch.unsubscribe()


@contextlib.contextmanager
def recent_conversation_changes(project: str, limit: int) -> Iterator[Changes]:
    """Changes among the `limit` most recently created conversations, while in the block."""
    from google.cloud import firestore

    changes = Changes()
    query = (
        firestore_client(project)
        .collection("conversations")
        .order_by("created_at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )
    watch = query.on_snapshot(_listening(changes))
    try:
        yield changes
    finally:
        watch.unsubscribe()
