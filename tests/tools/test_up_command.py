"""`agentlobby up` as a user runs it: one JSON line when ready, nothing left after a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.paths import AGENTLOBBY, REPO


def processes_mentioning(needles: list[str]) -> list[str]:
    """Command lines of live processes that mention any of the needles (ports, here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clean_env(state_dir: Path) -> dict[str, str]:
    """A user's environment: no stack variables, no model key, its own state directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_", "OPENAI_"))
    }
    env["AGENTLOBBY_STATE_DIR"] = str(state_dir)
    return env


def start_up(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(AGENTLOBBY), "up", "--json", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTLOBBY), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def ports_of(info: dict[str, Any]) -> list[int]:
    return [
        int(info["user_url"].rsplit(":", 1)[1]),
        int(info["pubsub_emulator_host"].rsplit(":", 1)[1]),
        int(info["firestore_emulator_host"].rsplit(":", 1)[1]),
    ]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_up_prints_one_json_line_and_stops_everything(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    env = clean_env(tmp_path)
    up = start_up(env, "--port-base", "0")
    try:
        assert up.stdout is not None
        line = up.stdout.readline()
        info = json.loads(line)
        for key in (
            "user_url",
            "pubsub_emulator_host",
            "firestore_emulator_host",
            "project",
            "api_token",
            "name",
            "state_file",
            "curl",
            "env",
            "model",
        ):
            assert info[key], key
        ports = ports_of(info)
        assert info["name"] == f"stack-{ports[1]}"
        state = tmp_path / "stacks" / info["name"] / "stack.json"
        assert info["state_file"] == str(state)
        assert info["page"] == info["user_url"] + "/"
        assert json.loads(state.read_text())["api_token"] == info["api_token"]
        assert info["log_dir"] == str(tmp_path / "stacks" / info["name"] / "logs")
        assert all(listening(port) for port in ports)

        # Another command finds the stack by itself, with no flags and no variables.
        listed = cli(env, "lobbies", "--json")
        assert listed.returncode == 0, listed.stderr
        assert {row["name"] for row in json.loads(listed.stdout)} >= {"chat", "coding"}

        # The curl line it printed works as printed.
        posted = subprocess.run(
            ["bash", "-c", info["curl"]], capture_output=True, text=True, timeout=30, check=True
        )
        assert set(json.loads(posted.stdout)) == {"conversation_id", "message_id"}

        up.send_signal(stop_signal)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            up.kill()
    rest = up.stdout.read() if up.stdout else ""
    assert rest.strip() == "", "--json prints exactly one line"
    needles = [f"127.0.0.1:{p}" for p in ports] + [f"--port {p}" for p in ports]
    deadline = time.monotonic() + 10
    while processes_mentioning(needles) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(needles) == []
    assert not any(listening(port) for port in ports)
    assert not state.exists()
    assert (tmp_path / "stacks" / info["name"] / "logs" / "function-user.log").exists()


def test_a_plain_up_runs_a_coding_task_offline_and_a_second_up_never_collides(
    tmp_path: Path,
) -> None:
    """No key: the offline model server plays the default script, so a coding task succeeds.
    A second `up` of the same name, or on a port the first holds, fails at once and leaves
    the first one's state alone."""
    env = clean_env(tmp_path)
    first = start_up(env, "--port-base", "0", "--name", "first")
    try:
        assert first.stdout is not None and first.stderr is not None
        info = json.loads(first.stdout.readline())
        said = first.stderr.readline()
        assert "the offline model server, playing the default script" in said
        assert "local_emulator/scripts/default.json" in info["model"]
        state = tmp_path / "stacks" / "first" / "stack.json"
        before = state.read_text()

        done = cli(env, "send", "coding", "Write fizzbuzz(n) and print it for 1 to 15", "--wait")
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "--- final code (round 1):" in done.stdout
        assert "succeeded after 1 round(s)" in done.stderr

        started = time.monotonic()
        same_name = cli(env, "up", "--json", "--port-base", "0", "--name", "first")
        assert same_name.returncode == 1
        assert same_name.stdout == ""
        assert "a stack named first is already running" in same_name.stderr

        pubsub_port = ports_of(info)[1]
        same_ports = cli(env, "up", "--json", "--port-base", str(pubsub_port), "--name", "second")
        assert same_ports.returncode == 1
        assert same_ports.stdout == "", "no ready line"
        expected = f"port {pubsub_port} for the Pub/Sub emulator on 127.0.0.1 is not free"
        assert expected in same_ports.stderr
        assert time.monotonic() - started < 10, "both fail at once, starting nothing"
        assert state.read_text() == before
        assert not (tmp_path / "stacks" / "second" / "stack.json").exists()
        again = cli(env, "--stack", "first", "lobbies")
        assert again.returncode == 0, again.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()


def test_a_user_function_that_refuses_the_token_is_not_taken_for_ours(info: StackInfo) -> None:
    """Another stack's user function on the port (its token differs) stops the start-up."""
    stack = Stack(port_base=0)
    stack.ports["user"] = int(info.user_url.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="refused this stack's API token: another stack"):
        stack._check_identity()


def test_missing_emulators_are_named_with_the_fix(tmp_path: Path) -> None:
    """With no java and no gcloud on PATH, the check says what to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "local_emulator/prereqs.py"],
        cwd=REPO,
        env={"PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "java is not on PATH" in result.stderr
    assert "google-cloud-cli-pubsub-emulator" in result.stderr
    assert "gcloud components install pubsub-emulator cloud-firestore-emulator" in result.stderr
