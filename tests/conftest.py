"""Session fixtures: one real local stack (Pub/Sub and Firestore emulators, function servers).

Every test gets its own lobby names or conversation ids, so tests do not see each other's
messages. The stack is stopped in `finally`, Java emulators included.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentlobby_cli.client import UserClient
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo, write_state

REPO = Path(__file__).resolve().parent.parent


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


class JsonUser:
    """The user API's answers as the JSON a user sees. They go through the CLI's typed client,
    which checks each against the API's models, and are dumped back to JSON for assertions."""

    def __init__(self, client: UserClient) -> None:
        self.client = client

    def post(self, lobby: str, text: str, **fields: Any) -> dict[str, Any]:
        return self.client.post(lobby, text, **fields).model_dump(mode="json")

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        return self.client.conversation(conversation_id).model_dump(mode="json")


@pytest.fixture(scope="session")
def user(info: StackInfo) -> JsonUser:
    return JsonUser(UserClient(info.user_url, info.api_token))


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
    return f"t-{secrets.token_hex(4)}"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 15.0, interval_s: float = 0.1) -> Any:
    """Poll until predicate returns something truthy; fail with the last value if it never does."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s; last value: {value!r}")


def wait_for_messages(
    user: JsonUser, conversation_id: str, count: int, timeout_s: float = 15.0
) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        messages = user.conversation(conversation_id)["messages"]
        return messages if len(messages) >= count else None

    result: list[dict[str, Any]] = wait_for(enough, timeout_s)
    return result
