"""The plugin's scripted model on a real offline model server, asked through `openai`."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from agentlobby.errors import ConfigError
from agentlobby_testing.model import ModelRequest, ScriptedModel
from local_emulator.model_server.script import Script
from local_emulator.model_server.server import ModelServer
from tests.support.model_server import ask, client


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ModelServer(Script.from_dict({"rules": []})) as server:
        yield ScriptedModel(server)


def test_rules_played_inline_answer_and_the_requests_are_read_back(model: ScriptedModel) -> None:
    model.play([{"agent": "poet", "match": "autumn", "replies": ["leaves"]}])
    assert model.unused_replies != []
    assert ask(client(model.server, "poet"), "autumn") == "leaves"
    assert model.requests == [
        ModelRequest(agent="poet", last_user_text="autumn", has_image=False, status=200, rule=0)
    ]
    assert model.unused_replies == []


def test_a_whole_script_plays_too_and_play_forgets_earlier_requests(model: ScriptedModel) -> None:
    model.play({"rules": [{"replies": ["one"]}]})
    assert ask(client(model.server, None), "anything") == "one"
    model.play({"rules": [{"replies": ["two"]}]})
    assert model.requests == []


def test_after_a_reset_a_call_is_refused_naming_the_agent(model: ScriptedModel) -> None:
    model.play([{"replies": ["unused"]}])
    model.reset()
    with pytest.raises(openai.BadRequestError, match="poet"):
        ask(client(model.server, "poet"), "hello")
    assert [(r.agent, r.status, r.rule) for r in model.requests] == [("poet", 400, None)]


def test_a_bad_rule_is_refused_before_anything_runs_naming_the_field(
    model: ScriptedModel,
) -> None:
    model.play([{"replies": ["kept"]}])
    with pytest.raises(ConfigError, match=r"rules\[0\].*reply"):
        model.play([{"reply": ["typo"]}])
    assert ask(client(model.server, None), "x") == "kept"  # the old script still plays
