"""What each post must end as, and waiting until it does.

A post is `Work`: its body, the model rules it needs, and the exact transcript it must end with.
"Exact" is the whole promise at once: final, nothing missing (lost) and nothing twice
(duplicated). Conversations are judged from GET /conversations/{id}, as a user sees them, once
when they become final and again after a settle time, so a duplicate that lands late is caught.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentlobby.api.schema import ConversationView
from agentlobby.lifecycle import TERMINAL
from stress.harness import Harness, PostFailed

GOOD_ADD = "def add(a, b):\n    return a + b\n"
# Sleeps inside the sandbox long enough for a kill to land while it runs.
SLEEPY_ADD = "import time\n\ntime.sleep(6)\n\n\ndef add(a, b):\n    return a + b\n"
ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nprint('tests passed')\n"
CODING_ROUND = (
    ("user", "task"),
    ("vision", "spec"),
    ("coder", "code"),
    ("interpreter", "execution-result"),
    ("checker", "verdict"),
    ("checker", "result"),
)
CHAT = (("user", "text"), ("echo", "text"))
SETTLE_S = 3.0
POLL_S = 0.5
READERS = 4


def token() -> str:
    """A word only one post contains, so one post's model rules never answer another's."""
    return f"tok{secrets.token_hex(5)}"


def python_block(source: str) -> str:
    return f"Here is the program.\n\n```python\n{source}```\n"


@dataclass(frozen=True)
class Work:
    """One post: its lobby and body, the model rules it needs, and what it must end as."""

    lobby: str
    body: dict[str, Any]
    expected: tuple[tuple[str, str], ...]
    status: str
    token: str
    rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "coding" if self.lobby == "coding" else "chat"


def coding_work(replies: list[Any] | None = None, rerun: bool = False) -> Work:
    """A task with tests; the coder's model answers a correct program (or `replies`). With
    `rerun`, the answer is there a second time: a coder killed after the model answered but
    before it stored the code asks again, as it would ask a real model again."""
    tok = token()
    answers = replies or [python_block(GOOD_ADD)]
    return Work(
        lobby="coding",
        body={
            "text": f"Write add(a, b) that returns the sum of a and b. [{tok}]",
            "tests": ADD_TESTS,
        },
        expected=CODING_ROUND,
        status="succeeded",
        token=tok,
        rules=[{"agent": "coder", "match": tok, "replies": answers * (2 if rerun else 1)}],
    )


def chat_work() -> Work:
    tok = token()
    return Work(
        lobby="chat", body={"text": f"hello {tok}"}, expected=CHAT, status="open", token=tok
    )


def rules_of(works: list[Work]) -> list[dict[str, Any]]:
    return [rule for work in works for rule in work.rules]


@dataclass(frozen=True)
class Tracked:
    """A post that was answered 2xx: the conversation it must end exact."""

    work: Work
    conversation_id: str


@dataclass(frozen=True)
class Verdict:
    """How one conversation ended, as judged from its view."""

    tracked: Tracked
    final: bool
    exact: bool
    lost: bool
    duplicated: bool
    final_at: float | None  # wall clock of the last message, when final
    took_s: float | None  # from the post's message to the last one
    detail: str
    letters: int = 0  # dead letters recorded on the conversation


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def judge(tracked: Tracked, view: ConversationView | None) -> Verdict:
    work = tracked.work
    if view is None:
        return Verdict(tracked, False, False, True, False, None, None, "never readable")
    got = [(m.sender, m.kind) for m in view.messages]
    counts, wanted = Counter(got), Counter(work.expected)
    duplicated = any(n > wanted.get(pair, 0) for pair, n in counts.items())
    if work.kind == "coding":
        final = view.status in TERMINAL
    else:
        final = counts[("echo", "text")] >= 1 and view.status != "failed"
    missing = any(counts[pair] < n for pair, n in wanted.items())
    lost = not final or missing or view.status == "failed"
    exact = final and tuple(got) == work.expected and view.status == work.status
    stamps = [_stamp(m.created_at) for m in view.messages]
    final_at = max(stamps) if final and stamps else None
    took = final_at - min(stamps) if final_at is not None else None
    detail = ""
    if not exact:
        detail = (
            f"{work.kind} {tracked.conversation_id}: status {view.status}, "
            f"messages {[f'{s}/{k}' for s, k in got]}"
            + (f", reason: {view.reason[:300]}" if view.reason else "")
            + (f", {len(view.dead_letters)} dead letter(s)" if view.dead_letters else "")
        )
    letters = len(view.dead_letters)
    return Verdict(tracked, final, exact, lost, duplicated, final_at, took, detail, letters)


def post_all(h: Harness, works: list[Work], threads: int = 8) -> tuple[list[Tracked], list[str]]:
    """Post every work at once, as plain posts without an Idempotency-Key (the path most
    clients take); returns the answered posts and a line for each post that got no 2xx."""

    def one(work: Work) -> Tracked | str:
        try:
            posted = h.post(work.lobby, work.body)
        except PostFailed as exc:
            return f"a post to {work.lobby} failed: {exc}"
        return Tracked(work, posted.conversation_id)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, works))
    return (
        [r for r in results if isinstance(r, Tracked)],
        [r for r in results if isinstance(r, str)],
    )


def await_final(
    h: Harness, tracked: list[Tracked], timeout_s: float, settle_s: float = SETTLE_S
) -> list[Verdict]:
    """Poll until every conversation is final (or the time is up), wait `settle_s` for anything
    late, and judge each from a fresh read."""
    deadline = time.monotonic() + timeout_s
    pending = {t.conversation_id: t for t in tracked}
    with concurrent.futures.ThreadPoolExecutor(READERS) as pool:
        while pending and time.monotonic() < deadline:
            ids = list(pending)
            for cid, view in zip(ids, pool.map(h.view, ids), strict=True):
                if view is not None and judge(pending[cid], view).final:
                    del pending[cid]
            if pending:
                time.sleep(POLL_S)
        time.sleep(settle_s)
        return list(pool.map(lambda t: judge(t, _read(h, t.conversation_id)), tracked))


def _read(h: Harness, conversation_id: str) -> ConversationView | None:
    for _ in range(10):
        view = h.view(conversation_id)
        if view is not None:
            return view
        time.sleep(1.0)
    return None
