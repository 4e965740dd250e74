"""The script format of the offline model server: what to answer, to whom, in which order.

A script is JSON so that a test, a demo and a recording share one format:

    {"rules": [{"agent": "coder", "match": "fizz ?buzz", "replies": ["...", {"status": 429}]}]}

It is validated in full when it is loaded, because a typo found at load time costs a second
while a typo found as "no rule matched" in the middle of a multi-agent run costs an afternoon.
Every error names the offending field as a JSON path (``rules[1].replies[0].status``).

`ScriptPlayer` holds the only mutable state: how many replies of each rule are used up.
docs/model-server.md describes the format for people who write scripts.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlobby.errors import ConfigError

__all__ = [
    "DEFAULT_RETRY_AFTER_MS",
    "Reply",
    "Rule",
    "Script",
    "ScriptPlayer",
    "Usage",
    "load_script_file",
]

# Sent as `retry-after-ms` with error replies: the openai client honours it instead of its own
# 0.5 s, 1 s, 2 s... backoff, which keeps retry tests fast. 0 leaves the client to its backoff.
DEFAULT_RETRY_AFTER_MS = 10

_SCRIPT_KEYS = {"rules", "description"}
_RULE_KEYS = {"agent", "match", "replies", "comment"}
_REPLY_KEYS = {"content", "status", "delay_ms", "usage", "retry_after_ms"}
_USAGE_KEYS = {"prompt_tokens", "completion_tokens"}


@dataclass(frozen=True)
class Usage:
    """Token counts forced by a reply; a field left None is counted as usual."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Reply:
    """One answer: a completion (status 200) or an HTTP error the client should see."""

    content: str | None = None
    status: int = 200
    delay_ms: int = 0
    usage: Usage | None = None
    retry_after_ms: int = DEFAULT_RETRY_AFTER_MS

    @property
    def is_error(self) -> bool:
        return self.status != 200

    def to_json(self) -> str | dict[str, Any]:
        """The shortest script form: a bare string when nothing but the content is set."""
        if self == Reply(content=self.content) and self.content is not None:
            return self.content
        out: dict[str, Any] = {}
        if self.content is not None:
            out["content"] = self.content
        if self.status != 200:
            out["status"] = self.status
        if self.delay_ms:
            out["delay_ms"] = self.delay_ms
        if self.usage is not None:
            out["usage"] = {
                k: v
                for k, v in (
                    ("prompt_tokens", self.usage.prompt_tokens),
                    ("completion_tokens", self.usage.completion_tokens),
                )
                if v is not None
            }
        if self.retry_after_ms != DEFAULT_RETRY_AFTER_MS:
            out["retry_after_ms"] = self.retry_after_ms
        return out


@dataclass(frozen=True)
class Rule:
    """Answer requests from `agent` (any agent if None) whose text contains `match`."""

    match: re.Pattern[str]
    replies: tuple[Reply, ...]
    agent: str | None = None
    comment: str | None = None

    def applies_to(self, agent: str | None, text: str) -> bool:
        return (self.agent is None or self.agent == agent) and self.match.search(text) is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.agent is not None:
            out["agent"] = self.agent
        out["match"] = self.match.pattern
        out["replies"] = [r.to_json() for r in self.replies]
        if self.comment is not None:
            out["comment"] = self.comment
        return out


@dataclass(frozen=True)
class Script:
    """The validated, immutable contents of a script file."""

    rules: tuple[Rule, ...] = ()
    description: str | None = None

    @classmethod
    def from_dict(cls, data: object, source: str = "script") -> Script:
        """Validate decoded JSON; raises ConfigError naming `source` and the bad field."""
        return _parse_script(data, source)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "script") -> Script:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                'a script looks like {"rules": [{"match": "hello", "replies": ["hi"]}]}'
            ) from exc
        return _parse_script(data, source)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description is not None:
            out["description"] = self.description
        out["rules"] = [rule.to_json() for rule in self.rules]
        return out


def load_script_file(path: Path) -> Script:
    """Read and validate a script file; every problem is a ConfigError that names the fix."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"model script {path} does not exist: pass the path of a JSON script "
            "(local_emulator/scripts/example.json is one)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"model script {path} cannot be read: {exc}") from exc
    return Script.from_json(text, source=str(path))


class ScriptPlayer:
    """Hands out each rule's replies in order, once each; safe to call from many threads."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._used = [0] * len(script.rules)
        self._lock = threading.Lock()

    def next_reply(self, agent: str | None, text: str) -> tuple[int, Reply] | None:
        """The first applicable rule with replies left answers: (rule index, reply)."""
        with self._lock:
            for index, rule in enumerate(self.script.rules):
                if self._used[index] < len(rule.replies) and rule.applies_to(agent, text):
                    reply = rule.replies[self._used[index]]
                    self._used[index] += 1
                    return index, reply
        return None

    def exhausted_matches(self, agent: str | None, text: str) -> list[int]:
        """Rules that would have answered had they had replies left (for the error message)."""
        with self._lock:
            return [
                i
                for i, rule in enumerate(self.script.rules)
                if self._used[i] >= len(rule.replies) and rule.applies_to(agent, text)
            ]

    def unused(self) -> list[dict[str, Any]]:
        """Rules with replies left, so a test can assert that its whole script was played."""
        with self._lock:
            return [
                {
                    "rule": i,
                    "agent": rule.agent,
                    "match": rule.match.pattern,
                    "left": len(rule.replies) - self._used[i],
                }
                for i, rule in enumerate(self.script.rules)
                if self._used[i] < len(rule.replies)
            ]


