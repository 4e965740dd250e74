"""Leases on Firestore documents: taken once, taken over only when the holder's lease ran out.

Delivery claims (claims.py) and model slots (slots.py) both hold a document for as long as a
piece of work runs: a short lease, renewed by a Heartbeat while the work goes on. A lease is
taken with create() (fails if the document exists) and taken over with an update-time
precondition once `lease_until` has passed, so two takers never both win. No transactions:
the emulator serialises contended ones at seconds each (docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agentlobby.messages import now

log = logging.getLogger(__name__)


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


def let_go(
    db: Any, ref: Any, holder: str, *, delete: bool, note: dict[str, Any] | None = None
) -> None:
    """End a lease this holder still has: delete the document, or expire its lease (writing
    `note` beside it) so the next taker need not wait it out. A lease taken over meanwhile is
    not ours and stays."""
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
            ref.update({"lease_until": now().isoformat(), **(note or {})}, option=option)
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        pass  # changed meanwhile: taken over, so no longer ours


def extend(db: Any, ref: Any, holder: str, lease_s: float) -> bool:
    """Push a lease this holder still has `lease_s` further; False once it is not ours."""
    from google.api_core import exceptions

    snap = ref.get()
    found = snap.to_dict() if snap.exists else None
    if not found or found.get("holder") != holder or not is_live(found):
        return False
    try:
        ref.update(
            {"lease_until": until(lease_s)},
            option=db.write_option(last_update_time=snap.update_time),
        )
        return True
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        return False


class Heartbeat:
    """Keeps a lease alive while its holder works: a daemon thread extends it every third of
    `lease_s`. A holder that dies stops renewing, so its lease lapses within `lease_s` and the
    work is taken over in seconds, not after the longest a handler could ever run."""

    def __init__(self, db: Any, ref: Any, holder: str, lease_s: float) -> None:
        self._args = (db, ref, holder, lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        from google.api_core import exceptions

        db, ref, holder, lease_s = self._args
        while not self._stop.wait(lease_s / 3):
            try:
                if not extend(db, ref, holder, lease_s):
                    log.warning("lease %s was taken over: no longer renewing it", ref.id)
                    return
            except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
                log.warning("could not renew lease %s (will try again): %s", ref.id, exc)
