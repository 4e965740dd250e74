"""Where a running local stack is written down, so CLI commands find it without flags.

`agentlobby up` writes `stack.json` into the state directory (AGENTLOBBY_STATE_DIR, default
~/.agentlobby) and removes it on exit. The standard variables override what the file says,
for a stack started elsewhere. Standard library only: the CLI must start fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from agentlobby.errors import StackNotFound

STATE_FILE = "stack.json"


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to reach a stack: the --json line of `agentlobby up`."""

    project: str
    user_url: str
    api_token: str
    pubsub_emulator_host: str | None
    firestore_emulator_host: str | None
    model_base_url: str | None = None
    pid: int | None = None
    log_dir: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def client_environment(self) -> dict[str, str]:
        """The standard variables that make Google's clients and ours talk to this stack."""
        env = {
            "AGENTLOBBY_PROJECT": self.project,
            "AGENTLOBBY_USER_URL": self.user_url,
            "AGENTLOBBY_API_TOKEN": self.api_token,
        }
        if self.pubsub_emulator_host:
            env["PUBSUB_EMULATOR_HOST"] = self.pubsub_emulator_host
        if self.firestore_emulator_host:
            env["FIRESTORE_EMULATOR_HOST"] = self.firestore_emulator_host
        return env


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("AGENTLOBBY_STATE_DIR") or Path.home() / ".agentlobby")


def write_state(info: StackInfo, env: Mapping[str, str] | None = None) -> Path:
    path = state_dir(env) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)
    return path


def clear_state(pid: int, env: Mapping[str, str] | None = None) -> None:
    path = state_dir(env) / STATE_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def find_stack(env: Mapping[str, str] | None = None) -> StackInfo:
    """The stack to talk to: the variables if they name one, else the running `up`."""
    env = os.environ if env is None else env
    from_file: dict[str, object] = {}
    path = state_dir(env) / STATE_FILE
    if path.exists():
        try:
            from_file = json.loads(path.read_text())
        except ValueError:
            from_file = {}
        if not _alive(from_file.get("pid")):  # type: ignore[arg-type]
            from_file = {}
    user_url = env.get("AGENTLOBBY_USER_URL") or from_file.get("user_url")
    token = env.get("AGENTLOBBY_API_TOKEN") or from_file.get("api_token")
    if not user_url or not token:
        raise StackNotFound(
            "no running local stack found: start one with `agentlobby up` (or `make demo`), "
            "or set AGENTLOBBY_USER_URL and AGENTLOBBY_API_TOKEN for a stack started elsewhere"
        )
    return StackInfo(
        project=str(
            env.get("AGENTLOBBY_PROJECT") or from_file.get("project") or "agentlobby-local"
        ),
        user_url=str(user_url),
        api_token=str(token),
        pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST")
        or from_file.get("pubsub_emulator_host"),  # type: ignore[arg-type]
        firestore_emulator_host=env.get("FIRESTORE_EMULATOR_HOST")
        or from_file.get("firestore_emulator_host"),  # type: ignore[arg-type]
        model_base_url=from_file.get("model_base_url"),  # type: ignore[arg-type]
        pid=from_file.get("pid"),  # type: ignore[arg-type]
        log_dir=from_file.get("log_dir"),  # type: ignore[arg-type]
    )
