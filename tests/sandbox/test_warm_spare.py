"""The warm spare helper: one run per helper, a dead spare falls back cold, threads share it
safely, and no spare outlives the process that started it.

A run's helper pid is visible to the code at the rlimits levels, where the helper is the code's
parent (its init); the namespace levels hide it behind a pid namespace, so these tests look at
the spare from the host (helpers._spares) and at the code's parent at the rlimits level.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlobby.sandbox import helpers, runner
from agentlobby.sandbox.runner import ExecutionResult, interpreter, run_python
from tests.support.paths import FUNCTIONS_DIR

KEY = (interpreter(), os.geteuid())


@pytest.fixture(autouse=True)
def no_spare_before_or_after() -> Iterator[None]:
    """Each test starts without a spare and leaves none behind."""
    helpers._close_spares()
    try:
        yield
    finally:
        helpers._close_spares()


def spare_pid() -> int:
    """The idle spare's pid, waiting until the run that started it has put it in place."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        helper = helpers._spares.get(KEY)
        if helper is not None:
            return helper.pid
        time.sleep(0.01)
    raise AssertionError("no spare helper was started")


def exists(pid: int) -> bool:
    """Whether pid is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def helper_pid(result: ExecutionResult) -> int:
    assert result.exit_code == 0, result
    return int(result.stdout)


def test_each_run_has_its_own_helper_and_the_spare_is_the_next_one() -> None:
    parent = "import os; print(os.getppid())"  # at the rlimits levels the helper is the parent
    first = helper_pid(run_python(parent, isolation="rlimits"))
    spare = spare_pid()
    assert spare != first and not exists(first)  # the first helper served one run and is gone
    second = helper_pid(run_python(parent, isolation="rlimits"))
    assert second == spare  # the run took the spare
    assert not exists(second) and spare_pid() not in (first, second)


def test_the_spare_carries_nothing_of_earlier_runs() -> None:
    taint = """
        import builtins, os, sys
        builtins.LEFT_BEHIND = 1
        sys.modules["left_behind"] = sys
        os.environ["LEFT_BEHIND"] = "1"
        open("left_behind.txt", "w").write("x")
        print(hash("agentlobby"))
    """
    look = """
        import builtins, os, sys
        print(hasattr(builtins, "LEFT_BEHIND"), "left_behind" in sys.modules,
              "LEFT_BEHIND" in os.environ, sorted(os.listdir(".")))
        print(hash("agentlobby"))
    """
    first = run_python(textwrap.dedent(taint))
    spare = spare_pid()
    second = run_python(textwrap.dedent(look))
    assert first.exit_code == 0 and second.exit_code == 0, (first, second)
    assert second.stdout.splitlines()[0] == "False False False ['main.py']"
    # A fresh interpreter per run: its own hash seed (equal by chance once in 2**64).
    assert second.stdout.splitlines()[1] != first.stdout.strip()
    assert not exists(spare)


def test_a_killed_spare_falls_back_to_a_cold_helper() -> None:
    run_python("pass")
    spare = spare_pid()
    os.kill(spare, signal.SIGKILL)
    while exists(spare):
        time.sleep(0.01)
    result = run_python("import os; print(os.getppid())", isolation="rlimits")
    assert result.exit_code == 0 and int(result.stdout) != spare, result
    assert run_python("print('again')").stdout == "again\n"


def test_a_spare_that_dies_after_the_liveness_check_falls_back_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed between being taken and reading its job: the write fails or nothing is reported,
    and the run goes to a cold helper without the code running twice."""
    run_python("pass")
    spare = spare_pid()
    original = runner.take_spare

    def take_and_kill(key: tuple[str, int]) -> helpers._Helper | None:
        helper = original(key)
        if helper is not None:
            os.kill(helper.pid, signal.SIGKILL)
        return helper

    monkeypatch.setattr(runner, "take_spare", take_and_kill)
    result = run_python("import os; print('ran', os.getppid())", isolation="rlimits")
    assert result.exit_code == 0 and result.stdout.count("ran") == 1, result
    assert int(result.stdout.split()[1]) != spare


