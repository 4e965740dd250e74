"""The README's "Your own agent" example, taken literally from the README and run on a stack."""

from __future__ import annotations

import shutil
from pathlib import Path

from local_emulator.stack import FUNCTIONS_DIR, Stack
from tests.support.readme import agent_example
from tests.support.user import JsonUser
from tests.support.waiting import wait_for


def test_readme_agent_runs_in_a_lobby(tmp_path: Path) -> None:
    example = agent_example()
    module, entry = example.module, example.entry
    functions = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, functions, ignore=shutil.ignore_patterns("__pycache__"))
    (functions / "my_agents").mkdir()
    (functions / "my_agents" / "__init__.py").write_text("")
    (functions / "my_agents" / "shout.py").write_text(module)
    with (functions / "main.py").open("a") as main:
        main.write("\n\n" + entry)

    with Stack(port_base=0, functions_dir=functions, log_dir=tmp_path / "logs") as stack:
        assert stack.info is not None
        user = JsonUser.of(stack.info)
        posted = user.post("chat", "hello")

        def replies() -> dict[str, str] | None:
            messages = user.conversation(posted["conversation_id"])["messages"]
            found = {m["sender"]: m["text"] for m in messages if m["sender"] != "user"}
            return found if len(found) == 2 else None

        assert wait_for(replies, timeout_s=20) == {"shout": "HELLO!", "echo": "hello"}
