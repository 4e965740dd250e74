"""The pytest plugin (entry point `pytest11: agentlobby`): fixtures to test your own agents.

- `agentlobby_stack` (session): the local stack on the real emulators, serving your project's
  main.py and agent modules, with the offline model server as every agent's model;
- `agentlobby_user` (session): post to a lobby, wait for a reply or for the end (user.py);
- `agentlobby_model` (each test): the scripted model, `play(rules)` and `requests` (model.py).

pytest imports this module in every project where agentlobby is installed, so it imports only
pytest here: the stack, the clients and the emulators are reached for when a test asks for a
fixture, and a session whose tests use none starts nothing. The names all start with
`agentlobby_`, so they never shadow a project's own `stack` or `user` fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agentlobby_testing.model import ScriptedModel
    from agentlobby_testing.user import LobbyUser
    from local_emulator.stack import Stack

MAIN_OPTION = "--agentlobby-main"
MAIN_INI = "agentlobby_main"
ENV_INI = "agentlobby_env"
STARTED = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentlobby", "agentlobby: your agents on the local stack")
    group.addoption(
        MAIN_OPTION,
        metavar="PATH",
        default=None,
        help="the main.py whose entry points the agentlobby fixtures serve "
        "(default: main.py or functions/main.py in the rootdir)",
    )
    parser.addini(MAIN_INI, "the main.py the agentlobby fixtures serve, relative to this file")
    parser.addini(
        ENV_INI,
        "NAME=VALUE lines: environment for every function server of the agentlobby stack",
        type="linelist",
    )


@pytest.fixture(scope="session")
def agentlobby_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The local stack serving your main.py: started at the first test that asks, stopped
    (emulators included) at the end of the session."""
    from agentlobby.errors import ConfigError
    from agentlobby_testing.project import extra_env, find_main
    from local_emulator.model_server.script import Script
    from local_emulator.stack import Stack

    config = request.config
    ini_dir = config.inipath.parent if config.inipath else config.rootpath
    ini_main = config.getini(MAIN_INI)
    try:
        main_py = find_main(
            config.getoption(MAIN_OPTION), ini_main or None, ini_dir, config.rootpath
        )
        env = extra_env(config.getini(ENV_INI))
    except ConfigError as exc:
        pytest.fail(f"agentlobby: {exc}", pytrace=False)
    home = tmp_path_factory.mktemp("agentlobby-stack")
    stack = Stack(
        port_base=0,
        functions_dir=main_py.parent,
        model_script=Script.from_dict({"rules": []}),
        log_dir=home / "logs",
        extra_env=env,
    )
    started = time.monotonic()
    try:
        try:
            stack.start()
        except RuntimeError as exc:
            pytest.fail(f"agentlobby: the local stack did not start: {exc}", pytrace=False)
        config.stash[STARTED] = (
            f"local stack for {main_py} started in {time.monotonic() - started:.1f} s "
            f"({len(stack.targets)} functions); logs in {stack.log_dir}"
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def agentlobby_user(agentlobby_stack: Stack) -> LobbyUser:
    """Post to a lobby and wait for replies, as a user of the stack's user function."""
    from agentlobby_testing.user import LobbyUser

    assert agentlobby_stack.info is not None
    return LobbyUser(agentlobby_stack.info)


@pytest.fixture
def agentlobby_model(agentlobby_stack: Stack) -> Iterator[ScriptedModel]:
    """The agents' model for this test: no rules until `play(rules)`; emptied afterwards."""
    from agentlobby_testing.model import ScriptedModel

    assert agentlobby_stack.model_server is not None
    model = ScriptedModel(agentlobby_stack.model_server)
    model.reset()
    try:
        yield model
    finally:
        model.reset()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    started = terminalreporter.config.stash.get(STARTED, None)
    if started is not None:
        terminalreporter.write_line(f"agentlobby: {started}")
