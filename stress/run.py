"""The runner: start one local stack with the offline model, run each scenario on it in turn,
print the table, and exit 1 if any scenario lost, duplicated or otherwise broke a promise.

    python -m stress            # full run (make stress)
    python -m stress --short    # CI size, about 3 minutes on two cores (make stress-short)

Scenarios run one after another on the same stack, so each one's numbers are its own; each
leaves every server serving. One scenario that raises is a failed row, not a lost run. The
random choices (which server, when) come from one seed, printed, so a run can be repeated.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from stress.harness import Harness
from stress.plan import FULL, SHORT, Plan
from stress.scenarios import crashes, fuzz, load, loops, pause, poison
from stress.table import Row, render

Scenario = Callable[[Harness, Plan, random.Random], list[Row]]
SCENARIOS: dict[str, Scenario] = {
    "load": load.run,
    "crashes": crashes.run,
    "pause": pause.run,
    "poison": poison.run,
    "fuzz": fuzz.run,
    "loops": loops.run,
}
KILLS = {"crashes"}  # the scenarios that kill servers on purpose


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stress",
        description="Stress the local stack (offline model) and print one row per scenario.",
    )
    parser.add_argument(
        "--short",
        action="store_true",
        default=os.environ.get("STRESS") == "short",
        help="CI size: fewer tasks, one crash point per kind, a shorter pause (or STRESS=short)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--seed", type=int, help="seed of the random choices, to repeat a run")
    parser.add_argument(
        "--log-dir", type=Path, help="where the stack's logs go (default: a temp dir)"
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through Harness.running, which stops the stack


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    plan = SHORT if args.short else FULL
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="agentlobby-stress-"))
    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    progress(f"stress ({plan.name}), seed {seed}, logs in {log_dir}")
    rows: list[Row] = []
    rng = random.Random(seed)
    try:
        with Harness.running(log_dir, progress) as h:
            for name, scenario in SCENARIOS.items():
                if args.only and name not in args.only:
                    continue
                progress(f"scenario {name}")
                rows += _run(name, scenario, h, plan, rng)
    except Exception as exc:  # the stack did not start: say why, exit 2
        print(f"stress: the local stack failed: {exc}", file=sys.stderr)
        if rows:
            print(render(rows))
        return 2
    print(render(rows))
    print(f"\n{plan.name} run, seed {seed}, {time.monotonic() - began:.0f}s; logs in {log_dir}")
    return 0 if all(row.passed for row in rows) else 1


def _run(name: str, scenario: Scenario, h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    """One scenario; a server that died in a scenario that kills nothing fails it."""
    restarts = h.restarts()
    try:
        rows = scenario(h, plan, rng)
    except Exception as exc:  # one broken scenario must not hide the others
        where = traceback.extract_tb(exc.__traceback__)[-1]
        note = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        rows = [Row(scenario=name, passed=False, notes=[note])]
    if name not in KILLS and h.restarts() != restarts:
        rows[-1].fail(f"{h.restarts() - restarts} function server(s) died and were restarted")
    return rows
