"""How much a sandboxed run costs over a plain `python3` subprocess on the same snippet.

Runs in process, as the interpreter agent does: `run_python(snippet)` against `subprocess.run`
of the same file, interleaved round by round so that load from other work on the machine hits
every variant alike. Two baselines, both measured in this run:

- the interpreter the sandbox uses (sandbox.runner.interpreter()): the sandbox's true overhead;
- `python3` as found on PATH: what a user would have typed (on a pyenv machine a shell
  shim), and the real interpreter behind it (without the shim's cost).

Each level is measured three ways: `warm` (the spare helper started by the previous run is
ready: in the interleaved rounds other variants run in between), `warm back-to-back` (two runs
in a row, the second timed: its spare was started at the beginning of the first and may not
be ready), and `cold` (warm=False: a helper started for the run, as without the spare). The
spare's start is not free, it runs beside the caller's work: the `cpu ms` column counts the
CPU of this process and of every reaped child per call, so a warm run's column includes the
spare it reaped (started by the run before), and the total work per run stays visible.

Goal: at most 1.3x against the first baseline (the honest one: same interpreter, same file); the
others are printed for context. This is a benchmark, not a test: it prints and never fails.
Usage: python bench/bench_sandbox.py [--runs N] [--snippet CODE]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Literal

from timing import percentile

from agentlobby.sandbox.runner import interpreter, run_python

GOAL = 1.3
Isolation = Literal["auto", "namespaces", "userns", "rlimits"]


def resolved(python3: str) -> str:
    """The interpreter file a `python3` command (maybe a pyenv shim) really runs."""
    code = "import os, sys; print(os.path.realpath(sys.executable))"
    return subprocess.run([python3, "-c", code], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per variant (>= 20)")
    parser.add_argument("--snippet", default="print('hi')", help="the code to run")
    args = parser.parse_args()
    runs = max(20, args.runs)
    workdir = tempfile.mkdtemp(prefix="bench-sandbox-")
    path = os.path.join(workdir, "main.py")
    with open(path, "w") as f:
        f.write(args.snippet + "\n")
    python = interpreter()
    path_python = shutil.which("python3") or python
    real_python = resolved(path_python)

    def plain(exe: str) -> Callable[[], object]:
        return lambda: subprocess.run([exe, path], cwd=workdir, capture_output=True, check=True)

    def sandboxed(level: Isolation, warm: bool) -> Callable[[], object]:
        return lambda: run_python(args.snippet, isolation=level, warm=warm)

    levels: list[Isolation] = ["auto", "rlimits"]
    variants: dict[str, Callable[[], object]] = {
        f"plain {python}": plain(python),
        f"plain python3 on PATH ({path_python})": plain(path_python),
        f"plain python3 behind PATH ({real_python})": plain(real_python),
    }
    for level in levels:
        variants[f"sandbox {level} warm"] = sandboxed(level, True)
        variants[f"sandbox {level} warm back-to-back"] = sandboxed(level, True)
        variants[f"sandbox {level} cold"] = sandboxed(level, False)
    isolation = {level: run_python(args.snippet, isolation=level).isolation for level in levels}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm caches once
        fn()
    for _ in range(runs):
        for name, fn in variants.items():
            if name.endswith("back-to-back"):
                fn()  # untimed: the timed run follows at once, its spare just started
            cpu_before = cpu_seconds()
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((cpu_seconds() - cpu_before) * 1000)
    shutil.rmtree(workdir)

    print(f"snippet {args.snippet!r}, {runs} runs per variant, interleaved")
    print(f"sandbox interpreter: {python}; levels: {isolation}")
    width = max(map(len, samples))
    print(f"{'variant':{width}} {'median ms':>10} {'p95 ms':>8} {'min ms':>7} {'cpu ms':>7}")
    for name, values in samples.items():
        med, p95 = statistics.median(values), percentile(values, 95.0)
        used = statistics.median(cpu[name])
        print(f"{name:{width}} {med:10.1f} {p95:8.1f} {min(values):7.1f} {used:7.1f}")
    names = list(variants)
    for level in levels:
        for how in ("warm", "warm back-to-back", "cold"):
            sandbox = statistics.median(samples[f"sandbox {level} {how}"])
            for n, base in enumerate(names[:3]):
                base_ms = statistics.median(samples[base])
                ratio = sandbox / base_ms
                verdict = "met" if ratio <= GOAL else "NOT met"
                role = "the goal's baseline" if n == 0 else "context only"
                print(
                    f"{level} ({isolation[level]}) {how} vs {base}: {ratio:.2f}x "
                    f"({sandbox - base_ms:+.1f} ms), goal {GOAL}x {verdict} [{role}]"
                )


def cpu_seconds() -> float:
    """CPU used so far by this process and every child it has reaped (their children too)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
