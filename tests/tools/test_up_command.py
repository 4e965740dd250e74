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

import pytest

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


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_up_prints_one_json_line_and_stops_everything(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_"))
    }
    env["AGENTLOBBY_STATE_DIR"] = str(tmp_path)
    up = subprocess.Popen(
        [str(AGENTLOBBY), "up", "--port-base", "0", "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
        ):
            assert info[key], key
        ports = [
            int(info["user_url"].rsplit(":", 1)[1]),
            int(info["pubsub_emulator_host"].rsplit(":", 1)[1]),
            int(info["firestore_emulator_host"].rsplit(":", 1)[1]),
        ]
        assert all(listening(port) for port in ports)

        # Another command finds the stack by itself, with no flags and no variables.
        listed = subprocess.run(
            [str(AGENTLOBBY), "lobbies", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert {row["name"] for row in json.loads(listed.stdout)} >= {"chat", "coding"}

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
    assert not (tmp_path / "stack.json").exists()


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
