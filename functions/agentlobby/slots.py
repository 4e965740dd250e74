"""A concurrency limit that holds across every instance of an agent: leased slots in Firestore.

`limits/{agent}/slots/{n}` exists while slot n is held. A slot is taken with create() (fails
if held) and released with delete(); a holder that died leaves a lease that expires, after
which the slot is taken over with an update-time precondition. No transactions: the emulator
serialises contended transactions at seconds each (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from agentlobby.backends import firestore_client
from agentlobby.errors import ModelUnavailable
from agentlobby.messages import now

log = logging.getLogger(__name__)


class Slots:
    def __init__(self, project: str, agent: str, size: int, lease_s: float) -> None:
        self._db = firestore_client(project)
        self.agent = agent
        self.size = size
        self.lease_s = lease_s

    def _doc(self, index: int) -> Any:
        return (
            self._db.collection("limits")
            .document(self.agent)
            .collection("slots")
            .document(str(index))
        )

    def _try_take(self, index: int, holder: str) -> bool:
        from google.api_core import exceptions

        ref = self._doc(index)
        body = {
            "holder": holder,
            "lease_until": (now() + timedelta(seconds=self.lease_s)).isoformat(),
        }
        try:
            ref.create(body)
            return True
        except exceptions.AlreadyExists:
            pass
        snap = ref.get()
        current = snap.to_dict() if snap.exists else None
        if current is None:
            return False  # released just now: the next round takes it
        if datetime.fromisoformat(current["lease_until"]) > now():
            return False
        try:
            ref.update(body, option=self._db.write_option(last_update_time=snap.update_time))
            log.warning(
                "took over expired slot %s/%d from %s", self.agent, index, current["holder"]
            )
            return True
        except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
            return False

    @contextlib.contextmanager
    def hold(self, max_wait_s: float) -> Iterator[int]:
        """Hold one slot for the block; ModelUnavailable (transient) if none frees in time."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + max_wait_s
        delay = 0.05
        order = list(range(self.size))
        while True:
            random.shuffle(order)
            taken = next((i for i in order if self._try_take(i, holder)), None)
            if taken is not None:
                break
            if time.monotonic() >= deadline:
                raise ModelUnavailable(
                    f"all {self.size} model slots of {self.agent} stayed busy for {max_wait_s:.0f}s"
                )
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)
        try:
            yield taken
        finally:
            self._release(taken, holder)

    def _release(self, index: int, holder: str) -> None:
        ref = self._doc(index)
        snap = ref.get()
        if snap.exists and snap.get("holder") == holder:
            ref.delete(option=self._db.write_option(last_update_time=snap.update_time))
