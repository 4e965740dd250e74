"""The sandbox's walls: no network, no host files, no host environment, nothing to signal.

Network tests only ever touch a 127.0.0.1 listener this file opens itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from agentlobby.sandbox.runner import ExecutionResult
from tests.support.paths import FUNCTIONS_DIR
from tests.support.sandbox import ALL_LEVELS, IS_ROOT, NAMESPACE_LEVELS, run

pytestmark = pytest.mark.usefixtures("sandbox_tmpdir")  # no run directory is left behind


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
