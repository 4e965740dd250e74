"""Helpers for tests that wire their own lobbies and agents on the session stack.

Plain functions and context managers, no fixtures: each test says what it builds. Everything
started here is stopped in `finally`.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentlobby.config import Settings, load_settings
from agentlobby.messages import Envelope, now
from agentlobby.store import membership
from agentlobby.store.registry import AgentRecord, Registry
from agentlobby.store.tail import LobbyTail
from local_emulator import processes
from local_emulator.stack import free_port
from local_emulator.stack_state import StackInfo
from tests.support.paths import REPO

TEST_AGENTS_MAIN = Path(__file__).resolve().parent / "agents" / "main.py"
# The loop agents of the stress runs (fan, fan_twin, ping, pong), served as they are there.
STRESS_AGENTS_MAIN = Path(__file__).resolve().parents[2] / "stress" / "agents" / "main.py"
SERVER_START_TIMEOUT_S = 30.0


def new_lobby_name() -> str:
    return f"t-{secrets.token_hex(4)}"


def settings_for(info: StackInfo) -> Settings:
    """The settings a function of this stack reads, for calling the library in-process."""
    env = {"AGENTLOBBY_PROJECT": info.project, **info.client_environment()}
    return load_settings(env)


def stack_env(info: StackInfo, **extra: str) -> dict[str, str]:
    """Environment for a function server of this stack (what Stack gives its own servers)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AGENTLOBBY_")}
    return {
        **keep,
        **info.client_environment(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def create_lobby_with(settings: Settings, lobby: str, *agents: str) -> None:
    membership.create_lobby(settings, lobby)
    for agent in agents:
        membership.enter(settings, agent, lobby)


@contextmanager
def function_server(
    target: str, info: StackInfo, log_dir: Path, source: Path | None = None, **extra_env: str
) -> Iterator[str]:
    """Serve one entry point of `source` (default: the test agents, agents/main.py here);
    yields its base URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "functions_framework",
        "--target", target,
        "--source", str(source or TEST_AGENTS_MAIN),
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    log_dir.mkdir(parents=True, exist_ok=True)
    env = stack_env(info, **extra_env)
    child = processes.start(f"test-function-{target}", argv, env, log_dir)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_http(child, url + "/healthz", SERVER_START_TIMEOUT_S)
        yield url
    finally:
        processes.stop([child])


@contextmanager
def registered_agent(
    settings: Settings, name: str, url: str, *lobbies: str, record: AgentRecord | None = None
) -> Iterator[None]:
    """Register an agent at `url` (as `record` says, if given) and make it enter `lobbies`; it
    leaves them afterwards."""
    record = record or AgentRecord(name=name, endpoint=url, registered_at=now())
    Registry(settings.project).put_agent(record)
    try:
        for lobby in lobbies:
            membership.enter(settings, name, lobby)
        yield
    finally:
        for lobby in lobbies:
            membership.leave(settings, name, lobby)


class Recorder:
    """Everything published to a lobby since it started listening, in arrival order."""

    def __init__(self, tail: LobbyTail) -> None:
        self._tail = tail
        self._seen: list[Envelope] = []

    def messages(self, settle_s: float = 0.0) -> list[Envelope]:
        """What arrived so far, after listening `settle_s` more seconds."""
        deadline = time.monotonic() + settle_s
        while True:
            message = self._tail.get(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            if message is not None:
                self._seen.append(message)
            elif time.monotonic() >= deadline:
                return list(self._seen)


@contextmanager
def recording(project: str, lobby: str) -> Iterator[Recorder]:
    """Listen to a lobby with a temporary pull subscription, as `agentlobby chat` does."""
    with LobbyTail(project, lobby) as tail:
        yield Recorder(tail)
