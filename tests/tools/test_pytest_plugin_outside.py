"""The pytest plugin, used as an outside user uses it: agentlobby installed as a package.

A wheel of this checkout is built and installed into a fresh virtual environment, which finds
agentlobby's dependencies in this project's environment through a .pth line (so nothing is
downloaded) but agentlobby itself only in its own site-packages: no PYTHONPATH, no editable
install. The user's project is written in a temporary folder exactly as the README's "Your own
agent" and docs/testing.md show it, and `python -m pytest` runs there in a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.readme import agent_example, python_blocks

SOURCES = ("pyproject.toml", "README.md", "agentlobby_cli", "agentlobby_testing", "local_emulator")
STACK_LINE = "agentlobby: local stack for "


def docs_files() -> dict[str, str]:
    """docs/testing.md's example files, by the path on each block's first line."""
    found = {}
    for block in python_blocks((REPO / "docs" / "testing.md").read_text()):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (\S+\.py)( \(at the end\))?", first)
        if match:
            found[match.group(1)] = block
    assert sorted(found) == ["main.py", "my_agents/poet.py", "tests/test_poet.py"], found
    return found


def outside_env() -> dict[str, str]:
    """This environment without anything that points at this checkout or at a stack; a model
    URL that answers nothing, so a test reaching past the scripted model fails."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_", "OTEL_"))
    }
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    env["OPENAI_API_KEY"] = "sk-never-used"
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip settings play no part
    return env


def run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def outside_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The interpreter of a fresh venv with agentlobby installed from a wheel of this checkout."""
    home = tmp_path_factory.mktemp("outside")
    source = home / "source"  # the build writes build/ and egg-info: never into the checkout
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "functions" / "agentlobby",
        source / "functions" / "agentlobby",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            "wheels",
            "./source",
        ],
        home,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (home / "wheels").glob("agentlobby-*.whl")
    made = run([sys.executable, "-m", "venv", "--without-pip", "venv"], home)
    assert made.returncode == 0, made.stderr
    python = home / "venv" / "bin" / "python"
    # Installed before the dependencies' path is added, so pip sees no other agentlobby.
    installed = run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "--ignore-installed",
         str(wheel)],
        home,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], home
    )
    venv_site = Path(site.stdout.strip())
    (venv_site / "zz-agentlobby-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    yield python


def test_the_venv_imports_agentlobby_from_the_wheel_not_this_checkout(outside_python: Path) -> None:
    where = run(
        [str(outside_python), "-c",
         "import agentlobby, agentlobby_testing.plugin, local_emulator, functions_framework;"
         "print(agentlobby.__file__); print(agentlobby_testing.plugin.__file__)"],
        outside_python.parent,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    venv = outside_python.parent.parent.resolve()
    for line in where.stdout.split():
        path = Path(line).resolve()
        assert path.is_relative_to(venv), f"{path} is not in the venv {venv}"
        assert not path.is_relative_to(REPO)


def write_readme_project(project: Path) -> None:
    """The README's project (main.py, my_agents/shout.py, tests/test_shout.py) plus
    docs/testing.md's poet agent and its test."""
    example = agent_example()
    docs = docs_files()
    (project / "my_agents").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "my_agents" / "__init__.py").write_text("")
    (project / "my_agents" / "shout.py").write_text(example.module)
    (project / "my_agents" / "poet.py").write_text(docs["my_agents/poet.py"])
    (project / "main.py").write_text(example.project_main + "\n\n" + docs["main.py"])
    (project / "tests" / "test_shout.py").write_text(example.project_test)
    (project / "tests" / "test_poet.py").write_text(docs["tests/test_poet.py"])


def test_the_readme_project_passes_its_tests_on_a_stack_of_its_own(
    outside_python: Path, tmp_path: Path
) -> None:
    project = tmp_path / "my-project"
    write_readme_project(project)
    done = run(
        [str(outside_python), "-m", "pytest", "-v", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'basetemp'}"],
        project,
        timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "test_shout.py::test_shout_answers_in_capitals PASSED" in output
    assert "test_poet.py::test_poet_answers_with_the_models_poem PASSED" in output
    assert "2 passed" in output
    assert f"{STACK_LINE}{project / 'main.py'} started in" in output
    assert "(3 functions)" in output  # user, shout, poet: this project's, not agentlobby's


def test_a_project_whose_tests_use_no_fixture_starts_no_stack(
    outside_python: Path, tmp_path: Path
) -> None:
    project = tmp_path / "plain"
    project.mkdir()
    (project / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    (project / "conftest.py").write_text(
        "import sys\n\n\n"
        "def pytest_sessionfinish(session):\n"
        "    heavy = ['local_emulator.stack', 'agentlobby_testing.user',\n"
        "             'google.cloud.pubsub_v1']\n"
        "    with open('imported.txt', 'w') as out:\n"
        "        out.write(' '.join(name for name in heavy if name in sys.modules))\n"
    )
    # The option is the plugin's: pytest would refuse it if the plugin were not loaded. Its
    # path is never read, since no test asks for a stack.
    done = run(
        [str(outside_python), "-m", "pytest", "-p", "no:cacheprovider",
         "--agentlobby-main=nowhere/main.py"],
        project,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "1 passed" in output
    assert STACK_LINE not in output
    assert (project / "imported.txt").read_text() == ""


def test_a_main_py_without_the_user_function_fails_with_the_fix_and_no_traceback(
    outside_python: Path, tmp_path: Path
) -> None:
    project = tmp_path / "no-user"
    project.mkdir()
    (project / "main.py").write_text(
        "import functions_framework\n\n\n"
        "@functions_framework.cloud_event\n"
        "def shout(event):\n"
        "    deliver(event, 'my_agents.shout')\n"
    )
    (project / "test_it.py").write_text(
        "def test_it(agentlobby_user):\n    pass\n\n\ndef test_plain():\n    pass\n"
    )
    done = run([str(outside_python), "-m", "pytest", "-p", "no:cacheprovider"], project)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-4000:]
    assert "1 passed, 1 error" in output
    assert "has no `user` HTTP entry point" in output
    assert "respond(handle_request, request)" in output  # the fix
    assert "Traceback" not in output and "project.py" not in output
    assert STACK_LINE not in output
