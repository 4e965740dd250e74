"""Where running local stacks are written down, so CLI commands find them without flags.

Every `agentlobby up` has a name (`--name`, default `stack-<first port>`, e.g. `stack-8680`)
and its own folder in the state directory (AGENTLOBBY_STATE_DIR, default ~/.agentlobby):

    stacks/<name>/stack.json    what a client needs to reach it; written once the stack is
                                ready, removed when it stops; readable by its owner only
    stacks/<name>/logs/         one log file per process of the stack; kept after it stops

A client talks to (first that applies):

1. the stack named by `--stack NAME` or AGENTLOBBY_STACK;
2. the stack that AGENTLOBBY_USER_URL and AGENTLOBBY_API_TOKEN point at, started elsewhere
   (the emulator hosts and the project then come from their variables too);
3. the one running stack, or the newest of several, saying which (choose_stack's note).

Standard library only: the CLI must start fast.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from agentlobby.errors import StackNotFound

STACKS_DIR = "stacks"
STATE_FILE = "stack.json"
LOGS_DIR = "logs"
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
DEFAULT_PROJECT = "agentlobby-local"


def check_stack_name(name: str) -> str:
    """A stack name is also a folder name: no '/', no dots, nothing a shell must quote."""
    if not STACK_NAME.fullmatch(name):
        raise ValueError(
            f"stack name {name!r} must be 1-63 characters of A-Z, a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


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
    name: str | None = None
    started_at: float | None = None
    model: str | None = None  # what answers the agents, in words
    trace_url: str | None = None  # the stack's span collector, when it runs with tracing
    remote_url: str | None = None  # the function of remote A2A members (agents add-remote)

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

    @classmethod
    def from_json(cls, text: str) -> StackInfo | None:
        """A state file's contents; None when it is not one (a partial or foreign file)."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            info = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None
        if not (isinstance(info.user_url, str) and isinstance(info.api_token, str)):
            return None
        return info


def default_name(info: StackInfo) -> str:
    """`stack-<port>` by the Pub/Sub emulator's port, the first of the block."""
    host = info.pubsub_emulator_host or ""
    port = host.rsplit(":", 1)[-1]
    return f"stack-{port}" if port.isdigit() else f"stack-{info.pid or os.getpid()}"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("AGENTLOBBY_STATE_DIR") or Path.home() / ".agentlobby")


def stack_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / STACKS_DIR / check_stack_name(name)


def state_file(name: str, env: Mapping[str, str] | None = None) -> Path:
    return stack_dir(name, env) / STATE_FILE


def log_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    return stack_dir(name, env) / LOGS_DIR


def write_state(info: StackInfo, env: Mapping[str, str] | None = None) -> Path:
    """Write the stack's state file (owner-only: it holds the API token); returns its path."""
    name = info.name or default_name(info)
    if info.name is None or info.started_at is None:
        info = StackInfo(**{**asdict(info), "name": name, "started_at": time.time()})
    path = state_file(name, env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(info.to_json())
    tmp.replace(path)
    return path


def clear_state(pid: int, env: Mapping[str, str] | None = None, name: str | None = None) -> None:
    """Remove the state file of the stack that process `pid` runs (only its own)."""
    paths = [state_file(name, env)] if name else _state_files(env)
    for path in paths:
        try:
            info = StackInfo.from_json(path.read_text())
            if info is not None and info.pid == pid:
                path.unlink()
        except OSError:
            pass


def _state_files(env: Mapping[str, str] | None) -> list[Path]:
    root = state_dir(env) / STACKS_DIR
    try:
        return sorted(p / STATE_FILE for p in root.iterdir() if (p / STATE_FILE).is_file())
    except OSError:
        return []


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False


def running_stacks(env: Mapping[str, str] | None = None) -> list[StackInfo]:
    """The stacks whose `up` is alive, oldest first. A file left by a killed `up` is ignored
    (the next `up` of that name writes over it)."""
    found = []
    for path in _state_files(env):
        try:
            info = StackInfo.from_json(path.read_text())
        except OSError:
            continue
        if info is not None and _alive(info.pid):
            found.append(StackInfo(**{**asdict(info), "name": path.parent.name}))
    return sorted(found, key=_started)


def _started(info: StackInfo) -> tuple[float, str]:
    when = info.started_at
    return (float(when) if isinstance(when, int | float) else 0.0, str(info.name))


def _names(stacks: list[StackInfo]) -> str:
    return ", ".join(str(s.name) for s in stacks)


def choose_stack(
    env: Mapping[str, str] | None = None, name: str | None = None
) -> tuple[StackInfo, str | None]:
    """The stack to talk to, and a note to show the user when the choice was not obvious.

    `name` is the --stack option; see the module's docstring for the order of the rules.
    Raises StackNotFound naming the fix.
    """
    env = os.environ if env is None else env
    wanted = name or env.get("AGENTLOBBY_STACK") or None
    if wanted is not None:
        source = "--stack" if name else "AGENTLOBBY_STACK"
        try:
            check_stack_name(wanted)
        except ValueError as exc:
            raise StackNotFound(f"{source}: {exc}") from None
        running = running_stacks(env)
        for info in running:
            if info.name == wanted:
                return info, None
        listed = (
            f"running: {_names(running)}"
            if running
            else f"none is running: start it with `agentlobby up --name {wanted}`"
        )
        raise StackNotFound(f"no running stack named {wanted!r} ({source}); {listed}")
    user_url, token = env.get("AGENTLOBBY_USER_URL"), env.get("AGENTLOBBY_API_TOKEN")
    if user_url and token:
        return _from_variables(env, user_url, token), None
    if user_url or token:
        present, absent = (
            ("AGENTLOBBY_USER_URL", "AGENTLOBBY_API_TOKEN")
            if user_url
            else ("AGENTLOBBY_API_TOKEN", "AGENTLOBBY_USER_URL")
        )
        raise StackNotFound(
            f"{present} is set but {absent} is not: set both for a stack started elsewhere, "
            f'or unset {present} to use a running `agentlobby up` (`eval "$(agentlobby env)"` '
            "sets both)"
        )
    running = running_stacks(env)
    if not running:
        raise StackNotFound(
            "no running local stack found: start one with `agentlobby up` (or `make demo`), "
            "or set AGENTLOBBY_USER_URL and AGENTLOBBY_API_TOKEN for a stack started elsewhere"
        )
    chosen = running[-1]
    if len(running) == 1:
        return chosen, None
    note = (
        f"{len(running)} stacks are running ({_names(running)}); talking to {chosen.name}, "
        "the newest: pick one with --stack NAME or AGENTLOBBY_STACK=NAME"
    )
    return chosen, note


def find_stack(env: Mapping[str, str] | None = None, name: str | None = None) -> StackInfo:
    """The stack to talk to (choose_stack without its note)."""
    return choose_stack(env, name)[0]


def _from_variables(env: Mapping[str, str], user_url: str, token: str) -> StackInfo:
    return StackInfo(
        project=env.get("AGENTLOBBY_PROJECT")
        or env.get("GOOGLE_CLOUD_PROJECT")
        or env.get("GCLOUD_PROJECT")
        or DEFAULT_PROJECT,
        user_url=user_url,
        api_token=token,
        pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST") or None,
        firestore_emulator_host=env.get("FIRESTORE_EMULATOR_HOST") or None,
    )
