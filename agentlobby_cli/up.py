"""`agentlobby up`: run the local stack in the foreground until Ctrl-C or SIGTERM.

What answers the agents, first that applies: `--model-script FILE` (or AGENTLOBBY_MODEL_SCRIPT)
replays that script; AGENTLOBBY_MODEL_RECORD records a real model's answers; `--real-model`,
or OPENAI_API_KEY / OPENAI_BASE_URL without `--offline`, is a real OpenAI-compatible endpoint;
otherwise the offline model server plays local_emulator/scripts/default.json on a loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import local_emulator
from agentlobby.errors import ConfigError
from local_emulator.model_server.script import Script, load_script_file
from local_emulator.stack import Stack
from local_emulator.stack_state import (
    StackInfo,
    clear_state,
    log_dir,
    running_stacks,
    write_state,
)

DEFAULT_SCRIPT = Path(local_emulator.__file__).resolve().parent / "scripts" / "default.json"
LOOP_TIMES = 10_000  # the default script's replies, each given this often before it runs dry
EXIT_USAGE = 2


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """What answers the agents: a script to replay, a file to record into, or neither."""

    description: str
    script: Path | None = None
    loop: bool = False
    record_to: Path | None = None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def choose_model(
    env: Mapping[str, str],
    *,
    model_script: Path | None = None,
    real_model: bool = False,
    offline: bool = False,
) -> ModelChoice:
    """The model for this run; ValueError (a usage error) for a choice that cannot work."""
    flagged = real_model or offline  # a flag wins over the variables
    from_env = None if flagged else env.get("AGENTLOBBY_MODEL_SCRIPT")
    script = model_script or (Path(from_env) if from_env else None)
    record = None if flagged else env.get("AGENTLOBBY_MODEL_RECORD")
    endpoint = env.get("OPENAI_BASE_URL") or "OpenAI's API"
    if script is not None:
        if record:
            raise ValueError(
                "set AGENTLOBBY_MODEL_SCRIPT (replay) or AGENTLOBBY_MODEL_RECORD (record), not both"
            )
        if not script.is_file():
            where = "--model-script" if model_script else "AGENTLOBBY_MODEL_SCRIPT"
            raise ValueError(f"{where}={script} is not a file")
        return ModelChoice(f"the offline model server, playing {_shown(script)}", script)
    if record:
        return ModelChoice(
            f"{endpoint}, its answers recorded into {record}", record_to=Path(record)
        )
    has_endpoint = bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))
    if real_model and not has_endpoint:
        raise ValueError(
            "--real-model needs OPENAI_API_KEY (OpenAI's API) or OPENAI_BASE_URL (any "
            "OpenAI-compatible server) in the environment"
        )
    if has_endpoint and not offline:
        return ModelChoice(f"a real model: {endpoint}")
    why = "--offline" if offline else "no OPENAI_API_KEY or OPENAI_BASE_URL"
    return ModelChoice(
        f"the offline model server, playing the default script {_shown(DEFAULT_SCRIPT)} "
        f"({why}; canned answers that show the coding loop; set OPENAI_API_KEY or pass "
        "--real-model for a real model)",
        DEFAULT_SCRIPT,
        loop=True,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def looped(path: Path) -> Script:
    """The script with every reply repeated, so that a long-running stack never runs dry."""
    script = load_script_file(path)
    rules = tuple(dataclasses.replace(r, replies=r.replies * LOOP_TIMES) for r in script.rules)
    return dataclasses.replace(script, rules=rules)


def run_up(
    *,
    port_base: int,
    as_json: bool,
    name: str | None = None,
    model_script: Path | None = None,
    real_model: bool = False,
    offline: bool = False,
    trace: bool = True,
) -> int:
    def progress(message: str) -> None:
        print(f"agentlobby: {message}", file=sys.stderr, flush=True)

    try:
        model = choose_model(
            os.environ, model_script=model_script, real_model=real_model, offline=offline
        )
        script = looped(model.script) if model.loop and model.script else model.script
    except (ValueError, ConfigError) as exc:
        print(f"agentlobby up: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stack = Stack(
        port_base=port_base,
        project=os.environ.get("AGENTLOBBY_PROJECT") or "agentlobby-local",
        api_token=os.environ.get("AGENTLOBBY_API_TOKEN"),
        model_script=script,
        record_model_to=model.record_to,
        progress=progress,
        # Spans go to the stack's own collector (`agentlobby trace`), unless the user's
        # environment names an exporter of its own, which every function then inherits.
        trace=trace and not os.environ.get("OTEL_TRACES_EXPORTER"),
    )
    name = name or f"stack-{stack.ports['pubsub']}"
    others = running_stacks()
    same = [s for s in others if s.name == name]
    if same:
        print(
            f"agentlobby up: a stack named {name} is already running (pid {same[0].pid}, user "
            f"agent at {same[0].user_url}): stop it, or pass --name and --port-base for "
            "another one",
            file=sys.stderr,
        )
        return 1
    stack.log_dir = log_dir(name)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    progress(f"starting stack {name}; the agents' model: {model.description}")
    try:
        info = dataclasses.replace(
            stack.start(), name=name, started_at=time.time(), model=model.description
        )
        path = write_state(info)
        hints = _hints(info, path, pick=f"--stack {name} " if others else "")
        if as_json:
            print(json.dumps({**dataclasses.asdict(info), **hints}), flush=True)
        else:
            _print_ready(info, hints, progress)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    except ConfigError as exc:
        print(f"agentlobby up: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:
        print(f"agentlobby up: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if stack.info is not None:
            progress("stopping")
        stack.stop()
        clear_state(os.getpid(), name=name)
    return 0


def _hints(info: StackInfo, state_path: Path, pick: str) -> dict[str, str]:
    """How a new user reaches the stack: printed when it is ready, and keys of the --json line."""
    curl = " ".join(
        [
            "curl -s -X POST",
            shlex.quote(f"{info.user_url}/lobbies/chat/messages"),
            "-H",
            shlex.quote(f"Authorization: Bearer {info.api_token}"),
            "-H 'Content-Type: application/json'",
            "-d",
            shlex.quote('{"text": "hello"}'),
        ]
    )
    return {
        "state_file": str(state_path),
        "page": f"{info.user_url}/",  # the live page; it asks for the API token once
        "curl": curl,
        "env": f'eval "$(agentlobby {pick}env)"',
        "send": f"agentlobby {pick}send coding 'Write fizzbuzz(n) and print it for 1 to 15' --wait",
    }


def _print_ready(info: StackInfo, hints: dict[str, str], say: Callable[[str], None]) -> None:
    say(f"stack {info.name} is ready: user agent at {info.user_url}, project {info.project}")
    say(f"the API token is in {hints['state_file']}, with all else a client needs")
    say(f"the page: {hints['page']} (open it in a browser; it asks for the API token once)")
    say("try it from another terminal:")
    for line, note in (
        (hints["curl"], ""),
        (hints["env"], "exports AGENTLOBBY_USER_URL, AGENTLOBBY_API_TOKEN, ..."),
        (hints["send"], "a coding task, followed to its end"),
    ):
        print(f"    {line}" + (f"    # {note}" if note else ""), file=sys.stderr)
    say(f"logs in {info.log_dir}; Ctrl-C stops everything")
