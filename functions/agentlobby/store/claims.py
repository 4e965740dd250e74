"""Delivery claims: each (agent, message) is handled to completion once, despite redeliveries.

`deliveries/{agent}__{message_id}` records `done` after the replies are stored and published.
An agent whose handling is expensive (a model call, running code) also takes a claim with a
lease before it starts, so a duplicate that arrives meanwhile waits instead of doing the work
again; a claim whose holder died expires after the lease and the next delivery takes it over
(leases.py).
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from typing import Any

from agentlobby.messages import now
from agentlobby.store import leases
from agentlobby.store.clients import firestore_client, translated

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 1_000


class Claim(enum.Enum):
    TAKEN = "taken"  # this call may do the work
    DONE = "done"  # finished earlier: acknowledge and do nothing
    BUSY = "busy"  # another live instance is on it: let Pub/Sub retry later


@translated
class Claims:
    """One delivery's view of the claims: its own holder id, so it releases only its claim."""

    def __init__(self, project: str) -> None:
        self._db = firestore_client(project)
        self._holder = leases.new_holder()
        # Which start of this (agent, message) the claim or start() made: 1, then 2 after a
        # redelivery or a redrive took it up again. What the logs call delivery_attempt.
        self.attempt: int | None = None

    def _doc(self, agent: str, message_id: str) -> Any:
        return self._db.collection("deliveries").document(f"{agent}__{message_id}")

    def is_done(self, agent: str, message_id: str) -> bool:
        snap = self._doc(agent, message_id).get()
        return bool(snap.exists and snap.get("state") == "done")

    def progress(self, agent: str, message_id: str) -> Claim | None:
        """How a delivery stands, seen from outside: DONE, BUSY (a live claim holds it), or
        None (never started, or its holder died). A dead letter of a duplicate that was told
        to wait while another delivery worked loses nothing unless this says None."""
        snap = self._doc(agent, message_id).get()
        return _progress(snap.to_dict() if snap.exists else None)

    def claim(self, agent: str, message_id: str, lease_s: float) -> Claim:
        body = {
            "agent": agent,
            "message_id": message_id,
            "state": "running",
            "holder": self._holder,
            "lease_until": leases.until(lease_s),
            "attempts": 1,
        }
        attempt = leases.take(
            self._db,
            self._doc(agent, message_id),
            body,
            may_take_over=lambda found: found.get("state") != "done",
            on_take_over=lambda found: {"attempts": int(found.get("attempts", 1)) + 1},
        )
        if attempt.taken:
            self.attempt = 1 if attempt.found is None else int(attempt.found.get("attempts", 1)) + 1
            return Claim.TAKEN
        if attempt.found is not None and attempt.found.get("state") == "done":
            return Claim.DONE
        return Claim.BUSY

    def start(self, agent: str, message_id: str) -> bool:
        """For an agent without claims: False when the delivery is done; else count this start
        (an Increment, so nothing is lost) and set `attempt`. Two copies running at once may
        both read the same count: they are duplicates of one attempt anyway."""
        from google.cloud import firestore

        ref = self._doc(agent, message_id)
        snap = ref.get()
        found = snap.to_dict() if snap.exists else {}
        if found.get("state") == "done":
            return False
        ref.set(
            {"agent": agent, "message_id": message_id, "attempts": firestore.Increment(1)},
            merge=True,
        )
        self.attempt = int(found.get("attempts", 0)) + 1
        return True

    def kept(self, agent: str, message_id: str, lease_s: float) -> leases.Heartbeat:
        """Renew this delivery's claim while the block runs (a context manager)."""
        return leases.Heartbeat(self._db, self._doc(agent, message_id), self._holder, lease_s)

    def release(self, agent: str, message_id: str, error: str | None = None) -> None:
        """Expire a claim this delivery holds, so the redelivery of a failed attempt takes it
        over at once instead of waiting out the lease as BUSY; `error` is kept for the dead
        letter or the sweeper's reason, should the attempts run out."""
        from google.api_core import exceptions

        note = {"last_error": error[:MAX_ERROR_CHARS]} if error else None
        ref = self._doc(agent, message_id)
        try:
            leases.let_go(self._db, ref, self._holder, delete=False, note=note)
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
            log.warning("could not release the claim on %s for %s: %s", message_id, agent, exc)

    def last_error(self, agent: str, message_id: str) -> str | None:
        """The error the last failed attempt left on the claim, if any."""
        snap = self._doc(agent, message_id).get()
        error = (snap.to_dict() or {}).get("last_error") if snap.exists else None
        return str(error) if error else None

    def progress_of(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Claim | None]:
        """progress() of many (agent, message id) pairs in one round trip."""
        if not pairs:
            return {}
        refs = [self._doc(agent, message_id) for agent, message_id in pairs]
        snaps = self._db.get_all(refs)
        found = {snap.reference.id: snap.to_dict() for snap in snaps if snap.exists}
        return {pair: _progress(found.get(f"{pair[0]}__{pair[1]}")) for pair in pairs}

    def count_redrive(self, message_id: str, every_s: float) -> int | None:
        """Count one more redrive of a message by the sweeper and return the count so far, or
        None when the last one was less than `every_s` ago (give it time to land)."""
        from google.cloud import firestore

        ref = self._db.collection("redrives").document(message_id)
        snap = ref.get()
        last = (snap.to_dict() or {}).get("at") if snap.exists else None
        if last is not None and str(last) > (now() - timedelta(seconds=every_s)).isoformat():
            return None
        ref.set({"count": firestore.Increment(1), "at": now().isoformat()}, merge=True)
        return int(ref.get().get("count"))

    def given_up_among(self, message_ids: list[str]) -> set[str]:
        """Which of these messages the sweeper gave up on, in one round trip."""
        if not message_ids:
            return set()
        refs = [self._db.collection("redrives").document(i) for i in message_ids]
        return {
            snap.reference.id
            for snap in self._db.get_all(refs)
            if snap.exists and (snap.to_dict() or {}).get("given_up")
        }

    def give_up(self, message_id: str) -> None:
        ref = self._db.collection("redrives").document(message_id)
        ref.set({"given_up": True, "at": now().isoformat()}, merge=True)

    def finish(self, agent: str, message_id: str) -> None:
        self._doc(agent, message_id).set(
            {
                "agent": agent,
                "message_id": message_id,
                "state": "done",
                "done_at": now().isoformat(),
            }
        )


def _progress(found: dict[str, Any] | None) -> Claim | None:
    current = found or {}
    if current.get("state") == "done":
        return Claim.DONE
    if current.get("state") == "running" and leases.is_live(current):
        return Claim.BUSY
    return None
