"""`agentlobby run-code`: the sandbox from the command line, one JSON object per run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentlobby_cli import run_code

pytestmark = pytest.mark.usefixtures("sandbox_tmpdir")  # no run directory is left behind


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
