"""The sandbox as the interpreter agent sees it: ordinary code runs as it would anywhere, each
run in a fresh directory, and nothing of it outlives the run.

docs/sandbox.md's claims are checked by the tests of this folder, each at every isolation level
it holds at (tests/support/sandbox.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentlobby.errors import ConfigError, InvalidMessage
from agentlobby.sandbox.runner import SandboxLimits, run_python
from tests.support.paths import FUNCTIONS_DIR
from tests.support.sandbox import (
    ALL_LEVELS,
    IS_ROOT,
    LEVEL_NAMES,
    NAMESPACE_LEVELS,
    host_processes_with,
    run,
)

pytestmark = pytest.mark.usefixtures("sandbox_tmpdir")  # no run directory is left behind


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
