"""The docs name only commands that exist: every `agentlobby COMMAND` in README.md and docs/ is
a subcommand of the parser, and every `make TARGET` a target of the Makefile."""

from __future__ import annotations

import argparse
import re

import pytest

from agentlobby_cli.main import build_parser
from tests.support.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# In code (backticks or a block): `agentlobby up`, `.venv/bin/agentlobby send ...`
COMMAND = re.compile(r"(?:^|[`\s/$(])agentlobby ([a-z][a-z-]*)", re.MULTILINE)
MAKE = re.compile(r"(?:^|[`\s])make ([a-z][a-z-]*)", re.MULTILINE)


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def code_of(text: str) -> str:
    """The parts of a Markdown text that are code: fenced blocks and inline spans."""
    blocks = re.findall(r"```.*?```", text, re.DOTALL)
    spans = re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    return "\n".join(blocks + spans)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_agentlobby_command_in_the_docs_exists(doc: object) -> None:
    known = subcommands()
    named = set(COMMAND.findall(code_of(doc.read_text())))  # type: ignore[attr-defined]
    assert named <= known, f"{doc}: no such command {sorted(named - known)}; known {sorted(known)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_make_target_in_the_docs_exists(doc: object) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
    named = set(MAKE.findall(code_of(doc.read_text())))  # type: ignore[attr-defined]
    assert named <= targets, f"{doc}: no such make target {sorted(named - targets)}"


def test_the_scan_finds_the_commands_the_readme_shows() -> None:
    """The checks above would pass on nothing: the scanner must see what the README shows."""
    text = code_of((REPO / "README.md").read_text())
    assert {"up", "send", "chat", "agents", "run-code"} <= set(COMMAND.findall(text))
    assert {"demo", "test"} <= set(MAKE.findall(text))
