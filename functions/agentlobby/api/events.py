"""Server-sent events for the page: a conversation as it progresses, and the list of recent ones.

    GET /conversations/{id}/events  -> text/event-stream: `conversation` (the whole view, as
                                       GET /conversations/{id} answers it) at once and after
                                       every change; `end` when it is over or the stream's
                                       time is up
    GET /events                     -> text/event-stream: `conversations` (the list, as
                                       GET /conversations answers it) at once, then `summary`
                                       for each conversation that changed

Both wait on Firestore real-time listeners (store/watch.py), not on a timer: a change is sent
as soon as Firestore reports it. A stream holds one of the instance's request threads (gunicorn
runs 8), so each ends after LIFETIME_S, and a comment line every KEEPALIVE_S both keeps proxies
from closing an idle stream and finds a client that went away; the page reconnects.
A conversation that does not exist answers 404 before any stream starts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from agentlobby.api.overview import (
    RECENT,
    conversation_list,
    over,
    read_conversation,
    summary_of,
)
from agentlobby.api.raw import RawAnswer
from agentlobby.config import Settings
from agentlobby.errors import AgentlobbyError
from agentlobby.store.watch import Changes, conversation_changes, recent_conversation_changes

log = logging.getLogger(__name__)

LIFETIME_S = 300.0
KEEPALIVE_S = 15.0
RETRY_MS = 2000  # what the stream tells a client to wait before it reconnects
HEADERS = {"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"}
EVENT_STREAM = "text/event-stream; charset=utf-8"


def frame(event: str, data: Any) -> bytes:
    """One server-sent event; JSON never holds a raw newline, so `data` is one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def conversation_events(config: Settings, conversation_id: str) -> RawAnswer:
    first = read_conversation(config, conversation_id)  # UnknownConversation: a 404, no stream
    stream = _guarded(_conversation_stream(config, conversation_id, first))
    return RawAnswer(stream, EVENT_STREAM, headers=HEADERS)


def list_events(config: Settings) -> RawAnswer:
    return RawAnswer(_guarded(_list_stream(config)), EVENT_STREAM, headers=HEADERS)


def waiting(changes: Changes, deadline: float) -> Iterator[bytes | set[str]]:
    """Keepalives while nothing changes, then the ids that changed; ends at the deadline."""
    while (remaining := deadline - time.monotonic()) > 0:
        ids = changes.take(min(KEEPALIVE_S, remaining))
        if ids is None:
            yield b": keepalive\n\n"
        else:
            yield ids


def _conversation_stream(
    config: Settings, conversation_id: str, first: dict[str, Any]
) -> Iterator[bytes]:
    deadline = time.monotonic() + LIFETIME_S
    yield f"retry: {RETRY_MS}\n\n".encode()
    yield frame("conversation", first)
    if over(first):
        yield frame("end", {"reason": "over"})
        return
    shown = first
    with conversation_changes(config.project, conversation_id) as changes:
        for item in waiting(changes, deadline):
            if isinstance(item, bytes):
                yield item
                continue
            view = read_conversation(config, conversation_id)
            if view != shown:
                shown = view
                yield frame("conversation", view)
            if over(view):
                yield frame("end", {"reason": "over"})
                return
    yield frame("end", {"reason": "time"})


def _list_stream(config: Settings) -> Iterator[bytes]:
    deadline = time.monotonic() + LIFETIME_S
    yield f"retry: {RETRY_MS}\n\n".encode()
    with recent_conversation_changes(config.project, RECENT) as changes:
        changes.take(KEEPALIVE_S)  # the listener's first report: the list as it is now
        yield frame("conversations", conversation_list(config).model_dump(mode="json"))
        for item in waiting(changes, deadline):
            if isinstance(item, bytes):
                yield item
                continue
            for conversation_id in sorted(item):
                summary = summary_of(config, conversation_id)
                if summary is not None:
                    yield frame("summary", summary.model_dump(mode="json"))
    yield frame("end", {"reason": "time"})


def _guarded(stream: Iterator[bytes]) -> Iterator[bytes]:
    """A stream that fails half-way ends with an `error` event saying why, not a cut socket."""
    try:
        yield from stream
    except AgentlobbyError as exc:
        log.warning("event stream ended by an error: %s", exc)
        yield frame("error", {"error": f"{exc}; the page reconnects"})
