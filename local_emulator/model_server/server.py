"""An offline, OpenAI-compatible chat completions server that answers from a script.

Tests and the local stack point OPENAI_BASE_URL at it so that agents run their real code, through
the real `openai` client and real HTTP, without a network or a bill. Replies come from a
`Script` (model_server/script.py); `--record` instead forwards to a real upstream and
writes a script to replay later (model_server/recorder.py). `GET /_stats` tells a test
what the agents asked and how many requests ran at once. docs/model-server.md is the manual.

Only the standard library serves HTTP, so the server starts in well under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agentlobby.config import DEFAULT_MODEL
from agentlobby.errors import ConfigError
from local_emulator.model_server.recorder import DEFAULT_UPSTREAM, Recorder
from local_emulator.model_server.script import Reply, Script, ScriptPlayer, load_script_file
from local_emulator.model_server.wire import (
    Answer,
    ChatRequest,
    completion_body,
    error_answer,
    json_answer,
    parse_chat_request,
)

__all__ = ["AGENT_HEADER", "ModelServer", "Script", "load_script_file", "main"]

logger = logging.getLogger(__name__)

AGENT_HEADER = "X-Agentlobby-Agent"
MAX_BODY_BYTES = 64 * 1024 * 1024  # images arrive inline as base64


class _Stats:
    """Request counts, requests in flight and the received requests, since the last reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._agents: dict[str, dict[str, Any]] = {}
        self._total: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._agents = {}
            self._total = _counters()

    def begin(self, agent: str, entry: dict[str, Any]) -> int:
        """Count a request in; returns a token for `end` (a reset in between voids it)."""
        with self._lock:
            for counters in (self._agents.setdefault(agent, _counters()), self._total):
                counters["requests"] += 1
                counters["in_flight"] += 1
                counters["max_in_flight"] = max(counters["max_in_flight"], counters["in_flight"])
                counters["received"].append(entry)
            return self._generation

    def end(self, agent: str, token: int, entry: dict[str, Any], **outcome: Any) -> None:
        """Count a request out and note how it was answered."""
        with self._lock:
            entry.update(outcome)
            if token == self._generation:
                self._agents[agent]["in_flight"] -= 1
                self._total["in_flight"] -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            copy = json.loads(json.dumps({"agents": self._agents, **self._total}))
            return dict(copy)


def _counters() -> dict[str, Any]:
    return {"requests": 0, "in_flight": 0, "max_in_flight": 0, "received": []}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a client holding a keep-alive connection must not block stop()

    def __init__(self, address: tuple[str, int], app: ModelServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)