def test_concurrent_runs_from_threads_all_succeed() -> None:
    results: list[ExecutionResult] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(3):
                results.append(run_python(f"print({n} * 100 + {i})"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = [n * 100 + i for n in range(6) for i in range(3)]
    assert sorted(int(r.stdout) for r in results) == expected
    assert all(r.exit_code == 0 and r.stderr == "" for r in results)
    spare_pid()  # one spare left, not one per thread
    assert list(helpers._spares) == [KEY]


@pytest.mark.parametrize("ending", ["sys.exit(0)", "os._exit(0)", "os.kill(os.getpid(), 9)"])
def test_the_spare_ends_with_the_process_that_started_it(ending: str) -> None:
    """atexit closes it on a normal exit; otherwise EOF on its job pipe ends it."""
    script = f"""
        import os, sys, time
        from agentlobby.sandbox import helpers, runner
        print(runner.run_python("print('ok')").stdout.strip())
        key = (runner.interpreter(), os.geteuid())
        while key not in helpers._spares:
            time.sleep(0.01)
        print(helpers._spares[key].pid, flush=True)
        {ending}
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, "PYTHONPATH": str(FUNCTIONS_DIR)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ok, pid = done.stdout.split()
    assert ok == "ok", done.stderr
    deadline = time.monotonic() + 5
    while exists(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not exists(int(pid)), f"spare {pid} outlived its parent ({ending})"


def test_warm_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_python("print(1)", warm=False).stdout == "1\n"
    assert helpers._spares == {}
    monkeypatch.setenv("AGENTLOBBY_SANDBOX_WARM", "0")
    assert run_python("print(2)").stdout == "2\n"
    assert helpers._spares == {}
    assert run_python("print(3)", warm=True).stdout == "3\n"
    spare_pid()


def test_a_forked_child_does_not_touch_the_parents_spare() -> None:
    run_python("pass")
    spare = spare_pid()
    pid = os.fork()
    if pid == 0:
        ok = helpers._spares == {} and run_python("print(1)").stdout == "1\n"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exists(spare) and helpers._spares[KEY].pid == spare
    assert run_python("import os; print(os.getppid())", isolation="rlimits").stdout == f"{spare}\n"


def test_a_spare_that_cannot_be_started_costs_the_run_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of descriptors for the next run's spare: this run still answers, and its helper and
    pipes are not left behind."""

    def out_of_fds(python: str) -> helpers._Helper:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(helpers, "spawn", out_of_fds)  # the spare's start, not the run's
    fds_before = len(os.listdir("/proc/self/fd"))
    result = run_python("print('ran')", isolation="rlimits")
    assert (result.exit_code, result.stdout) == (0, "ran\n")
    assert KEY not in helpers._spares
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_a_helper_that_runs_out_of_descriptors_leaks_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipes made before /dev/null could not be opened are closed again."""

    def refused(*args: object) -> int:
        raise OSError(24, "Too many open files")

    fds_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(helpers.os, "open", refused)
    with pytest.raises(runner.SandboxUnavailable, match="Too many open files"):
        helpers.spawn(interpreter())
    monkeypatch.undo()
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_a_fork_while_a_helper_waits_for_its_job_does_not_hold_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread forks between a helper's start and its job: the child's copy of the job
    pipe must not keep the helper waiting for an EOF (the run would time out, its code unrun)."""
    spawn = runner.spawn
    children: list[int] = []

    def spawn_then_fork(python: str) -> helpers._Helper:
        helper = spawn(python)
        pid = os.fork()
        if pid == 0:  # a long-lived child, e.g. a worker forked by a server
            time.sleep(10)
            os._exit(0)
        children.append(pid)
        return helper

    monkeypatch.setattr(runner, "spawn", spawn_then_fork)
    try:
        result = run_python(
            "print('ran')",
            isolation="rlimits",
            warm=False,
            limits=runner.SandboxLimits(timeout_s=2),
        )
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "ran\n", False)
