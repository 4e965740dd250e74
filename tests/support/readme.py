"""The README's "Your own agent" example, taken from its code blocks so tests run what it shows.

The section has four python blocks, in order: the agent module, the entry point to add to this
repo's functions/main.py, a project's own main.py, and that project's test.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from tests.support.paths import REPO


class AgentExample(NamedTuple):
    module: str
    entry: str
    project_main: str
    project_test: str


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.DOTALL)


def agent_example() -> AgentExample:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own agent", 1)[1].split("\n## ", 1)[0]
    blocks = python_blocks(section)
    assert len(blocks) == 4, f"the README's example should have four python blocks: {blocks}"
    return AgentExample(*blocks)
