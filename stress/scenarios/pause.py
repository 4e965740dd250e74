"""A paused database: SIGSTOP the Firestore emulator (gcloud and its JVM, the whole process
group) while coding tasks run, then SIGCONT.

A stopped process is worse than a dead one: connections stay open and calls hang instead of
failing, as with a network partition or a stalled instance. The pause starts once every task
is under way, with each coder waiting on its model (the model answers after MODEL_DELAY_MS):
answers arrive during the pause, claims cannot be renewed, and every step caught in that state
must time out, give its claim back or let it lapse, and be redelivered or redriven. Afterwards
every task must still end exact.
"""

from __future__ import annotations

import random
import signal
import time

from stress.expect import GOOD_ADD, await_final, coding_work, post_all, python_block, rules_of
from stress.harness import Harness
from stress.outcome import conversation_row
from stress.plan import Plan
from stress.table import Row

FIRESTORE = "firestore-emulator"
MODEL_DELAY_MS = 2_000
UNDER_WAY_TIMEOUT_S = 30.0


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    slow = {"delay_ms": MODEL_DELAY_MS, "content": python_block(GOOD_ADD)}
    works = [coding_work(replies=[slow], rerun=True) for _ in range(plan.pause_tasks)]
    h.play(rules_of(works))
    started = time.time()
    tracked, failed = post_all(h, works)
    _until_coders_wait(h, len(tracked))
    h.signal_group(FIRESTORE, signal.SIGSTOP)
    try:
        time.sleep(plan.pause_s)
    finally:
        h.signal_group(FIRESTORE, signal.SIGCONT)
    resumed = time.time()
    verdicts = await_final(h, tracked, plan.final_timeout_s)
    row = conversation_row(
        f"pause: Firestore stopped {plan.pause_s:.0f}s, {plan.pause_tasks} coding",
        verdicts,
        h,
        started,
        resumed,
    )
    for failure in failed:
        row.fail(failure)
    asked = len([r for r in h.model_requests() if r.get("agent") == "coder"])
    row.notes.append(f"the coder's model was asked {asked} times for {len(tracked)} tasks")
    return [row]


def _until_coders_wait(h: Harness, tasks: int) -> None:
    """Until the coder's model holds two requests (the coder's concurrency; the other tasks wait
    for a model slot), or the time is up: the pause starts in the middle of the work."""
    deadline = time.monotonic() + UNDER_WAY_TIMEOUT_S
    while time.monotonic() < deadline:
        waiting = [r for r in h.model_requests() if r.get("status") is None]
        if len(waiting) >= min(2, tasks):
            return
        time.sleep(0.05)
