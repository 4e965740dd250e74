"""Poison: garbage bytes with hostile attributes published straight to every lobby topic and to
the dead-letter topic, as a buggy or malicious publisher would.

Each agent must record one dead letter per poison message and acknowledge it: a 500 would make
Pub/Sub redeliver it forever (a function failing repeatedly), and an attribute used unchecked as
a document key ('/' splits a Firestore path, 2000 characters are past a key's limit, non-ASCII)
would crash the very code that records the problem. The functions' logs are read before and
after to show nothing kept failing.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from agentlobby.store.clients import firestore_client, publisher_client
from agentlobby.store.lobbies import DEAD_LETTER_TOPIC, topic_path
from agentlobby.store.registry import Registry
from stress.harness import Harness
from stress.plan import Plan
from stress.table import Row

FIELD_CHARS = 200  # dead_letters.MAX_FIELD_CHARS: attributes are cut to this when stored
RECORD_TIMEOUT_S = 60.0
SETTLE_S = 6.0  # a failing push is redelivered within the emulator's 1-10 s backoff
FAILURE_MARKS = ("Traceback (most recent call last)", "Exception on ")


def hostile_ids(tag: str) -> list[str]:
    """Message ids a document path cannot take as they are."""
    return [
        f"{tag}/a/b/../../c",
        f"{tag}" + "x" * 2_000,
        f"{tag} caf\u00e9 \u2603 \u65e5\u672c \u202e\u0627\u0644",
    ]


def _attributes(hostile: str, dead_letter: bool) -> dict[str, str]:
    attributes = {
        "message_id": hostile,
        "conversation_id": hostile,
        "lobby": "\u2603" * 40,
        "sender": "../user",
        "kind": "task\u200b",
    }
    if dead_letter:
        attributes["CloudPubSubDeadLetterSourceSubscription"] = (
            f"projects/x/subscriptions/{hostile}"
        )
        attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = "\u221e"
    return attributes


def _failures(h: Harness) -> dict[str, tuple[int, int]]:
    """Per function: ERROR lines, and lines that show a request failed (a traceback, Flask's
    'Exception on ...', which answers 500)."""
    counts = {}
    for name, lines in h.function_logs().items():
        errors = sum('"severity": "ERROR"' in line for line in lines)
        failed = sum(any(mark in line for mark in FAILURE_MARKS) for line in lines)
        counts[name] = (errors, failed)
    return counts


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    registry = Registry(h.project)
    topics: list[tuple[str, list[str | None]]] = [
        (lobby.name, list(registry.members(lobby.name))) for lobby in registry.lobbies()
    ]
    topics.append((DEAD_LETTER_TOPIC, [None]))  # recorded by dead_letters, agent unknown
    before = _failures(h)
    expected: dict[str, list[str | None]] = {}
    futures = []
    for index, (topic, agents) in enumerate(topics):
        for hostile in hostile_ids(f"poison{index}-{rng.getrandbits(32):08x}"):
            data = rng.randbytes(120) + b"\xff\xfe{not json"
            attributes = _attributes(hostile, topic == DEAD_LETTER_TOPIC)
            futures.append(
                publisher_client().publish(topic_path(h.project, topic), data, **attributes)
            )
            expected[hostile[:FIELD_CHARS]] = agents
    for future in futures:
        future.result(timeout=30)
    wanted = sum(len(agents) for agents in expected.values())
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    while time.monotonic() < deadline and _found(h, expected)[0] < wanted:
        time.sleep(0.5)
    time.sleep(SETTLE_S)
    found, once, extra = _found(h, expected)
    settled = _failures(h)
    time.sleep(SETTLE_S)
    after = _failures(h)
    row = Row(
        scenario=f"poison: {len(expected)} messages to {len(topics)} topics",
        lost=wanted - found,
        duplicated=(found - once) + extra,
    )
    row.notes.append(
        f"{found} of {wanted} dead-letter records (one per agent per message), {once} "
        f"recorded exactly once, {extra} unexpected"
    )
    if row.lost or row.duplicated:
        row.passed = False
    for name in sorted(after):
        errors = after[name][0] - before.get(name, (0, 0))[0]
        failed = after[name][1] - before.get(name, (0, 0))[1]
        still = after[name][0] - settled.get(name, (0, 0))[0]
        if failed or still:
            row.fail(
                f"{name}: {failed} failed requests, {errors} ERROR lines, {still} of them in "
                f"the last {SETTLE_S:.0f}s (failing repeatedly)"
            )
        elif errors:
            row.notes.append(f"{name}: {errors} ERROR lines, none repeating")
    return [row]


def _found(h: Harness, expected: dict[str, list[str | None]]) -> tuple[int, int, int]:
    """Records found for an expected (message, agent), those recorded exactly once, and
    records for an agent that should not have one."""
    letters = firestore_client(h.project).collection("dead_letters")
    found = once = extra = 0
    for message_id, agents in expected.items():
        query = letters.where(filter=FieldFilter("message_id", "==", message_id))
        docs: list[dict[str, Any]] = [snap.to_dict() for snap in query.stream()]
        per_agent = Counter(doc.get("agent") for doc in docs)
        for agent in agents:
            if per_agent[agent]:
                found += 1
                times = [int(d.get("times", 1)) for d in docs if d.get("agent") == agent]
                once += per_agent[agent] == 1 and times == [1]
        extra += sum(n for agent, n in per_agent.items() if agent not in agents)
    return found, once, extra
