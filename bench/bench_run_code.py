"""What `agentlobby run-code FILE` costs as a whole command, against plain `python3 FILE`.

The command is `.venv/bin/agentlobby run-code FILE` when the venv has the console script, else
`.venv/bin/python -m agentlobby_cli.run_code FILE`; it pays for its own interpreter start and
imports on top of the sandboxed run. Baselines, measured in the same run and interleaved round
by round with the command: `python3` on PATH running FILE (what a user would type; on a pyenv
machine a shell shim), the real interpreter behind it, and the interpreter the sandbox uses.
Goal: at most 1.5x against plain python3. Which python3 decides the verdict, so each is
printed: the PATH one is what a user types, the one behind it is the same program without a
pyenv shim, and the sandbox's own interpreter is the honest floor (the venv's Python alone
takes longer to start than it takes to run the file).
This is a benchmark, not a test: it prints and never fails.
Usage: python bench/bench_run_code.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from timing import percentile

from agentlobby.sandbox.runner import interpreter

GOAL = 1.5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(path: str) -> list[str]:
    venv = os.path.join(ROOT, ".venv", "bin")
    if os.access(os.path.join(venv, "agentlobby"), os.X_OK):
        return [os.path.join(venv, "agentlobby"), "run-code", path]
    return [os.path.join(venv, "python"), "-m", "agentlobby_cli.run_code", path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per variant (>= 20)")
    args = parser.parse_args()
    runs = max(20, args.runs)
    workdir = tempfile.mkdtemp(prefix="bench-run-code-")
    path = os.path.join(workdir, "job.py")
    with open(path, "w") as f:
        f.write("print('hi')\n")
    path_python = shutil.which("python3") or "python3"
    code = "import os, sys; print(os.path.realpath(sys.executable))"
    real = subprocess.run([path_python, "-c", code], capture_output=True, text=True).stdout.strip()
    variants = {
        "agentlobby run-code FILE": command(path),
        f"python3 FILE (PATH: {path_python})": [path_python, path],
        f"python3 FILE (behind PATH: {real})": [real, path],
        f"{interpreter()} FILE": [interpreter(), path],
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for argv in variants.values():  # warm caches once, and check the command works
        subprocess.run(argv, capture_output=True, check=True)
    for _ in range(runs):
        for name, argv in variants.items():
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            samples[name].append((time.perf_counter() - started) * 1000)
    shutil.rmtree(workdir)

    print(f"command: {' '.join(variants['agentlobby run-code FILE'])}")
    print(f"{runs} runs per variant, interleaved")
    width = max(map(len, samples))
    print(f"{'variant':{width}} {'median ms':>10} {'p95 ms':>8} {'min ms':>7}")
    for name, values in samples.items():
        med, p95 = statistics.median(values), percentile(values, 95.0)
        print(f"{name:{width}} {med:10.1f} {p95:8.1f} {min(values):7.1f}")
    names = list(variants)
    cmd = statistics.median(samples[names[0]])
    for base in names[1:]:
        ratio = cmd / statistics.median(samples[base])
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"run-code vs {base}: {ratio:.2f}x, goal {GOAL}x {verdict}")


if __name__ == "__main__":
    main()
