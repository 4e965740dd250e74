"""The sandbox's limits: wall clock, CPU time, memory, processes, file size and output."""

from __future__ import annotations

import time

import pytest

from tests.support.sandbox import ALL_LEVELS, run

pytestmark = pytest.mark.usefixtures("sandbox_tmpdir")  # no run directory is left behind


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_wall_clock_timeout(level: str) -> None:
    started = time.monotonic()
    result = run("import time\nprint('started', flush=True)\ntime.sleep(60)", level, timeout_s=1)
    assert result.timed_out and result.reason == "timeout" and result.exit_code is None
    assert result.stdout == "started\n"  # output before the timeout is kept
    assert 900 <= result.duration_ms < 2500
    assert time.monotonic() - started < 3


def test_cpu_time_limit() -> None:
    result = run("while True:\n    pass", timeout_s=30, cpu_s=1)
    assert result.reason == "cpu-time" and not result.timed_out
    assert result.exit_code == -24  # SIGXCPU
    assert result.duration_ms < 15_000  # one CPU second, however busy the machine is


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_memory_limit(level: str) -> None:
    result = run("x = bytearray(600 << 20)\nprint('allocated')", level, memory_mb=200)
    assert result.reason == "memory" and result.exit_code == 1
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout
    assert run("x = bytearray(50 << 20)\nprint('ok')", level, memory_mb=200).stdout == "ok\n"


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_process_limit(level: str) -> None:
    forks = "import subprocess\nps = [subprocess.Popen(['sleep', '5']) for _ in range(40)]"
    result = run(forks, level, max_processes=8)
    assert result.reason == "processes" and result.exit_code == 1
    assert "Resource temporarily unavailable" in result.stderr
    threads = """
        import threading, time
        for _ in range(40):
            threading.Thread(target=time.sleep, args=(0.3,), daemon=True).start()
    """
    assert run(threads, level, max_processes=8).reason == "processes"
    nonblocking = "import os\nr, w = os.pipe()\nos.set_blocking(r, False)\nos.read(r, 1)"
    other_eagain = run(nonblocking, level, max_processes=8)  # EAGAIN, but not the limit
    assert other_eagain.exit_code == 1 and other_eagain.reason is None


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_file_size_limit(level: str) -> None:
    result = run("open('big', 'wb').write(b'x' * (3 << 20))", level, max_file_mb=1)
    assert result.reason == "file-size" and result.exit_code == 1
    assert "File too large" in result.stderr
    assert run("open('ok', 'wb').write(b'x' * 1000)", level, max_file_mb=1).exit_code == 0


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_output_is_capped_and_a_flood_ends_the_run(level: str) -> None:
    flood = run("while True:\n    print('x' * 999)", level, timeout_s=10, max_output_bytes=50_000)
    assert flood.truncated and flood.reason == "output-flood" and flood.exit_code is None
    assert len(flood.stdout) == 50_000 and flood.duration_ms < 3000
    err = run("import os\nos.write(2, b'y' * 10_000_000)", level, max_output_bytes=1000)
    assert err.truncated and err.stderr == "y" * 1000 and err.reason == "output-flood"
    small = run("print('a' * 100)", level, max_output_bytes=1000)
    assert not small.truncated and small.reason is None


def test_a_slow_trickle_still_ends_on_time() -> None:
    result = run(
        "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.01)", timeout_s=1
    )
    assert result.timed_out and result.stdout.startswith("tick\n") and result.duration_ms < 2500
