"""Delivery claims: each (agent, message) is handled to completion once, despite redeliveries.

`deliveries/{agent}__{message_id}` records `done` after the replies are stored and published.
An agent whose handling is expensive (a model call, running code) also takes a claim with a
lease before it starts, so a duplicate that arrives meanwhile waits instead of doing the work
again; a claim whose holder died expires after the lease and the next delivery takes it over.
Claims are taken with create() and taken over with an update-time precondition: no
transactions, which the emulator serialises badly (see docs/architecture.md).
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from agentlobby.backends import firestore_client
from agentlobby.messages import now

log = logging.getLogger(__name__)


class Claim(enum.Enum):
    TAKEN = "taken"  # this call may do the work
    DONE = "done"  # finished earlier: acknowledge and do nothing
    BUSY = "busy"  # another live instance is on it: let Pub/Sub retry later


class Deliveries:
    """One delivery's view of the claims: its own holder id, so it releases only its claim."""

    def __init__(self, project: str) -> None:
        self._db = firestore_client(project)
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

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
        if current.get("state") == "running" and current.get("lease_until", "") > now().isoformat():
            return Claim.BUSY
        return None

    def claim(self, agent: str, message_id: str, lease_s: float) -> Claim:
        from google.api_core import exceptions

        ref = self._doc(agent, message_id)
        stamp = now()
        body = {
            "agent": agent,
            "message_id": message_id,
            "state": "running",
            "holder": self._holder,
            "lease_until": (stamp + timedelta(seconds=lease_s)).isoformat(),
            "attempts": 1,
        }
        try:
            ref.create(body)
            return Claim.TAKEN
        except exceptions.AlreadyExists:
            pass
        snap = ref.get()
        current = snap.to_dict() or {}
        if current.get("state") == "done":
            return Claim.DONE
        if current.get("lease_until", "") > stamp.isoformat():
            return Claim.BUSY
        body["attempts"] = int(current.get("attempts", 1)) + 1
        try:
            ref.update(body, option=self._db.write_option(last_update_time=snap.update_time))
            return Claim.TAKEN
        except (exceptions.FailedPrecondition, exceptions.Aborted):
            return Claim.BUSY

    def release(self, agent: str, message_id: str) -> None:
        """Expire a claim this delivery holds, so the redelivery of a failed attempt takes it
        over at once instead of waiting out the lease as BUSY."""
        from google.api_core import exceptions

        ref = self._doc(agent, message_id)
        try:
            snap = ref.get()
            current = snap.to_dict() if snap.exists else None
            if not current or current.get("state") != "running":
                return
            if current.get("holder") != self._holder:
                return  # taken over after our lease ran out: no longer ours
            ref.update(
                {"lease_until": now().isoformat()},
                option=self._db.write_option(last_update_time=snap.update_time),
            )
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
