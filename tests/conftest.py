"""The fixtures every folder shares; the helpers are in tests/support.

Session fixtures: one real local stack (Pub/Sub and Firestore emulators, function servers),
started the first time a test asks for it, so the no-I/O tests (tests/unit) never start it.
Every test gets its own lobby names or conversation ids, so tests do not see each other's
messages. The stack is stopped in `finally`, Java emulators included.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo, write_state
from tests.support.lobbies import function_server, new_lobby_name
from tests.support.user import JsonUser


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack(stack_dir: Path) -> Iterator[Stack]:
    script = stack_dir / "model-script.json"
    script.write_text(json.dumps({"rules": []}))
    running = Stack(
        port_base=0,
        model_script=script,
        log_dir=stack_dir / "logs",
        extra_env={"AGENTLOBBY_STATE_DIR": str(stack_dir)},
        trace=True,  # every test runs traced, as `agentlobby up` does by default
    )
    try:
        info = running.start()
        write_state(info, {"AGENTLOBBY_STATE_DIR": str(stack_dir)})
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def info(stack: Stack) -> StackInfo:
    assert stack.info is not None
    return stack.info


@pytest.fixture(scope="session")
def user(info: StackInfo) -> JsonUser:
    return JsonUser.of(info)


@pytest.fixture(scope="session")
def cli_env(info: StackInfo, stack_dir: Path) -> dict[str, str]:
    """Environment for `agentlobby` subprocesses: they find the stack via its state file."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_"))
    }
    env["AGENTLOBBY_STATE_DIR"] = str(stack_dir)
    return env


@pytest.fixture
def lobby_name() -> str:
    return new_lobby_name()


@pytest.fixture(scope="session")
def flaky(info: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The flaky test agent's server; yields its URL and the directory of its markers."""
    markers = tmp_path_factory.mktemp("flaky-markers")
    logs = tmp_path_factory.mktemp("flaky-logs")
    with function_server("flaky", info, logs, AGENTLOBBY_TEST_MARKERS=str(markers)) as url:
        yield url, markers


@pytest.fixture
def sandbox_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private TMPDIR for the sandbox's run directories, so a test can see that none is left
    behind."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    path.chmod(0o1777)  # like /tmp: the uid levels walk in, the unprivileged test writes
    monkeypatch.setenv("TMPDIR", str(path))
    try:
        yield path
        assert list(path.iterdir()) == [], "a run directory was left behind"
    finally:
        shutil.rmtree(path, ignore_errors=True)
