"""Crash points: SIGKILL a server where losing or repeating work is most likely, then check that
every conversation around it ends exact, and how long it took once the server served again.

- the coder in the middle of its model call (the call's reply is delayed, the retry is fast):
  its claim must lapse, the sweeper must redrive, and the model must not be asked a third time;
- the interpreter while the sandbox runs a program that sleeps, and the sandbox itself during a
  run: one execution result, never two;
- the user function while posts are in flight: a post that got a 2xx is never lost, and a post
  that failed and is retried with the same Idempotency-Key never makes a second conversation;
- each agent's whole server at a random moment of a small load.
The stack restarts a killed server (as Cloud Run starts a new instance); nothing else helps.
"""

from __future__ import annotations

import concurrent.futures
import functools
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from google.cloud.firestore_v1.base_query import FieldFilter

from agentlobby.store.claims import Claim, Claims
from agentlobby.store.clients import firestore_client
from stress.expect import (
    SLEEPY_ADD,
    Tracked,
    Work,
    await_final,
    chat_work,
    coding_work,
    post_all,
    python_block,
    rules_of,
)
from stress.harness import Harness, PostFailed
from stress.outcome import conversation_row
from stress.plan import (
    AGENTS,
    INTERPRETER_RUN,
    MODEL_CALL,
    SANDBOX_RUN,
    SERVER,
    USER_POST,
    Plan,
)
from stress.table import Row

CRASH_SETTLE_S = 5.0  # a redelivery or a redrive after the crash has time to land
DETECT_TIMEOUT_S = 60.0
MODEL_DELAY_MS = 120_000
RETRY_FOR_S = 90.0
TOKEN = re.compile(r"tok[0-9a-f]{10}")  # expect.token()
SPREAD_S = 4.0  # the small load of a random server kill is posted over this long


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for point in plan.crash_points:
        if point == SERVER:
            for agent in plan.kill_agents or (rng.choice(AGENTS),):
                kill = functools.partial(_server_at_random, h, plan, rng, agent)
                rows.append(_guarded(f"crash: {agent} server", h, kill))
        else:
            rows.append(_guarded(f"crash: {point}", h, functools.partial(POINTS[point], h, plan)))
    return rows


def _guarded(name: str, h: Harness, scenario: Callable[[], Row]) -> Row:
    before = dict(h.stack.restarts)
    try:
        row = _note_reruns(h, scenario())
    except Exception as exc:  # one broken crash point must not hide the others
        row = Row(scenario=name, passed=False, notes=[f"{type(exc).__name__}: {exc}"])
    restarted = {k: n - before.get(k, 0) for k, n in h.stack.restarts.items()}
    if sum(restarted.values()) != 1:  # only the server this point killed
        shown = ", ".join(f"{k} x{n}" for k, n in sorted(restarted.items()) if n)
        row.fail(f"servers restarted: {shown or 'none'}; expected only the one killed")
    return row


def _note_reruns(h: Harness, row: Row) -> Row:
    """Say how many coding tasks asked the model again: the cost of a crash, not a fault."""
    asked = Counter(
        found.group(0)
        for r in h.model_requests()
        if r.get("agent") == "coder" and (found := TOKEN.search(str(r.get("last_user_text"))))
    )
    again = sum(1 for n in asked.values() if n > 1)
    if again:
        row.notes.append(f"{again} coding task(s) asked the model more than once (a coder died)")
    return row


def _around(plan: Plan) -> list[Work]:
    """The small load posted with every crash point: a fault must not touch the others."""
    return [coding_work(rerun=True) for _ in range(plan.crash_coding)] + [
        chat_work() for _ in range(plan.crash_chats)
    ]


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float = DETECT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.05)


def _model_call(h: Harness, plan: Plan) -> Row:
    code = python_block("def add(a, b):\n    return a + b\n")
    crash = coding_work(replies=[{"delay_ms": MODEL_DELAY_MS, "content": code}, {"content": code}])
    works = [crash, *_around(plan)]
    h.play(rules_of(works))
    started = time.time()
    tracked, failed = post_all(h, works)

    def in_call() -> bool:  # the delayed request arrived and is not answered yet
        return any(
            crash.token in str(r.get("last_user_text")) and r.get("status") is None
            for r in h.model_requests()
        )

    _wait("the coder's delayed model call", in_call)
    serving = h.serving_again("coder", h.kill("coder"))
    row = conversation_row(
        f"crash: {MODEL_CALL}",
        await_final(h, tracked, plan.final_timeout_s, CRASH_SETTLE_S),
        h,
        started,
        serving,
    )
    for failure in failed:
        row.fail(failure)
    asked = [r for r in h.model_requests() if crash.token in str(r.get("last_user_text"))]
    if len(asked) != 2:
        row.fail(f"the model was asked {len(asked)} times for the crashed task; expected 2")
    return row


def _sandbox_run(h: Harness, plan: Plan, target: str, label: str) -> Row:
    """Kill `target` while the sandbox runs the crash task's program (it sleeps 6 s)."""
    crash = coding_work(replies=[python_block(SLEEPY_ADD)])
    works = [crash, *_around(plan)]
    h.play(rules_of(works))
    started = time.time()
    tracked, failed = post_all(h, works)
    crash_id = next(t.conversation_id for t in tracked if t.work is crash)
    claims = Claims(h.project)
    code_ids: list[str] = []

    def running() -> bool:  # the interpreter holds the code message: the sandbox call is on
        if not code_ids:
            view = h.view(crash_id)
            code_ids.extend(m.id for m in (view.messages if view else []) if m.kind == "code")
        return bool(code_ids) and claims.progress("interpreter", code_ids[0]) is Claim.BUSY

    _wait("the interpreter's sandbox run", running)
    time.sleep(1.5)  # well inside the program's sleep
    serving = h.serving_again(target, h.kill(target))
    row = conversation_row(
        f"crash: {label}",
        await_final(h, tracked, plan.final_timeout_s, CRASH_SETTLE_S),
        h,
        started,
        serving,
    )
    for failure in failed:
        row.fail(failure)
    return row


