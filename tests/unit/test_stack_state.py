"""Named stacks: each has its own state and logs, and a client knows which one it talks to.

State files are written here as `agentlobby up` writes them, with this test's own pid (alive)
or a pid that is not (a stack killed without cleaning up); no stack runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentlobby.errors import StackNotFound
from local_emulator.stack_state import (
    StackInfo,
    choose_stack,
    clear_state,
    find_stack,
    log_dir,
    running_stacks,
    state_file,
    write_state,
)
from tests.support.cli import run_cli
from tests.support.paths import AGENTLOBBY

DEAD_PID = 2**22 + 12345  # above pid_max's default: never a live process


def stack(
    name: str | None, port: int, *, pid: int | None = None, started: float = 0.0
) -> StackInfo:
    return StackInfo(
        project="agentlobby-local",
        user_url=f"http://127.0.0.1:{port + 3}",
        api_token=f"token-{port}",
        pubsub_emulator_host=f"127.0.0.1:{port}",
        firestore_emulator_host=f"127.0.0.1:{port + 1}",
        pid=os.getpid() if pid is None else pid,
        name=name,
        started_at=started or None,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AGENTLOBBY_STATE_DIR": str(tmp_path)}


def test_each_stack_has_its_own_state_file_and_log_folder(env: dict[str, str]) -> None:
    first = write_state(stack("stack-8680", 8680, started=1.0), env)
    second = write_state(stack("other", 9000, started=2.0), env)
    assert first == state_file("stack-8680", env) != second == state_file("other", env)
    assert first.parent / "logs" == log_dir("stack-8680", env)
    assert oct(first.stat().st_mode & 0o777) == "0o600"  # it holds the API token
    assert [s.name for s in running_stacks(env)] == ["stack-8680", "other"]
    clear_state(os.getpid(), env, name="other")
    assert not second.exists()
    assert first.exists()


def test_a_stack_without_a_name_is_named_by_its_first_port(env: dict[str, str]) -> None:
    path = write_state(stack(None, 41234), env)
    assert path == state_file("stack-41234", env)
    assert find_stack(env).name == "stack-41234"


def test_one_running_stack_is_found_without_a_word(env: dict[str, str]) -> None:
    write_state(stack("mine", 8680), env)
    write_state(stack("killed", 9000, pid=DEAD_PID), env)  # its `up` died without cleaning up
    info, note = choose_stack(env)
    assert (info.name, info.api_token, note) == ("mine", "token-8680", None)


def test_of_several_the_newest_is_chosen_and_the_choice_is_said(env: dict[str, str]) -> None:
    write_state(stack("old", 8680, started=100.0), env)
    write_state(stack("new", 9000, started=200.0), env)
    info, note = choose_stack(env)
    assert info.name == "new"
    assert note == (
        "2 stacks are running (old, new); talking to new, the newest: "
        "pick one with --stack NAME or AGENTLOBBY_STACK=NAME"
    )
    assert choose_stack(env, "old") == (find_stack(env, "old"), None)
    assert find_stack(env, "old").user_url == "http://127.0.0.1:8683"
    assert find_stack({**env, "AGENTLOBBY_STACK": "old"}).name == "old"
    # --stack wins over AGENTLOBBY_STACK, and a named stack over the variables.
    named = {
        **env,
        "AGENTLOBBY_STACK": "new",
        "AGENTLOBBY_USER_URL": "http://x",
        "AGENTLOBBY_API_TOKEN": "t",
    }
    assert find_stack(named, "old").name == "old"
    assert find_stack(named).name == "new"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gone", "no running stack named 'gone' (--stack); running: here"),
        ("a/b", "--stack: stack name 'a/b' must be 1-63 characters"),
    ],
)
def test_an_unknown_or_bad_stack_name_is_refused(
    env: dict[str, str], name: str, expected: str
) -> None:
    write_state(stack("here", 8680), env)
    with pytest.raises(StackNotFound) as refused:
        find_stack(env, name)
    assert expected in str(refused.value)


def test_variables_reach_a_stack_started_elsewhere(env: dict[str, str]) -> None:
    write_state(stack("local", 8680), env)
    elsewhere = {
        **env,
        "AGENTLOBBY_USER_URL": "https://user.example",
        "AGENTLOBBY_API_TOKEN": "cloud-token",
        "AGENTLOBBY_PROJECT": "prod",
    }
    info = find_stack(elsewhere)
    assert (info.user_url, info.api_token, info.project) == (
        "https://user.example",
        "cloud-token",
        "prod",
    )
    # Nothing of the local stack is mixed in: no emulator hosts for a deployed stack.
    assert (info.pubsub_emulator_host, info.firestore_emulator_host) == (None, None)
    with pytest.raises(
        StackNotFound, match="AGENTLOBBY_USER_URL is set but AGENTLOBBY_API_TOKEN is not"
    ):
        find_stack({**env, "AGENTLOBBY_USER_URL": "https://user.example"})


def test_a_broken_state_file_is_no_stack(env: dict[str, str], tmp_path: Path) -> None:
    for name, text in (("empty", ""), ("list", "[]"), ("partial", '{"user_url": "x"}')):
        path = state_file(name, env)
        path.parent.mkdir(parents=True)
        path.write_text(text)
    assert running_stacks(env) == []
    with pytest.raises(StackNotFound, match="no running local stack found"):
        find_stack(env)


def test_env_prints_exports_that_eval_sets(env: dict[str, str]) -> None:
    write_state(stack("mine", 8680), env)
    shell_env = {"PATH": os.environ["PATH"], **env}
    if "PYTHONPATH" in os.environ:
        shell_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = run_cli(shell_env, "env")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "export AGENTLOBBY_PROJECT=agentlobby-local"
    script = (
        f'eval "$({AGENTLOBBY} env)" && '
        'printf "%s %s %s" "$AGENTLOBBY_USER_URL" "$AGENTLOBBY_API_TOKEN" "$PUBSUB_EMULATOR_HOST"'
    )
    shell = subprocess.run(
        ["bash", "-c", script], env=shell_env, capture_output=True, text=True, timeout=60
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout == "http://127.0.0.1:8683 token-8680 127.0.0.1:8680"
