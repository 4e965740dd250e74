"""Which main.py the plugin serves: the one the user named, else the one beside the tests.

Read once per session, before the stack starts, so a wrong path fails with a message that says
what to pass instead of a function server's traceback.
"""

from __future__ import annotations

from pathlib import Path

from agentlobby.errors import ConfigError
from agentlobby_testing.plugin import ENV_INI, MAIN_INI, MAIN_OPTION
from local_emulator.roster import discover_targets

USER_TARGET = "user"


def find_main(given: str | None, ini_value: str | None, ini_dir: Path, rootdir: Path) -> Path:
    """`--agentlobby-main`, else the `agentlobby_main` ini value (relative to the ini file),
    else `main.py` or `functions/main.py` in pytest's rootdir."""
    if given:
        return _checked(Path(given).expanduser().resolve(), f"{MAIN_OPTION} {given}")
    if ini_value:
        return _checked((ini_dir / ini_value).resolve(), f"{MAIN_INI} = {ini_value}")
    for candidate in (rootdir / "main.py", rootdir / "functions" / "main.py"):
        if candidate.is_file():
            return _checked(candidate.resolve(), "found in the rootdir")
    raise ConfigError(
        f"no main.py in {rootdir} or {rootdir / 'functions'}: the agentlobby fixtures serve "
        f"your Cloud Functions' main.py; pass {MAIN_OPTION} PATH or set {MAIN_INI} in your "
        "pytest configuration"
    )


def _checked(main_py: Path, source: str) -> Path:
    if not main_py.is_file():
        raise ConfigError(f"{main_py} ({source}) is not a file: name your functions' main.py")
    if main_py.name != "main.py":
        raise ConfigError(
            f"{main_py} ({source}) is not named main.py, the file Cloud Functions load: "
            "name the main.py of your functions' folder"
        )
    try:
        targets = discover_targets(main_py)
    except SyntaxError as exc:
        raise ConfigError(f"{main_py} ({source}) is not valid Python: {exc}") from exc
    if not any(t.name == USER_TARGET and t.kind == "http" for t in targets):
        raise ConfigError(
            f"{main_py} ({source}) has no `{USER_TARGET}` HTTP entry point, which the fixtures "
            "post through: add `@functions_framework.http def user(request): return "
            "respond(handle_request, request)` (README, 'Your own agent')"
        )
    return main_py


def extra_env(lines: list[str]) -> dict[str, str]:
    """The `agentlobby_env` ini lines, `NAME=VALUE` each, for every function server."""
    env = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{ENV_INI}: expected NAME=VALUE, found {line!r}")
        env[name.strip()] = value.strip()
    return env
