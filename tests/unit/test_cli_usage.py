"""The `agentlobby` command without a stack: its help, and what it says when none is running."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlobby_cli.main import PASSTHROUGH, build_parser
from tests.support.cli import run_cli


def subcommands() -> list[str]:
    parser = build_parser()
    choices = next(a.choices for a in parser._actions if a.dest == "command")
    assert choices is not None
    return sorted(choices)


def test_help() -> None:
    done = run_cli({}, "--help")
    assert done.returncode == 0
    for command in subcommands():
        assert command in done.stdout


@pytest.mark.parametrize("command", subcommands())
def test_each_subcommand_has_help(command: str) -> None:
    done = run_cli({}, command, "--help", timeout=30)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout.lower()
    if command not in PASSTHROUGH:
        assert f"agentlobby {command}" in done.stdout


@pytest.mark.parametrize(
    "args", [("lobbies",), ("agents",), ("send", "chat", "hi"), ("chat", "chat"), ("watch", "x")]
)
def test_no_stack_says_to_run_up(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = {"PATH": "/usr/bin:/bin", "AGENTLOBBY_STATE_DIR": str(tmp_path)}
    done = run_cli(env, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "no running local stack found: start one with `agentlobby up`" in done.stderr