class ModelServer:
    """The model server on a background thread: `with ModelServer(script) as server: ...`."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_to: Path | None = None,
        upstream: str | None = None,
        api_key: str | None = None,
    ) -> None:
        """`api_key` is for record mode only; it defaults to OPENAI_API_KEY, and without
        either the client's own Authorization header is forwarded."""
        if record_to is None and upstream is not None:
            raise ConfigError("an upstream is only used in record mode: also give record_to")
        if record_to is not None and script is not None:
            raise ConfigError(
                "record mode forwards every request upstream, so a script would never answer: "
                "give either a script or record_to"
            )
        self.host = host
        self.port = port
        self.recorder: Recorder | None = None
        if record_to is not None:
            key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
            self.recorder = Recorder(record_to, upstream or DEFAULT_UPSTREAM, key)
        self._player = ScriptPlayer(script or Script())
        self._stats = _Stats()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._completions = 0
        self._id_lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL for OPENAI_BASE_URL, e.g. http://127.0.0.1:PORT/v1."""
        if self._httpd is None:
            raise RuntimeError("the model server is not started: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> ModelServer:
        try:
            self._httpd = _HTTPServer((self.host, self.port), self)
        except OSError as exc:
            raise ConfigError(
                f"the model server cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                "pick another --port, or 0 for any free one"
            ) from exc
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"model-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        try:
            httpd.shutdown()
        finally:
            httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def load_script(self, script: Script) -> None:
        """Replace the script and reset the counters, so one server can serve many tests."""
        if self.recorder is not None:
            raise ConfigError("this model server is recording: it forwards every request upstream")
        self._player = ScriptPlayer(script)
        self._stats.reset()

    @property
    def script(self) -> Script:
        """The script being played (empty in record mode)."""
        return self._player.script

    def stats(self) -> dict[str, Any]:
        """What `GET /_stats` answers; see docs/model-server.md for the shape."""
        snapshot = self._stats.snapshot()
        snapshot["unused_replies"] = [] if self.recorder else self._player.unused()
        return snapshot

    # --- request handling (called from the handler threads) ------------------------------------

    def _next_id(self) -> str:
        with self._id_lock:
            self._completions += 1
            return f"chatcmpl-offline-{self._completions}"

    def _chat(self, body: bytes, headers: dict[str, str]) -> Answer:
        header = headers.get(AGENT_HEADER) or None
        agent = header or ""
        parsed = parse_chat_request(body)
        request = parsed if isinstance(parsed, ChatRequest) else None
        entry: dict[str, Any] = {
            "agent": agent,
            "model": request.model if request else None,
            "header": header,
            "has_image": request.has_image if request else False,
            "last_user_text": request.last_user_text if request else None,
            "status": None,
            "rule": None,
        }
        token = self._stats.begin(agent, entry)
        answer = error_answer(
            500, "the offline model server failed; see its log", kind="server_error"
        )
        rule: int | None = None
        try:
            if isinstance(parsed, Answer):
                answer = parsed
            elif self.recorder is not None:
                answer = self._forward(parsed, body, headers, header)
            else:
                answer, rule = self._replay(parsed, header)
            return answer
        finally:
            self._stats.end(agent, token, entry, status=answer.status, rule=rule)

    def _replay(self, request: ChatRequest, agent: str | None) -> tuple[Answer, int | None]:
        """The next scripted answer and the index of the rule that gave it."""
        player = self._player
        picked = player.next_reply(agent, request.text)
        if picked is None:
            message = _no_rule_message(player, agent, request)
            return error_answer(400, message, code="no_rule"), None
        rule, reply = picked
        if reply.delay_ms:
            time.sleep(reply.delay_ms / 1000)
        if reply.is_error:
            return _scripted_error(reply), rule
        return json_answer(200, completion_body(self._next_id(), request, reply)), rule

    def _forward(
        self, request: ChatRequest, body: bytes, headers: dict[str, str], agent: str | None
    ) -> Answer:
        assert self.recorder is not None
        upstream = self.recorder.forward(body, headers)
        if upstream.status == 200:
            self.recorder.record(agent, request.last_user_text, upstream)
        return Answer(upstream.status, upstream.body, upstream.headers)


def _no_rule_message(player: ScriptPlayer, agent: str | None, request: ChatRequest) -> str:
    who = f"agent {agent!r}" if agent else f"a request without the {AGENT_HEADER} header"
    excerpt = request.last_user_text[:80]
    used_up = player.exhausted_matches(agent, request.text)
    if used_up:
        hint = f"rule(s) {', '.join(map(str, used_up))} matched but their replies are used up"
    elif agent:
        hint = f'add a rule with "agent": {json.dumps(agent)} and a regex found in its messages'
    else:
        hint = f"add a rule without an agent, or send the {AGENT_HEADER} header"
    return f"no script rule matches {who}, last user message {excerpt!r}; {hint}"


def _scripted_error(reply: Reply) -> Answer:
    kinds = {429: ("rate_limit_error", "rate_limit_exceeded"), 408: ("timeout", "timeout")}
    kind, code = kinds.get(reply.status, (None, None))
    message = reply.content or f"scripted HTTP {reply.status} from the offline model server"
    headers = {"retry-after-ms": str(reply.retry_after_ms)}
    return error_answer(reply.status, message, kind=kind, code=code, headers=headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's connection pool expects
    server_version = "agentlobby-model-server/1"
    server: _HTTPServer

    def do_GET(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/healthz":
            mode = "record" if app.recorder else "replay"
            self._send(json_answer(200, {"status": "ok", "mode": mode}))
        elif path == "/_stats":
            self._send(json_answer(200, app.stats()))
        elif path in ("/v1/models", "/models"):
            self._send(json_answer(200, {"object": "list", "data": [_model(DEFAULT_MODEL)]}))
        elif path.startswith(("/v1/models/", "/models/")):
            self._send(json_answer(200, _model(path.rsplit("/", 1)[1])))
        else:
            self._send(error_answer(404, f"no route GET {path}", code="unknown_url"))

    def do_POST(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(error_answer(413, f"Content-Length must be 0 to {MAX_BODY_BYTES} bytes"))
            return
        body = self.rfile.read(length)
        if path in ("/v1/chat/completions", "/chat/completions"):
            wanted = (AGENT_HEADER, "Authorization", "OpenAI-Organization", "OpenAI-Project")
            headers = {name: self.headers[name] for name in wanted if self.headers.get(name)}
            try:
                answer = app._chat(body, headers)
            except Exception as exc:  # a bug or a full disk must still get an HTTP answer
                logger.exception("chat completion failed")
                answer = error_answer(
                    500, f"offline model server error: {exc}", kind="server_error"
                )
            self._send(answer)
        elif path == "/_script":
            try:
                app.load_script(Script.from_json(body or b"null", source="POST /_script"))
            except ConfigError as exc:
                self._send(error_answer(400, str(exc), code="bad_script"))
            else:
                self._send(json_answer(200, {"status": "ok", "rules": len(app.script.rules)}))
        else:
            self._send(error_answer(404, f"no route POST {path}", code="unknown_url"))

    def _send(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout); nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "agentlobby-offline"}


# --- command line ------------------------------------------------------------------------------


def serve_until_stopped(server: ModelServer) -> int:
    """Serve in the foreground until SIGINT or SIGTERM, then stop the server."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    print(f"model server listening on {server.url}", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`agentlobby model-server --script F [--port P]`; serves until SIGINT/TERM."""
    parser = argparse.ArgumentParser(
        prog="model-server",
        description="Offline OpenAI-compatible model server (docs/model-server.md).",
    )
    parser.add_argument("--script", type=Path, help="JSON script to answer from")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--record", type=Path, metavar="OUT", help="record a script to OUT")
    parser.add_argument("--upstream", help=f"record mode: API to forward to ({DEFAULT_UPSTREAM})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if (args.script is None) == (args.record is None):
            raise ConfigError("give --script FILE to replay, or --record OUT.json to record")
        script = load_script_file(args.script) if args.script else None
        server = ModelServer(
            script, host=args.host, port=args.port, record_to=args.record, upstream=args.upstream
        ).start()
    except ConfigError as exc:
        print(f"model-server: error: {exc}", file=sys.stderr)
        return 2
    return serve_until_stopped(server)


if __name__ == "__main__":
    raise SystemExit(main())
