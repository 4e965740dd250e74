"""Checks that the machine has what the local stack needs, with the fix in the message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

INSTALL_HINT = (
    "install the Debian packages google-cloud-cli-pubsub-emulator and "
    "google-cloud-cli-firestore-emulator (they bring Java), or run "
    "`gcloud components install pubsub-emulator cloud-firestore-emulator` and install Java 17+"
)


def sdk_root() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    real = Path(gcloud).resolve()
    for parent in real.parents:
        if (parent / "platform").is_dir():
            return parent
    return None


def missing() -> list[str]:
    """What is missing, one entry per thing; empty when the stack can start."""
    problems = []
    if shutil.which("java") is None:
        problems.append("java is not on PATH")
    elif subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
        problems.append("java is on PATH but `java -version` fails")
    root = sdk_root()
    if root is None:
        problems.append("gcloud is not on PATH")
    else:
        if not (root / "platform" / "pubsub-emulator").is_dir():
            problems.append("the Pub/Sub emulator is not installed")
        if not (root / "platform" / "cloud-firestore-emulator").is_dir():
            problems.append("the Firestore emulator is not installed")
    return problems


def main() -> int:
    problems = missing()
    if problems:
        print("agentlobby: cannot start the local stack: " + "; ".join(problems), file=sys.stderr)
        print(f"agentlobby: to fix it, {INSTALL_HINT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
