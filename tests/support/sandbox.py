"""Running code in the sandbox at each isolation level, and looking for what it left behind.

The namespace levels (as root: `namespaces+uid`, and `userns`, which root enters as a fresh
unprivileged uid) are skipped, with the reason, where the machine cannot create them.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from agentlobby.sandbox.runner import (
    ExecutionResult,
    SandboxLimits,
    SandboxUnavailable,
    run_python,
)

IS_ROOT = os.geteuid() == 0


def _userns_works() -> bool:
    try:
        run_python("", isolation="userns")
    except SandboxUnavailable:
        return False
    return True


NAMESPACE_LEVELS = [
    pytest.param(
        "namespaces",
        marks=pytest.mark.skipif(not IS_ROOT, reason="namespaces+uid needs root (CAP_SYS_ADMIN)"),
    ),
    pytest.param(
        "userns",
        marks=pytest.mark.skipif(
            not _userns_works(), reason="this kernel forbids unprivileged user namespaces"
        ),
    ),
]
ALL_LEVELS = [*NAMESPACE_LEVELS, "rlimits"]
LEVEL_NAMES = {"namespaces": "namespaces+uid", "userns": "userns"}


def run(source: str, level: str = "auto", **limits: float) -> ExecutionResult:
    return run_python(textwrap.dedent(source), limits=SandboxLimits(**limits), isolation=level)  # type: ignore[arg-type]


def host_processes_with(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found