# --- validation -------------------------------------------------------------------------------


def _fail(where: str, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {problem}")


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(
            where,
            f"unknown key {unknown[0]!r}; the allowed keys are {', '.join(sorted(allowed))}",
        )


def _int_field(data: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{where}.{key}", f"expected an integer from {low} to {high}, found {value!r}")
    return value


def _parse_script(data: object, source: str) -> Script:
    if not isinstance(data, dict):
        raise _fail(source, f"expected a JSON object with a 'rules' list, found {_kind(data)}")
    _check_keys(data, _SCRIPT_KEYS, source)
    rules = data.get("rules")
    if not isinstance(rules, list):
        raise _fail(f"{source}: rules", f"expected a list of rules, found {_kind(rules)}")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail(f"{source}: description", f"expected a string, found {_kind(description)}")
    parsed = tuple(_parse_rule(rule, f"{source}: rules[{i}]") for i, rule in enumerate(rules))
    return Script(rules=parsed, description=description)


def _parse_rule(data: object, where: str) -> Rule:
    if not isinstance(data, dict):
        raise _fail(where, f"expected an object with 'match' and 'replies', found {_kind(data)}")
    _check_keys(data, _RULE_KEYS, where)
    agent = data.get("agent")
    if agent is not None and (not isinstance(agent, str) or not agent):
        raise _fail(f"{where}.agent", f"expected a non-empty agent name, found {agent!r}")
    pattern = data.get("match", "")
    if not isinstance(pattern, str):
        raise _fail(f"{where}.match", f"expected a regex string, found {_kind(pattern)}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise _fail(f"{where}.match", f"bad regex {pattern!r}: {exc}") from exc
    if "replies" not in data:
        raise _fail(where, "missing 'replies': give a list of at least one reply")
    replies = data["replies"]
    if not isinstance(replies, list) or not replies:
        raise _fail(f"{where}.replies", f"expected a non-empty list, found {replies!r}")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise _fail(f"{where}.comment", f"expected a string, found {_kind(comment)}")
    return Rule(
        match=compiled,
        replies=tuple(_parse_reply(r, f"{where}.replies[{i}]") for i, r in enumerate(replies)),
        agent=agent,
        comment=comment,
    )


def _parse_reply(data: object, where: str) -> Reply:
    if isinstance(data, str):
        return Reply(content=data)
    if not isinstance(data, dict):
        raise _fail(where, f"expected a string or an object, found {_kind(data)}")
    _check_keys(data, _REPLY_KEYS, where)
    status = data.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int):
        raise _fail(f"{where}.status", f"expected an integer, found {status!r}")
    if status != 200 and not 400 <= status <= 599:
        raise _fail(f"{where}.status", f"expected 200 or an error status 400-599, found {status}")
    content = data.get("content")
    if content is not None and not isinstance(content, str):
        raise _fail(f"{where}.content", f"expected a string, found {_kind(content)}")
    if status == 200 and content is None:
        raise _fail(where, "missing 'content': a status 200 reply needs the text to answer")
    usage = _parse_usage(data.get("usage"), f"{where}.usage")
    if usage is not None and status != 200:
        raise _fail(f"{where}.usage", f"only a status 200 reply has usage, this one is {status}")
    delay_ms = _int_field(data, "delay_ms", where, 0, 600_000) or 0
    retry_after_ms = _int_field(data, "retry_after_ms", where, 0, 120_000)
    return Reply(
        content=content,
        status=status,
        delay_ms=delay_ms,
        usage=usage,
        retry_after_ms=DEFAULT_RETRY_AFTER_MS if retry_after_ms is None else retry_after_ms,
    )


def _parse_usage(data: object, where: str) -> Usage | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise _fail(where, f"expected an object with token counts, found {_kind(data)}")
    _check_keys(data, _USAGE_KEYS, where)
    limit = 10**9
    return Usage(
        prompt_tokens=_int_field(data, "prompt_tokens", where, 0, limit),
        completion_tokens=_int_field(data, "completion_tokens", where, 0, limit),
    )


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "nothing"
    return names.get(type(value), f"{type(value).__name__} {value!r}")