def _interpreter_run(h: Harness, plan: Plan) -> Row:
    return _sandbox_run(h, plan, "interpreter", INTERPRETER_RUN)


def _sandbox_server_run(h: Harness, plan: Plan) -> Row:
    return _sandbox_run(h, plan, "sandbox", SANDBOX_RUN)


class _Posts:
    """Posts with Idempotency-Keys from many threads, each retried with its key until a 2xx;
    what each key was answered, and how many posts failed before the retry that worked."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.lock = threading.Lock()
        self.answered = 0
        self.first_try_ok = 0
        self.retried = 0
        self.conversations: dict[str, set[str]] = {}

    def post(self, work: Work, key: str) -> Tracked:
        deadline = time.monotonic() + RETRY_FOR_S
        first = True
        while True:
            try:
                posted = self.h.post(work.lobby, work.body, key=key, timeout_s=10.0)
                break
            except PostFailed as exc:
                if (exc.status is not None and exc.status < 500) or time.monotonic() > deadline:
                    raise
                with self.lock:
                    self.retried += first
                first = False
                time.sleep(0.3)
        with self.lock:
            self.answered += 1
            self.first_try_ok += first
            self.conversations.setdefault(key, set()).add(posted.conversation_id)
        return Tracked(work, posted.conversation_id)


def _user_post(h: Harness, plan: Plan) -> Row:
    n = plan.posts_during_user_crash
    works = [coding_work(rerun=True) if i % 4 == 0 else chat_work() for i in range(n)]
    h.play(rules_of(works))
    posts = _Posts(h)
    started = time.time()
    since = datetime.now(UTC).isoformat()
    serving: list[float] = []

    def killer() -> None:  # once a quarter of the posts are answered: others are in flight
        _wait("a quarter of the posts answered", lambda: posts.answered >= n // 4)
        serving.append(h.serving_again("user", h.kill("user")))

    kill = threading.Thread(target=killer, daemon=True)
    kill.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tracked = list(pool.map(lambda w: posts.post(w, uuid.uuid4().hex), works))
    kill.join(timeout=DETECT_TIMEOUT_S)
    row = conversation_row(
        f"crash: {USER_POST}",
        await_final(h, tracked, plan.final_timeout_s, CRASH_SETTLE_S),
        h,
        started,
        serving[0] if serving else None,
    )
    if not serving:
        row.fail("the user server was never killed")
    row.notes.append(
        f"{n} posts: {posts.first_try_ok} answered 2xx at once, {posts.retried} failed and "
        "were retried with their Idempotency-Key"
    )
    split = [key for key, ids in posts.conversations.items() if len(ids) > 1]
    if split:
        row.fail(f"{len(split)} keys were answered with more than one conversation")
        row.duplicated += len(split)
    made = _conversations_since(h, since)
    if made != n:
        row.fail(f"{made} conversations were created for {n} posts")
        row.duplicated += max(0, made - n)
    return row


def _conversations_since(h: Harness, since: str) -> int:
    """Conversations created since `since` in the lobbies the posts went to."""
    query = (
        firestore_client(h.project)
        .collection("conversations")
        .where(filter=FieldFilter("created_at", ">=", since))
    )
    return sum(1 for snap in query.stream() if snap.get("lobby") in ("chat", "coding"))


def _server_at_random(h: Harness, plan: Plan, rng: random.Random, agent: str) -> Row:
    """The small load is posted as a stream over SPREAD_S, and the server is killed at a random
    moment inside it: some steps are under way, some come after, whatever the machine's speed."""
    works = _around(plan)
    rng.shuffle(works)
    h.play(rules_of(works))
    at = rng.uniform(0.1, 0.9) * SPREAD_S
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(1) as poster:
        posting = poster.submit(_stream, h, works)
        time.sleep(max(0.0, started + at - time.time()))
        serving = h.serving_again(agent, h.kill(agent))
        tracked, failed = posting.result()
    row = conversation_row(
        f"crash: {agent} server at +{at:.1f}s",
        await_final(h, tracked, plan.final_timeout_s, CRASH_SETTLE_S),
        h,
        started,
        serving,
    )
    for failure in failed:
        row.fail(failure)
    return row


def _stream(h: Harness, works: list[Work]) -> tuple[list[Tracked], list[str]]:
    """Post one work every SPREAD_S / len(works) seconds."""
    tracked: list[Tracked] = []
    failed: list[str] = []
    for work in works:
        done, errors = post_all(h, [work], threads=1)
        tracked += done
        failed += errors
        time.sleep(SPREAD_S / len(works))
    return tracked, failed


POINTS: dict[str, Callable[[Harness, Plan], Row]] = {
    MODEL_CALL: _model_call,
    INTERPRETER_RUN: _interpreter_run,
    SANDBOX_RUN: _sandbox_server_run,
    USER_POST: _user_post,
}
