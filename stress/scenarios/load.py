"""Load: many coding tasks and chats posted at once, on a stack where nothing goes wrong.

This is the baseline the fault scenarios are read against: it proves that concurrency alone
(claims, model slots, the emulator's push tick, Firestore contention) loses and repeats nothing,
and it measures the latency and throughput a fault then costs.
"""

from __future__ import annotations

import random
import time

from stress.expect import await_final, chat_work, coding_work, post_all, rules_of
from stress.harness import Harness
from stress.outcome import conversation_row
from stress.plan import Plan
from stress.table import Row


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    works = [coding_work() for _ in range(plan.load_coding)]
    works += [chat_work() for _ in range(plan.load_chats)]
    rng.shuffle(works)
    h.play(rules_of(works))
    started = time.time()
    tracked, failed_posts = post_all(h, works, threads=16)
    verdicts = await_final(h, tracked, plan.final_timeout_s)
    row = conversation_row(
        f"load: {plan.load_coding} coding + {plan.load_chats} chats", verdicts, h, started
    )
    for failure in failed_posts:
        row.fail(failure)
    calls = len([r for r in h.model_requests() if r.get("agent") == "coder"])
    if calls != plan.load_coding:
        row.notes.append(f"the coder asked the model {calls} times for {plan.load_coding} tasks")
    return [row]
