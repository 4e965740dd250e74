"""Running the `agentlobby` command as a user does: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess

from tests.support.paths import AGENTLOBBY


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    if "PYTHONPATH" in os.environ and "PYTHONPATH" not in env:
        # The checkout under test, when the environment's editable install points elsewhere.
        env = {**env, "PYTHONPATH": os.environ["PYTHONPATH"]}
    return subprocess.run(
        [str(AGENTLOBBY), *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_ok(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """The command's output, once checked that it succeeded."""
    done = run_cli(env, *args, stdin=stdin)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout
