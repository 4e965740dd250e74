"""Where things are: the repository, the deploy root, the `agentlobby` command."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO / "functions"
MAIN_PY = FUNCTIONS_DIR / "main.py"
AGENTLOBBY = Path(sys.executable).parent / "agentlobby"
