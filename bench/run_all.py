"""Runs every bench/bench_*.py in turn, each in its own process, then lists how each ended.

    .venv/bin/python bench/run_all.py            # all of them (what `make bench` runs)
    .venv/bin/python bench/run_all.py lobby      # only files whose name contains "lobby"

Files are found by glob, so a new bench_*.py is picked up without a change here. A bench
prints its numbers and goals; its exit status says only whether it ran (and, where its
docstring says so, whether a hard requirement holds). Exit status: 0 when every bench
exited 0, 1 otherwise, 2 when no file matched.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def bench_files(wanted: list[str]) -> list[Path]:
    files = sorted(BENCH_DIR.glob("bench_*.py"))
    return [f for f in files if not wanted or any(w in f.stem for w in wanted)]


def run(path: Path) -> tuple[int, bool]:
    """Run one bench; on Ctrl-C let it finish its `finally` (it stops its own stack)."""
    process = subprocess.Popen([sys.executable, str(path)], cwd=BENCH_DIR.parent)
    try:
        return process.wait(), False
    except KeyboardInterrupt:
        return process.wait(), True  # the child got the same SIGINT


def main(argv: list[str] | None = None) -> int:
    wanted = sys.argv[1:] if argv is None else argv
    files = bench_files(wanted)
    if not files:
        print(f"no bench/bench_*.py matches {wanted}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for path in files:
        print(f"\n########## {path.name} ##########", flush=True)
        started = time.monotonic()
        code, interrupted = run(path)
        results.append((path.name, code, time.monotonic() - started))
        if interrupted:
            print("interrupted: the remaining benchmarks are skipped", file=sys.stderr)
            break
    print("\n########## summary ##########")
    for name, code, elapsed in results:
        print(f"{name:<32} {'ok' if code == 0 else f'exit {code}':<8} {elapsed:6.1f}s")
    skipped = [f.name for f in files[len(results) :]]
    if skipped:
        print(f"skipped: {', '.join(skipped)}")
    return 0 if not skipped and all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
