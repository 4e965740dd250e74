"""Record mode of the offline model server: forward to a real model, write what it said as a script.

A conversation recorded once against the real API can then be replayed offline, byte for byte in
content and token counts, with `--script OUT.json`. Each successful exchange appends one rule
(the agent from the X-Agentlobby-Agent header, a regex-escaped excerpt of the last user message,
the reply with its upstream usage) and rewrites the file atomically, so a crash or a Ctrl-C
mid-run leaves every exchange so far on disk. An existing file is extended, never truncated:
real calls cost money, so deleting a recording is left to the user.

Only the standard library talks to the upstream, so the server starts in a blink.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from agentlobby.errors import ConfigError
from local_emulator.model_server.script import Script, load_script_file

__all__ = ["DEFAULT_UPSTREAM", "EXCERPT_CHARS", "Recorder", "UpstreamAnswer"]

logger = logging.getLogger(__name__)

DEFAULT_UPSTREAM = "https://api.openai.com/v1"
EXCERPT_CHARS = 60
UPSTREAM_TIMEOUT_S = 300.0

# Request headers worth passing on; the rest (Host, Content-Length, client telemetry) are not.
_FORWARDED = ("X-Agentlobby-Agent", "OpenAI-Organization", "OpenAI-Project")
# Response headers that steer the client's retries, passed back unchanged.
_PASSED_BACK = ("retry-after", "retry-after-ms", "x-should-retry", "x-request-id")


@dataclass(frozen=True)
class UpstreamAnswer:
    """What the upstream said, to relay to the client as is."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Recorder:
    """Forwards chat completions upstream and appends each successful exchange to a script."""

    def __init__(self, out: Path, upstream: str = DEFAULT_UPSTREAM, api_key: str | None = None):
        self.out = Path(out)
        self.upstream = upstream.rstrip("/")
        if urllib.parse.urlsplit(self.upstream).scheme not in ("http", "https"):
            raise ConfigError(
                f"upstream {upstream!r} is not an http(s) URL; "
                f"give the base URL of an OpenAI-compatible API, e.g. {DEFAULT_UPSTREAM}"
            )
        self._api_key = api_key
        self._lock = threading.Lock()
        # Refuse to start on a file we could not extend: it may be someone's only recording.
        self._rules: list[dict[str, Any]] = (
            list(load_script_file(self.out).to_json()["rules"]) if self.out.exists() else []
        )
        self._opener = _opener_for(self.upstream)

    def forward(self, body: bytes, headers: Mapping[str, str]) -> UpstreamAnswer:
        """POST the request body unchanged to the upstream's /chat/completions."""
        out_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for name in _FORWARDED:
            if headers.get(name):
                out_headers[name] = headers[name]
        # Our own key wins: agents pointed at the recorder usually carry a dummy one.
        if self._api_key:
            out_headers["Authorization"] = f"Bearer {self._api_key}"
        elif headers.get("Authorization"):
            out_headers["Authorization"] = headers["Authorization"]
        request = urllib.request.Request(
            f"{self.upstream}/chat/completions", data=body, headers=out_headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=UPSTREAM_TIMEOUT_S) as response:
                return UpstreamAnswer(response.status, response.read(), _kept(response.headers))
        except urllib.error.HTTPError as exc:
            return UpstreamAnswer(exc.code, exc.read(), _kept(exc.headers))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            message = f"upstream {self.upstream} did not answer: {reason}"
            logger.warning(message)
            error = {"error": {"message": message, "type": "server_error", "code": "upstream"}}
            return UpstreamAnswer(502, json.dumps(error).encode())

    def record(self, agent: str | None, last_user_text: str, answer: UpstreamAnswer) -> None:
        """Append one rule for a successful exchange and rewrite the file atomically."""
        try:
            completion = json.loads(answer.body)
            message = completion["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            logger.warning("upstream answer is not a chat completion; not recorded")
            return
        if message.get("tool_calls"):
            logger.warning("upstream answered with tool calls, which scripts cannot replay")
        reply: dict[str, Any] = {"content": message.get("content") or ""}
        usage = completion.get("usage")
        if isinstance(usage, dict):
            reply["usage"] = {
                key: usage[key]
                for key in ("prompt_tokens", "completion_tokens")
                if isinstance(usage.get(key), int)
            }
        rule: dict[str, Any] = {"agent": agent} if agent else {}
        rule["match"] = re.escape(last_user_text[:EXCERPT_CHARS])
        rule["replies"] = [reply]
        with self._lock:
            self._rules.append(rule)
            script = {
                "description": f"recorded from {self.upstream} by the agentlobby model server",
                "rules": self._rules,
            }
            Script.from_dict(script, source=str(self.out))  # never write what we cannot replay
            _write_atomically(self.out, json.dumps(script, indent=2, ensure_ascii=False) + "\n")


def _kept(headers: Message[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    return {name: value for name in _PASSED_BACK if (value := headers.get(name)) is not None}


def _opener_for(upstream: str) -> urllib.request.OpenerDirector:
    """Loopback upstreams bypass any HTTP(S)_PROXY from the environment; others honour it."""
    host = urllib.parse.urlsplit(upstream).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
