"""The sandbox as the interpreter agent and `agentlobby run-code` see it: real runs, real limits.

Every claim of docs/sandbox.md has a test here. The namespace tests run at both namespace levels
(as root: `namespaces+uid`, and `userns`, which root enters as a fresh unprivileged uid) and are
skipped, with the reason, where the machine cannot create them. Network tests only ever touch a
127.0.0.1 listener this file opens itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlobby.errors import ConfigError, InvalidMessage
from agentlobby.sandbox.runner import (
    ExecutionResult,
    SandboxLimits,
    SandboxUnavailable,
    run_python,
)
from agentlobby_cli import run_code

IS_ROOT = os.geteuid() == 0
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"


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


@pytest.fixture(autouse=True)
def sandbox_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private TMPDIR for the run directories, so a test can see that none is left behind."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    path.chmod(0o1777)  # like /tmp: the uid levels walk in, the unprivileged test writes
    monkeypatch.setenv("TMPDIR", str(path))
    try:
        yield path
        assert list(path.iterdir()) == [], "a run directory was left behind"
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


# --- ordinary code ---------------------------------------------------------------------------


def test_auto_takes_the_strongest_level_here() -> None:
    result = run("print('hello')")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "hello\n", "")
    assert result.isolation in (("namespaces+uid",) if IS_ROOT else ("userns", "rlimits-only"))
    assert result.reason is None and not result.timed_out and not result.truncated
    assert json.loads(json.dumps(result.to_json_dict()))["stdout"] == "hello\n"


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_ordinary_code_runs_normally(level: str) -> None:
    result = run_python(
        textwrap.dedent(
            """
            import json, multiprocessing, os, subprocess, sys, tempfile, threading
            from helpers.greet import greet
            results = []
            threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(8)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            with open("out.txt", "w") as f:
                f.write(greet("file"))
            child = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True)
            shell = subprocess.run(["sh", "-c", "echo from sh"], capture_output=True, text=True)
            with multiprocessing.Pool(2) as pool:
                squares = pool.map(abs, [-1, -2, -3])
            with tempfile.NamedTemporaryFile() as tmp:
                tmp.write(b"scratch")
            print(json.dumps({
                "threads": sorted(results),
                "file": open("out.txt").read(),
                "data": open("data/input.csv").read(),
                "child": child.stdout.decode().strip(),
                "shell": shell.stdout.strip(),
                "pool": squares,
                "argv": sys.argv,
                "name": __name__,
            }))
            """
        ),
        files={
            "helpers/__init__.py": b"",
            "helpers/greet.py": b"def greet(x):\n    return 'hi ' + x\n",
            "data/input.csv": b"a,b\n1,2\n",
        },
        isolation=level,  # type: ignore[arg-type]
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {
        "threads": [i * i for i in range(8)],
        "file": "hi file",
        "data": "a,b\n1,2\n",
        "child": "42",
        "shell": "from sh",
        "pool": [1, 2, 3],
        "argv": ["main.py"],
        "name": "__main__",
    }


def test_exit_codes_and_tracebacks_look_like_python() -> None:
    assert run("import sys; sys.exit(3)").exit_code == 3
    failed = run("def f():\n    raise ValueError('boom')\nf()\n")
    assert failed.exit_code == 1 and failed.reason is None
    assert failed.stderr.startswith("Traceback (most recent call last):\n")
    assert 'main.py", line 2, in f' in failed.stderr and "ValueError: boom" in failed.stderr
    assert "inside" not in failed.stderr
    broken = run("def (:")
    assert broken.exit_code == 1 and "SyntaxError" in broken.stderr


def test_bad_inputs_are_refused_before_running() -> None:
    with pytest.raises(InvalidMessage, match="relative path"):
        run_python("", files={"../escape.py": b""})
    with pytest.raises(InvalidMessage, match="under the file 'data'"):
        run_python("", files={"data": b"", "data/input.csv": b""})
    with pytest.raises(ConfigError, match="timeout_s"):
        SandboxLimits(timeout_s=0)


# --- working directory and leftovers ----------------------------------------------------------


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_each_run_gets_a_fresh_directory_that_is_removed(level: str, sandbox_tmpdir: Path) -> None:
    first = run("import os\nopen('marker.txt', 'w').write('x')\nprint(os.getcwd())", level)
    second = run("import os\nprint(sorted(os.listdir('.')))", level)
    assert first.exit_code == 0 and second.stdout == "['main.py']\n"
    assert list(sandbox_tmpdir.iterdir()) == []


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_no_process_survives_the_run(level: str) -> None:
    marker = f"{time.time_ns() % 10**9}"
    daemons = f"""
        import os, subprocess, time
        # double-forked, new session, ignoring TERM and HUP: the classic daemon
        subprocess.run(["sh", "-c", "(trap '' TERM HUP; setsid sleep 300.{marker} &) ; exit 0"])
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "301.{marker}"])
            os._exit(0)
        time.sleep(0.2)
        print("spawned")
    """
    assert run(daemons, level).stdout == "spawned\n"
    timed_out = run(daemons + "\n        time.sleep(60)\n", level, timeout_s=1)
    assert timed_out.reason == "timeout"
    assert host_processes_with(marker) == []


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_nothing_is_written_on_the_host(level: str) -> None:
    marker = f"agentlobby-sandbox-test-{time.time_ns()}"
    targets = [
        f"/tmp/{marker}",
        f"/dev/shm/{marker}",
        f"/{marker}",
        f"/usr/{marker}",
        f"/etc/{marker}",
        f"/var/tmp/{marker}",
    ]
    result = run(
        f"""
        for path in {targets!r}:
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, exc.errno)
        """,
        level,
    )
    assert "wrote /tmp/" in result.stdout  # the sandbox's own tmpfs
    assert f"wrote /usr/{marker}" not in result.stdout
    assert [p for p in targets if os.path.exists(p)] == []


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_the_devices_in_dev_work(level: str) -> None:
    result = run(
        """
        import subprocess
        print(len(open("/dev/urandom", "rb").read(8)), open("/dev/zero", "rb").read(2))
        print(open("/dev/null", "w").write("gone"), open("/dev/null", "rb").read())
        print(subprocess.run(["echo", "x"], stdout=subprocess.DEVNULL).returncode)
        """,
        level,
    )
    assert result.stdout == "8 b'\\x00\\x00'\n4 b''\n0\n", result


# --- limits -----------------------------------------------------------------------------------


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


# --- walls: network, environment, files, processes --------------------------------------------


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_no_network_not_even_loopback(level: str) -> None:
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = run(
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("connected")
            except OSError as exc:
                print("refused", exc.errno)
            """,
            level,
        )
        assert result.stdout.startswith("refused"), result
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_two_concurrent_runs_cannot_reach_each_other(level: str) -> None:
    """Abstract unix sockets live in the network namespace: a shared one would join runs."""
    import threading

    name = f"agentlobby-test-{time.time_ns()}"
    listen = f"""
        import socket, time
        server = socket.socket(socket.AF_UNIX)
        server.bind("\\0{name}")
        server.listen(1)
        own = socket.socket(socket.AF_UNIX)
        own.connect("\\0{name}")  # the listener is real: its own run reaches it
        server.accept()
        print("own run connected")
        server.settimeout(2.5)
        try:
            server.accept()
            print("another run connected")
        except OSError:
            print("nobody else came")
    """
    connect = f"""
        import socket, time
        for _ in range(15):
            try:
                socket.socket(socket.AF_UNIX).connect("\\0{name}")
                print("connected")
                break
            except OSError as exc:
                error = exc.errno
            time.sleep(0.1)
        else:
            print("refused", error)
    """
    results: dict[str, ExecutionResult] = {}
    listener = threading.Thread(target=lambda: results.update(listen=run(listen, level)))
    listener.start()
    try:
        time.sleep(0.3)
        results["connect"] = run(connect, level)
    finally:
        listener.join()
    assert results["listen"].stdout == "own run connected\nnobody else came\n", results["listen"]
    assert results["connect"].stdout == "refused 111\n", results["connect"]  # ECONNREFUSED


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_environment_holds_nothing_of_the_host(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"s3cret-{time.time_ns()}"
    monkeypatch.setenv("AGENTLOBBY_TEST_SECRET", secret)
    holder = subprocess.Popen(["sleep", "30"], env={"HOLDER_SECRET": secret})
    try:
        result = run(
            f"""
            import os
            print(sorted(os.environ))
            pids = [{os.getpid()}, {holder.pid}] + [p for p in os.listdir("/proc") if p.isdigit()]
            for pid in pids:
                try:
                    print(open(f"/proc/{{pid}}/environ", "rb").read())
                except OSError as exc:
                    print(pid, "refused", exc.errno)
            """,
            level,
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 0, result.stderr
    names = eval(result.stdout.splitlines()[0])
    assert set(names) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONUNBUFFERED"}
    if level == "rlimits" and not IS_ROOT:
        pytest.skip("rlimits-only keeps the caller's uid: same-uid /proc/<pid>/environ is readable")
    assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_no_host_files(level: str) -> None:
    secret_dir = Path(tempfile.mkdtemp(prefix="sandbox-secret-"))
    try:
        secret_dir.chmod(0o755)
        secret = secret_dir / "secret.txt"
        secret.write_text("top secret")
        secret.chmod(0o644)
        result = run(
            f"""
            import os
            for path in [{str(secret)!r}, "/etc/shadow", "/etc/passwd", {str(FUNCTIONS_DIR)!r}]:
                try:
                    found = open(path).read() if os.path.isfile(path) else os.listdir(path)
                    print(path, repr(found))
                except OSError as exc:
                    print(path, "refused", exc.errno)
            print("root", os.listdir("/root") if os.path.isdir("/root") else "absent")
            print("top", sorted(os.listdir("/")))
            """,
            level,
        )
    finally:
        shutil.rmtree(secret_dir)
    lines = result.stdout.splitlines()
    assert "top secret" not in result.stdout
    assert lines[0].endswith("refused 2") and lines[1].endswith("refused 2")
    assert "sandbox:x:" in lines[2] and "root:x:0:0" in lines[2]  # our own, not the host's
    assert lines[3].endswith("refused 2")
    assert lines[4] in ("root absent", "root []")
    assert set(eval(lines[5].split(" ", 1)[1])) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "sbin",
        "tmp",
        "usr",
        "work",
    }


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_cannot_signal_or_trace_anything_outside(level: str) -> None:
    result = run(
        f"""
        import ctypes, os, signal
        print("pid", os.getpid(), "uid", os.getuid())
        for pid in [{os.getpid()}, 1]:
            try:
                os.kill(pid, 0)
                print(pid, "signalable")
            except OSError as exc:
                print(pid, "refused", exc.errno)
        libc = ctypes.CDLL(None, use_errno=True)
        print("ptrace", libc.ptrace(16, 1, 0, 0), ctypes.get_errno())  # PTRACE_ATTACH to init
        try:
            os.kill(1, signal.SIGKILL)
        except OSError as exc:
            print("kill init refused", exc.errno)
        with open("/proc/self/status") as f:
            print([line for line in f if line.startswith(("CapEff", "CapBnd", "NoNewPrivs"))])
        print("alive")
        """,
        level,
    )
    out = result.stdout
    assert result.exit_code == 0 and out.endswith("alive\n"), result
    assert out.startswith("pid 2 ")  # a fresh pid namespace: init is 1, the code is 2
    assert f"{os.getpid()} refused 3" in out  # the host's pids do not exist in here
    assert "ptrace -1 1" in out  # EPERM
    assert "CapEff:\\t0000000000000000" in out and "CapBnd:\\t0000000000000000" in out
    assert "NoNewPrivs:\\t1" in out


def test_uid_level_cannot_signal_the_host() -> None:
    if not IS_ROOT:
        pytest.skip("uid+rlimits needs root to switch to a fresh uid")
    result = run(
        f"import os\ntry:\n    os.kill({os.getpid()}, 0)\nexcept OSError as e:\n    print(e.errno)",
        "rlimits",
    )
    assert result.isolation == "uid+rlimits" and result.stdout == "1\n"


@pytest.mark.parametrize("level", NAMESPACE_LEVELS)
def test_reports_its_isolation_level(level: str) -> None:
    assert run("", level).isolation == LEVEL_NAMES[level]


@pytest.mark.skipif(not IS_ROOT, reason="binding an interpreter from another prefix is a root test")
def test_an_interpreter_outside_usr_is_bound_read_only() -> None:
    python = os.path.realpath(sys.executable)
    source = "import os, sys\nprint(sys.executable)\nprint(os.access(sys.prefix, os.W_OK))"
    result = run_python(source, python=python, isolation="namespaces")
    assert result.stdout == f"{python}\nFalse\n", result


# --- not root: what Cloud Functions gets ------------------------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason="needs root to start the check as an unprivileged uid")
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="no /usr/bin/python3 here")
def test_as_an_unprivileged_user(sandbox_tmpdir: Path) -> None:
    marker = f"{time.time_ns() % 10**9}"
    script = f"""
        import json
        from agentlobby.sandbox.runner import SandboxLimits, run_python
        auto = run_python("import os; print(os.getuid())")
        weak = run_python("import subprocess, time\\n"
                          "subprocess.Popen(['setsid', 'sleep', '302.{marker}'])\\n"
                          "time.sleep(30)", limits=SandboxLimits(timeout_s=1), isolation="rlimits")
        print(json.dumps([auto.to_json_dict(), weak.to_json_dict()]))
    """
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            textwrap.dedent(script),
        ],
        env={
            "PYTHONPATH": str(FUNCTIONS_DIR),
            "TMPDIR": str(sandbox_tmpdir),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    auto, weak = json.loads(done.stdout)
    assert auto["isolation"] in ("userns", "rlimits-only") and auto["exit_code"] == 0
    assert weak["isolation"] == "rlimits-only" and weak["reason"] == "timeout"
    assert host_processes_with(marker) == []


# --- agentlobby run-code ----------------------------------------------------------------------


def test_run_code_prints_one_json_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tmp_path / "job.py"
    code.write_text("import sys\nprint('out')\nsys.exit(4)\n")
    assert run_code.main([str(code), "--timeout", "5", "--memory-mb", "256"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == 4 and out["stdout"] == "out\n" and out["reason"] is None
    assert set(out) == {
        "exit_code",
        "stdout",
        "stderr",
        "timed_out",
        "duration_ms",
        "truncated",
        "reason",
        "isolation",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.py"], "cannot read FILE"),
        (["job.py", "--timeout", "soon"], "'soon' is not a number"),
        (["job.py", "--memory-mb", "-5"], "must be a positive int"),
        ([], "the following arguments are required: FILE"),
    ],
)
def test_run_code_usage_errors_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("print(1)\n")
    with pytest.raises(SystemExit) as exit_info:
        run_code.main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_run_code_as_a_command(tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    # Sleeping spends no CPU, so the wall clock, not the CPU limit, is what stops it.
    code.write_text("import time\ntime.sleep(60)\n")
    done = subprocess.run(
        [sys.executable, "-m", "agentlobby_cli.run_code", str(code), "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reason"] == "timeout"
    help_text = subprocess.run(
        [sys.executable, "-m", "agentlobby_cli.run_code", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert help_text.startswith("usage: agentlobby run-code") and "--memory-mb" in help_text
