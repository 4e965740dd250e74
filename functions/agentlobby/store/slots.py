"""A concurrency limit that holds across every instance of an agent: leased slots in Firestore.

`limits/{agent}/slots/{n}` exists while slot n is held. A slot is taken with create() (fails
if held) and released with delete(); a holder that died leaves a lease that expires, after
which the slot is taken over (leases.py). The holder renews its lease while the model call
runs, so a slot whose holder died is free again within the lease (SLOT_LEASE_S).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

from agentlobby.errors import ModelUnavailable
from agentlobby.store import leases
from agentlobby.store.clients import firestore_client, translated

log = logging.getLogger(__name__)


@translated
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

    def try_take(self, index: int, holder: str) -> bool:
        attempt = leases.take(
            self._db,
            self._doc(index),
            {"holder": holder, "lease_until": leases.until(self.lease_s)},
        )
        if attempt.taken and attempt.found is not None:
            log.warning(
                "took over expired slot %s/%d from %s", self.agent, index, attempt.found["holder"]
            )
        return attempt.taken

    @contextlib.contextmanager
    def hold(self, max_wait_s: float) -> Iterator[int]:
        """Hold one slot for the block; ModelUnavailable (transient) if none frees in time."""
        holder = leases.new_holder()
        deadline = time.monotonic() + max_wait_s
        delay = 0.05
        order = list(range(self.size))
        while True:
            random.shuffle(order)
            taken = next((i for i in order if self.try_take(i, holder)), None)
            if taken is not None:
                break
            if time.monotonic() >= deadline:
                raise ModelUnavailable(
                    f"all {self.size} model slots of {self.agent} stayed busy for {max_wait_s:.0f}s"
                )
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)
        try:
            with leases.Heartbeat(self._db, self._doc(taken), holder, self.lease_s):
                yield taken
        finally:
            self.release(taken, holder)

    def release(self, index: int, holder: str) -> None:
        leases.let_go(self._db, self._doc(index), holder, delete=True)
