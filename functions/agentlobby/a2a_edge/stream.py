"""A task's progress, event by event, as the conversation moves: what SendStreamingMessage and
SubscribeToTask stream, and what a blocking SendMessage waits on.

    the task as it is now                       (Task)
    each lobby message as it arrives            (TaskStatusUpdateEvent, state working)
    once settled: the final code and output     (TaskArtifactUpdateEvent each, if any)
                  and the settled state         (TaskStatusUpdateEvent: completed, failed,
                                                 canceled, or input-required for a chat)

It waits on the same Firestore listener as the page's streams (store/watch.py, through
api/events.waiting), not on a timer, and ends at the deadline if nothing settled: the client
subscribes again (SubscribeToTask). `None` items are keepalives: nothing changed for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from a2a.types import Task, TaskArtifactUpdateEvent, TaskStatusUpdateEvent

from agentlobby.a2a_edge.tasks import (
    SETTLED,
    TERMINAL,
    artifact_updates,
    message_update,
    state_of,
    status_update,
    to_task,
)
from agentlobby.api.events import waiting
from agentlobby.api.overview import read_conversation
from agentlobby.config import Settings
from agentlobby.store.watch import conversation_changes

Event = Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent


def progress(
    config: Settings, lobby: str, first: dict[str, Any], lifetime_s: float
) -> Iterator[Event | None]:
    """The events of one task from `first` (its view now) until it settles or time is up."""
    deadline = time.monotonic() + lifetime_s
    yield to_task(first, lobby)
    if state_of(first) in SETTLED:
        return
    conversation_id = first["conversation_id"]
    sent = {entry["id"] for entry in first["messages"]}
    with conversation_changes(config.project, conversation_id) as changes:
        for item in waiting(changes, deadline):
            if isinstance(item, bytes):
                yield None
                continue
            view = read_conversation(config, conversation_id)
            for entry in view["messages"]:
                if entry["id"] not in sent:
                    sent.add(entry["id"])
                    yield message_update(view, entry)
            state = state_of(view)
            if state in SETTLED:
                if state in TERMINAL:
                    yield from artifact_updates(view)
                yield status_update(view)
                return
