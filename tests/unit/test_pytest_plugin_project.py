"""Which main.py the pytest plugin serves, and the refusals that name the fix (no stack here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlobby.errors import ConfigError
from agentlobby_testing.project import extra_env, find_main
from tests.support.paths import MAIN_PY

USER_MAIN = (
    "import functions_framework\n\n\n"
    "@functions_framework.http\n"
    "def user(request):\n"
    "    return respond(handle_request, request)\n"
)


def project(root: Path, where: str = "main.py", text: str = USER_MAIN) -> Path:
    main = root / where
    main.parent.mkdir(parents=True, exist_ok=True)
    main.write_text(text)
    return main


def test_the_option_wins_over_the_ini_and_the_rootdir(tmp_path: Path) -> None:
    project(tmp_path)
    given = project(tmp_path, "given/main.py")
    ini = project(tmp_path, "ini/main.py")
    assert find_main(str(given), "ini/main.py", tmp_path, tmp_path) == given
    assert find_main(None, "ini/main.py", tmp_path, tmp_path) == ini
    assert find_main(None, None, tmp_path, tmp_path) == tmp_path / "main.py"


def test_the_rootdir_falls_back_to_functions_main_py_as_in_this_repository() -> None:
    assert find_main(None, None, MAIN_PY.parent.parent, MAIN_PY.parent.parent) == MAIN_PY


def test_no_main_py_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass --agentlobby-main PATH or set agentlobby_main"):
        find_main(None, None, tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="is not a file"):
        find_main(str(tmp_path / "nowhere" / "main.py"), None, tmp_path, tmp_path)


@pytest.mark.parametrize(
    ("where", "text", "problem"),
    [
        ("entry.py", USER_MAIN, "is not named main.py"),
        ("main.py", "def user(:\n", "is not valid Python"),
        ("main.py", USER_MAIN.replace("def user", "def users"), "has no `user` HTTP entry"),
    ],
)
def test_a_main_py_that_cannot_serve_the_fixtures_is_refused(
    tmp_path: Path, where: str, text: str, problem: str
) -> None:
    main = project(tmp_path, where, text)
    with pytest.raises(ConfigError, match=problem):
        find_main(str(main), None, tmp_path, tmp_path)


def test_env_lines_are_name_equals_value() -> None:
    assert extra_env(["AGENTLOBBY_STALL_S = 5", "X=a=b"]) == {"AGENTLOBBY_STALL_S": "5", "X": "a=b"}
    for bad in ("NOVALUE", "=5"):
        with pytest.raises(ConfigError, match="expected NAME=VALUE"):
            extra_env([bad])
