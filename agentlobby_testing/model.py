"""The scripted model of a test: the stack's offline model server, given a script inline.

Every agent of the stack reaches its model through OPENAI_BASE_URL, which the plugin always
points at the offline model server (never at a real API, whatever the environment says). A
test plays its own rules and reads back which requests the model saw; the script is emptied
before and after each test, so no test answers another's calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local_emulator.model_server.script import Script
from local_emulator.model_server.server import ModelServer

EMPTY: dict[str, Any] = {"rules": []}


@dataclass(frozen=True)
class ModelRequest:
    """One chat completion the model received (a `received` entry of its /_stats)."""

    agent: str  # the X-Agentlobby-Agent header, "" without it
    last_user_text: str | None
    has_image: bool
    status: int | None  # what it answered: 200, a scripted error, or 400 when no rule applied
    rule: int | None  # the index of the rule that answered, None when none did

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> ModelRequest:
        return cls(
            agent=str(entry.get("agent") or ""),
            last_user_text=entry.get("last_user_text"),
            has_image=bool(entry.get("has_image")),
            status=entry.get("status"),
            rule=entry.get("rule"),
        )


class ScriptedModel:
    """`play(rules)` swaps the script; `requests` and `unused_replies` say what happened."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server

    def play(self, rules: Sequence[Mapping[str, Any]] | Mapping[str, Any] | Script) -> None:
        """Answer from now on with `rules`: a list of rules, or a whole script
        (`{"rules": [...]}`, docs/model-server.md). A bad rule raises ConfigError naming the
        field; the requests seen so far are forgotten."""
        if isinstance(rules, Script):
            script = rules
        else:
            data = dict(rules) if isinstance(rules, Mapping) else {"rules": list(rules)}
            script = Script.from_dict(data, source="agentlobby_model.play")
        self.server.load_script(script)

    def reset(self) -> None:
        """No rules: every model call answers 400 `no_rule`, naming the agent."""
        self.play(EMPTY)

    @property
    def requests(self) -> list[ModelRequest]:
        """The chat completions received since the last `play`, in arrival order."""
        return [ModelRequest.of(entry) for entry in self.server.stats()["received"]]

    @property
    def unused_replies(self) -> list[dict[str, Any]]:
        """The rules with replies left: `[]` once the whole script was played."""
        return list(self.server.stats()["unused_replies"])
