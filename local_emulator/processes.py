"""Child processes of the local stack: started in their own process group, stopped whole.

gcloud starts each emulator's JVM as a child of its own, so stopping means signalling the
group, not the pid, or the JVM stays behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    return Child(name=name, process=process, log_path=log_path, argv=argv, env=env)


def restart(child: Child) -> Child:
    """The same command again, logging to the same file: a crashed server's replacement."""
    return start(child.name, child.argv, child.env, child.log_path.parent)


def wait_http(child: Child, url: str, timeout_s: float) -> None:
    """Wait until the URL answers anything at all; fail early if the child died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(
                f"{child.name} exited with code {child.process.returncode} while starting; "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except (OSError, http.client.HTTPException):
            # Not up yet, or not ours (another server on the port): a child that could not bind
            # exits, which the check above reports with its log.
            time.sleep(0.1)
    raise RuntimeError(
        f"{child.name} did not answer at {url} within {timeout_s:.0f}s; "
        f"last lines of {child.log_path}:\n{child.log_tail()}"
    )


def stop(children: list[Child], grace_s: float = 5.0) -> None:
    """SIGTERM every group, wait, then SIGKILL what is left. Never raises."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        _signal_group(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=2)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)
