"""Loops: agents that answer each other, in a lobby of their own, served from stress/agents/.

Depth: ping and pong answer each other once per message, so one chain grows a hop at a time
until the hop limit (AGENTLOBBY_MAX_HOPS) stops it. Breadth: fan and fan_twin answer every
message twice, so the conversation doubles at each hop until the message limit
(AGENTLOBBY_MAX_MESSAGES) stops it. Either way the conversation must end `failed` with a reason
naming both agents, and hold no more messages than the documented bound: without the limits
these loops would run (and, with a real model, bill) forever.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from agentlobby.config import Settings
from agentlobby.messages import now
from agentlobby.store import membership
from agentlobby.store.registry import AgentRecord, Registry
from local_emulator import processes
from local_emulator.stack import free_port
from stress.harness import REPO, Harness
from stress.plan import Plan
from stress.table import Row

AGENTS_MAIN = REPO / "stress" / "agents" / "main.py"
SERVER_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 180.0
SETTLE_S = 5.0  # replies under way when it stopped land by then
REPLIES_PER_RUN = 2  # a fan's handler run adds two messages


@contextmanager
def serve(target: str, h: Harness, log_dir: Path) -> Iterator[str]:
    """One functions-framework server for an entry point of stress/agents/main.py."""
    port = free_port()
    argv = [
        sys.executable, "-m", "functions_framework",
        "--target", target,
        "--source", str(AGENTS_MAIN),
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AGENTLOBBY_")}
    env = {
        **keep,
        **h.info.client_environment(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    child = processes.start(f"function-stress-{target}", argv, env, log_dir)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_http(child, url + "/healthz", SERVER_START_TIMEOUT_S)
        yield url
    finally:
        processes.stop([child])


@contextmanager
def lobby_of(settings: Settings, agents: dict[str, str]) -> Iterator[str]:
    """A fresh lobby with these agents (name -> URL) registered and entered; they leave it."""
    lobby = f"stress-{secrets.token_hex(4)}"
    membership.create_lobby(settings, lobby)
    registry = Registry(settings.project)
    for name, url in agents.items():
        registry.put_agent(
            AgentRecord(name=name, endpoint=url, listens_to=("text",), registered_at=now())
        )
    try:
        for name in agents:
            membership.enter(settings, name, lobby)
        yield lobby
    finally:
        for name in agents:
            membership.leave(settings, name, lobby)


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    settings = h.settings()
    log_dir = Path(h.stack.log_dir)
    loops = [
        ("depth", ("ping", "pong"), settings.max_hops + 1, "AGENTLOBBY_MAX_HOPS"),
        (
            "breadth",
            ("fan", "fan_twin"),
            settings.max_messages + 2 * REPLIES_PER_RUN,
            "AGENTLOBBY_MAX_MESSAGES",
        ),
    ]
    rows = []
    for kind, names, bound, limit in loops:
        with ExitStack() as servers:
            urls = {name: servers.enter_context(serve(name, h, log_dir)) for name in names}
            lobby = servers.enter_context(lobby_of(settings, urls))
            rows.append(_loop(h, f"loop: {kind} ({' + '.join(names)})", lobby, names, bound, limit))
    return rows


def _loop(
    h: Harness, scenario: str, lobby: str, names: tuple[str, ...], bound: int, limit: str
) -> Row:
    started = time.time()
    posted = h.post(lobby, {"text": "start"})
    deadline = time.monotonic() + STOP_TIMEOUT_S
    view = h.view(posted.conversation_id)
    while (view is None or view.status != "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        view = h.view(posted.conversation_id)
    stopped = time.time()
    time.sleep(SETTLE_S)
    view = h.view(posted.conversation_id) or view
    row = Row(scenario=scenario, total=1, final=0, exact=0)
    if view is None or view.status != "failed":
        row.lost = 1
        row.fail(f"not stopped within {STOP_TIMEOUT_S:.0f}s")
        return row
    row.final = 1
    count = len(view.messages)
    reason = view.reason or ""
    row.p50_s = row.p95_s = stopped - started
    row.per_s = h.handled({posted.conversation_id}) / max(0.001, stopped - started)
    row.notes.append(f"stopped at {count} messages (bound {bound}, {limit}): {reason[:200]}")
    named = all(re.search(rf"\b{name}\b", reason) for name in names)
    if not named:
        row.fail(f"the reason does not name {' and '.join(names)}")
    if count > bound:
        row.fail(f"{count} messages, past the bound of {bound}")
    row.exact = int(named and count <= bound)
    return row
