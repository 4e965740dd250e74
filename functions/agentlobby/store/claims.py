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
from typing import Any

from agentlobby.messages import now
from agentlobby.store import leases
from agentlobby.store.clients import firestore_client, translated

log = logging.getLogger(__name__)


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
        current = (snap.to_dict() if snap.exists else None) or {}
        if current.get("state") == "done":
            return Claim.DONE
        if current.get("state") == "running" and leases.is_live(current):
            return Claim.BUSY
        return None

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
            return Claim.TAKEN
        if attempt.found is not None and attempt.found.get("state") == "done":
            return Claim.DONE
        return Claim.BUSY

    def release(self, agent: str, message_id: str) -> None:
        """Expire a claim this delivery holds, so the redelivery of a failed attempt takes it
        over at once instead of waiting out the lease as BUSY."""
        from google.api_core import exceptions

        try:
            leases.let_go(self._db, self._doc(agent, message_id), self._holder, delete=False)
        except exceptions.GoogleAPICallError as exc:
            log.warning("could not release the claim on %s for %s: %s", message_id, agent, exc)

    def finish(self, agent: str, message_id: str) -> None:
        self._doc(agent, message_id).set(
            {
                "agent": agent,
                "message_id": message_id,
                "state": "done",
                "done_at": now().isoformat(),
            }
        )
