"""Leases on Firestore documents: taken once, taken over only when the holder's lease ran out.

Delivery claims (claims.py) and model slots (slots.py) both hold a document for as long as a
piece of work runs. A lease is taken with create() (fails if the document exists) and taken
over with an update-time precondition once `lease_until` has passed, so two takers never both
win. No transactions: the emulator serialises contended ones at seconds each
(docs/architecture.md).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agentlobby.messages import now


def new_holder() -> str:
    """Who holds a lease: host, process and a random part, so each holder releases only its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def until(lease_s: float) -> str:
    return (now() + timedelta(seconds=lease_s)).isoformat()


def is_live(document: Mapping[str, Any]) -> bool:
    """Whether the lease in a document still runs (its holder may still be at work)."""
    return str(document.get("lease_until", "")) > now().isoformat()


@dataclass(frozen=True)
class Attempt:
    """How an attempt to take a lease went; `found` is the document met when not created."""

    taken: bool
    found: dict[str, Any] | None = None


def take(
    db: Any,
    ref: Any,
    body: dict[str, Any],
    *,
    may_take_over: Callable[[dict[str, Any]], bool] = lambda _found: True,
    on_take_over: Callable[[dict[str, Any]], dict[str, Any]] = lambda _found: {},
) -> Attempt:
    """Create `ref` with `body` (which holds `lease_until`), or take it over from a holder whose
    lease ran out and which `may_take_over` allows (adding `on_take_over`'s fields)."""
    from google.api_core import exceptions

    try:
        ref.create(body)
        return Attempt(taken=True)
    except exceptions.AlreadyExists:
        pass
    snap = ref.get()
    found = snap.to_dict() if snap.exists else None
    if found is None or is_live(found) or not may_take_over(found):
        return Attempt(taken=False, found=found)  # None: released just now, try again
    try:
        ref.update(
            body | on_take_over(found),
            option=db.write_option(last_update_time=snap.update_time),
        )
        return Attempt(taken=True, found=found)
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        return Attempt(taken=False, found=found)


def let_go(db: Any, ref: Any, holder: str, *, delete: bool) -> None:
    """End a lease this holder still has: delete the document, or expire its lease so the next
    taker need not wait it out. A lease taken over meanwhile is not ours and stays."""
    from google.api_core import exceptions

    snap = ref.get()
    found = snap.to_dict() if snap.exists else None
    if not found or found.get("holder") != holder:
        return
    option = db.write_option(last_update_time=snap.update_time)
    try:
        if delete:
            ref.delete(option=option)
        else:
            ref.update({"lease_until": now().isoformat()}, option=option)
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        pass  # changed meanwhile: taken over, so no longer ours
