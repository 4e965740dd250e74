"""The roster of functions: functions/main.py's entry points, the one place they are declared.

Every `@functions_framework.cloud_event` entry that calls `deliver(event, "<module>")` is a lobby
agent, one that calls `deliver_remote` serves the remote A2A members (registered at run time),
`dead_letters` takes the dead-letter topic, and each `http` entry is an HTTP function (the user
agent, the sandbox). main.py is read, not imported, so the stack does not load
every agent to start. infra/functions.conf deploys the same roster; a test holds the two, and
each agent module's AGENT.name, in agreement.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from agentlobby.agents import AgentSpec

DEAD_LETTER_TARGET = "dead_letters"
REMOTE_DELIVERY = "deliver_remote"


@dataclass(frozen=True)
class FunctionTarget:
    name: str
    kind: str  # "http", "agent", "remote" or "dead-letter"
    module: str | None = None


def discover_targets(main_py: Path) -> list[FunctionTarget]:
    """Read main.py's entry points without importing it."""
    tree = ast.parse(main_py.read_text(), filename=str(main_py))
    targets = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = {ast.unparse(d) for d in node.decorator_list}
        if "functions_framework.http" in decorators:
            targets.append(FunctionTarget(node.name, "http"))
        elif "functions_framework.cloud_event" in decorators:
            module = _delivered_module(node)
            if module:
                targets.append(FunctionTarget(node.name, "agent", module))
            elif _calls(node, REMOTE_DELIVERY):
                targets.append(FunctionTarget(node.name, "remote"))
            elif node.name == DEAD_LETTER_TARGET:
                targets.append(FunctionTarget(node.name, "dead-letter"))
    return targets


def _calls(node: ast.FunctionDef, function: str) -> bool:
    return any(
        isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == function
        for call in ast.walk(node)
    )


def _delivered_module(node: ast.FunctionDef) -> str | None:
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "deliver"
            and len(call.args) == 2
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
        ):
            return call.args[1].value
    return None


def agent_spec(target: FunctionTarget) -> AgentSpec:
    assert target.module is not None
    spec = getattr(importlib.import_module(target.module), "AGENT", None)
    if not isinstance(spec, AgentSpec):
        raise RuntimeError(f"{target.module} (entry point {target.name}) defines no AGENT")
    return spec


def declared_agent(name: str, functions_dir: Path) -> AgentSpec | None:
    """The AGENT of main.py's entry point `name` (what it listens to, its description), or None
    when main.py has no such agent: for registering a deployed agent with what it declares."""
    main_py = functions_dir / "main.py"
    if not main_py.is_file():
        return None
    target = next((t for t in discover_targets(main_py) if t.name == name), None)
    if target is None or target.kind != "agent":
        return None
    if str(functions_dir) not in sys.path:
        sys.path.insert(0, str(functions_dir))  # agent modules beside main.py, as deployed
    return agent_spec(target)
