"""Cold start of every function in functions/main.py, against baselines measured in the same run.

1. Time to first answer: `python -m functions_framework --target T --source functions/main.py`
   in a fresh process, from spawn until the first HTTP response to `GET /healthz` (any status:
   a cloud_event function answers 405, after main.py is imported and the server listens).
   Baselines: `python -c pass` (spawn to exit) and a functions-framework server for a
   one-line http function. Starts are interleaved round-robin, one unmeasured warm-up each.
2. Heavy modules at first request: for each target a fresh process imports main.py through
   `functions_framework.create_app(...).test_client()` and serves one real request against the
   local stack's emulators (user: a POST to the echo lobby; an agent: a pushed user text in
   its first lobby; dead_letters: a dead-lettered push), then reports which heavy modules
   are in `sys.modules` after the import and after the request.

Exit status: 1 if the echo function imports openai (a stated requirement), 2 if that could
not be checked, else 0. Timing goals are printed, never asserted.

    .venv/bin/python bench/bench_cold_start.py [--starts 5]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import importlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from timing import machine, median, p95, ratio

from agentlobby.messages import USER_SENDER, Envelope, new_id, now
from agentlobby.store.conversations import Conversations
from local_emulator import processes
from local_emulator.roster import FunctionTarget, discover_targets
from local_emulator.stack import FUNCTIONS_DIR, Stack, free_port

MAIN_PY = FUNCTIONS_DIR / "main.py"
HEAVY = ("openai", "httpx", "google.cloud.firestore", "google.cloud.pubsub_v1", "grpc")
START_TIMEOUT_S = 60.0
TRIVIAL_MAIN = textwrap.dedent(
    """
    import functions_framework


    @functions_framework.http
    def hello(request):
        return "ok"
    """
)
# Runs in a fresh interpreter: import main.py through functions-framework, serve one request.
PROBE = textwrap.dedent(
    """
    import json, sys, time
    spec = json.loads(sys.argv[1])
    heavy = spec["heavy"]
    started = time.perf_counter()
    import functions_framework
    client = functions_framework.create_app(spec["target"], spec["source"]).test_client()
    imported = time.perf_counter()
    at_import = [m for m in heavy if m in sys.modules]
    response = client.open(
        spec["path"], method=spec["method"], data=spec["body"].encode(), headers=spec["headers"]
    )
    served = time.perf_counter()
    print(json.dumps({
        "status": response.status_code,
        "answer": response.get_data(as_text=True)[:300],
        "import_s": imported - started,
        "request_s": served - imported,
        "at_import": at_import,
        "at_request": [m for m in heavy if m in sys.modules],
    }))
    """
)


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]
    serves: bool  # a server, timed to its first HTTP answer; else a command, timed to exit


def server_argv(target: str, source: Path) -> list[str]:
    """A function server's command line; each start adds `--port` with a free port."""
    return [
        sys.executable, "-m", "functions_framework",
        "--target", target, "--source", str(source), "--host", "127.0.0.1",
    ]  # fmt: skip


def first_answer(port: int, child: processes.Child, started: float) -> float:
    """Seconds from `started` until anything answers HTTP on the port."""
    while time.perf_counter() - started < START_TIMEOUT_S:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return time.perf_counter() - started
        except OSError:
            if not child.alive():
                tail = child.log_tail()
                raise RuntimeError(f"{child.name} exited while starting:\n{tail}") from None
            time.sleep(0.002)
        finally:
            connection.close()
    raise RuntimeError(f"{child.name} did not answer within {START_TIMEOUT_S}s")


def time_start(case: Case, log_dir: Path) -> float:
    if not case.serves:
        started = time.perf_counter()
        subprocess.run(case.argv, check=True)
        return time.perf_counter() - started
    port = free_port()
    argv = [*case.argv, "--port", str(port)]
    started = time.perf_counter()
    child = processes.start(case.label, argv, dict(os.environ), log_dir)
    try:
        return first_answer(port, child, started)
    finally:
        processes.stop([child])


def time_starts(cases: list[Case], starts: int, log_dir: Path) -> dict[str, list[float]]:
    """Round-robin over the cases, so a change in machine load hits all of them alike."""
    times: dict[str, list[float]] = {case.label: [] for case in cases}
    for round_ in range(starts + 1):
        for case in cases:
            elapsed = time_start(case, log_dir)
            if round_ > 0:  # the first round only warms the page cache and .pyc files
                times[case.label].append(elapsed)
        print(f"[cold start] round {round_}/{starts} done", file=sys.stderr)
    return times


def _push_body(data: bytes, attributes: dict[str, str], project: str) -> str:
    message = {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": new_id(),
        "publishTime": now().isoformat(),
    }
    return json.dumps({"message": message, "subscription": f"projects/{project}/subscriptions/b"})


# A minimal content per kind, in the order a probe prefers them; kinds missing here are
# never delivered (an agent listening only to those gets a text it skips).
SAMPLES: dict[str, dict[str, Any]] = {
    "text": {"kind": "text", "text": "cold start"},
    "code": {"kind": "code", "source": "print('cold start')"},
    "task": {"kind": "task", "text": "print 'cold start'"},
    "spec": {"kind": "spec", "text": "print 'cold start'"},
    "execution-result": {
        "kind": "execution-result", "round": 1, "code_id": "c0", "exit_code": 0,
        "stdout": "cold start\n", "stderr": "", "timed_out": False, "duration_ms": 1,
        "truncated": False, "reason": None,
    },
    "verdict": {"kind": "verdict", "round": 1, "passed": False, "feedback": "try again"},
}  # fmt: skip


def _envelope(content: dict[str, Any], lobby: str, conversation_id: str) -> Envelope:
    return Envelope.model_validate(
        {
            "id": new_id(),
            "conversation_id": conversation_id,
            "lobby": lobby,
            "sender": USER_SENDER,
            "content": content,
            "created_at": now(),
        }
    )


def _sample(listens_to: frozenset[str], lobby: str) -> tuple[Envelope, bool]:
    """A user message of a kind the agent listens to, if we can build one; else a text."""
    for kind, content in SAMPLES.items():
        if kind in listens_to:
            try:
                return _envelope(content, lobby, new_id()), True
            except ValidationError:
                continue  # the schema of that kind changed: try the next one
    return _envelope(SAMPLES["text"], lobby, new_id()), False


def first_request(target: FunctionTarget, project: str, token: str) -> dict[str, Any]:
    """The one request a target's probe serves: what that function gets first in real use."""
    json_headers = {"Content-Type": "application/json"}
    if target.name == "sandbox":
        return {
            "method": "POST",
            "path": "/run",
            "body": json.dumps({"source": "print('cold start')"}),
            "headers": json_headers,
            "what": "POST /run",
        }
    if target.kind == "http":
        return {
            "method": "POST",
            "path": "/lobbies/chat/messages",
            "body": json.dumps({"text": "cold start"}),
            "headers": {**json_headers, "Authorization": f"Bearer {token}"},
            "what": "POST /lobbies/chat/messages",
        }
    if target.kind == "agent":
        assert target.module is not None
        spec = importlib.import_module(target.module).AGENT
        lobby = spec.default_lobbies[0] if spec.default_lobbies else "chat"
        envelope, handled = _sample(spec.listens_to, lobby)
        note = "" if handled else ", not listened to: skipped"
        # As the user function would: the conversation exists and holds the message.
        # A message further into a coding round needs the user's task before it.
        conversations = Conversations(project)
        conversations.open(envelope.conversation_id, lobby, "running")
        if envelope.kind not in ("text", "task"):
            task = _envelope(SAMPLES["task"], lobby, envelope.conversation_id)
            conversations.record(task)
            envelope = _envelope(SAMPLES[envelope.kind], lobby, envelope.conversation_id)
        conversations.record(envelope)
        return {
            "conversation_id": envelope.conversation_id,
            "method": "POST",
            "path": f"/projects/{project}/topics/{lobby}",
            "body": _push_body(envelope.to_json_bytes(), envelope.attributes(), project),
            "headers": json_headers,
            "what": f"pushed user {envelope.kind} in {lobby!r}{note}",
        }
    attributes = {
        "CloudPubSubDeadLetterSourceSubscription": "agentlobby-chat-echo",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "conversation_id": new_id(),
        "message_id": new_id(),
    }
    return {
        "method": "POST",
        "path": f"/projects/{project}/topics/agentlobby-dead-letter",
        "body": _push_body(b'{"not": "an envelope"}', attributes, project),
        "headers": json_headers,
        "what": "dead-lettered push",
    }


def probe(target: FunctionTarget, project: str, token: str, env: dict[str, str]) -> dict[str, Any]:
    """One fresh process: import main.py, serve the target's first request, list modules."""
    request = first_request(target, project, token)
    spec = {"target": target.name, "source": str(MAIN_PY), "heavy": HEAVY, **request}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(spec)],
        env=env,
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"what": request["what"], "error": done.stderr.strip()[-1500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["what"] = request["what"]
    result["log"] = done.stderr.strip()[-800:]
    if "conversation_id" in request:
        result["outcome"] = _outcome(project, request["conversation_id"], target.name)
    return result


def _outcome(project: str, conversation_id: str, agent: str) -> str:
    """What the delivery left behind: replies stored by the agent, or a dead letter."""
    conversations = Conversations(project)
    letters = conversations.dead_letters(conversation_id)
    if letters:
        return f"dead-lettered: {letters[0].reason[:160]}"
    replies = [m.kind for m in conversations.transcript(conversation_id) if m.sender == agent]
    return f"replies stored: {', '.join(replies) or '(none)'}"


def probe_target(
    target: FunctionTarget, project: str, token: str, env: dict[str, str], runs: int
) -> dict[str, Any]:
    """`runs` fresh probes: timings are medians, modules the union over the runs."""
    results = [probe(target, project, token, env) for _ in range(runs)]
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    merged = dict(results[-1])
    merged["import_s"] = median([r["import_s"] for r in results])
    merged["request_s"] = median([r["request_s"] for r in results])
    merged["status"] = max(r["status"] for r in results)
    merged["at_import"] = sorted({m for r in results for m in r["at_import"]}, key=HEAVY.index)
    merged["at_request"] = sorted({m for r in results for m in r["at_request"]}, key=HEAVY.index)
    return merged


def report_starts(times: dict[str, list[float]], bare: str, trivial: str) -> None:
    print("\n== cold start: fresh process until the first HTTP answer ==")
    print(f"{'case':<36}{'n':>3}{'median':>10}{'p95':>10}{'vs python':>11}{'vs trivial ff':>15}")
    for label, values in times.items():
        print(
            f"{label:<36}{len(values):>3}"
            f"{median(values) * 1000:>8.0f}ms{p95(values) * 1000:>8.0f}ms"
            f"{ratio(median(values), median(times[bare])):>10.1f}x"
            f"{ratio(median(values), median(times[trivial])):>14.2f}x"
        )


def report_modules(probes: dict[str, dict[str, Any]], runs: int) -> None:
    print(
        f"\n== heavy modules, in a fresh process serving one request in-process "
        f"(median of {runs} runs) =="
    )
    print(f"modules checked: {', '.join(HEAVY)}")
    for name, result in probes.items():
        if "error" in result:
            print(f"{name}: {result['what']}: PROBE FAILED")
            print(textwrap.indent(result["error"], "    "))
            continue
        print(
            f"{name}: {result['what']} -> HTTP {result['status']}; "
            f"import main.py {result['import_s'] * 1000:.0f} ms, "
            f"first request {result['request_s'] * 1000:.0f} ms"
        )
        print(f"    after import:        {', '.join(result['at_import']) or '(none)'}")
        print(f"    after first request: {', '.join(result['at_request']) or '(none)'}")
        if "outcome" in result:
            print(f"    outcome:             {result['outcome']}")
        if result["status"] >= 300:
            print(f"    answer: {result['answer'][:120]!r}; log tail:")
            print(textwrap.indent(result["log"], "      "))


def echo_verdict(probes: dict[str, dict[str, Any]]) -> int:
    echo = probes.get("echo")
    if echo is None:
        print("\necho: no echo function in main.py; nothing to check")
        return 0
    if "error" in echo or echo["status"] >= 300:
        print("\necho: COULD NOT CHECK whether it imports openai (the probe failed, see above)")
        return 2
    if "openai" in echo["at_request"]:
        print("\necho: IMPORTS openai at its first request: the requirement is broken")
        return 1
    print("\necho: does not import openai at import or at its first request (requirement met)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=5, help="measured fresh starts per case")
    parser.add_argument("--probes", type=int, default=3, help="fresh in-process probes per target")
    args = parser.parse_args(argv)

    print(machine())
    targets = discover_targets(MAIN_PY)
    with tempfile.TemporaryDirectory(prefix="agentlobby-bench-") as tmp:
        work = Path(tmp)
        (work / "main.py").write_text(TRIVIAL_MAIN)
        bare, trivial = "bare python -c pass", "functions-framework, trivial http fn"
        cases = [
            Case(bare, [sys.executable, "-c", "pass"], serves=False),
            Case(trivial, server_argv("hello", work / "main.py"), serves=True),
            *(
                Case(f"{t.name} ({t.kind})", server_argv(t.name, MAIN_PY), serves=True)
                for t in targets
            ),
        ]
        times = time_starts(cases, args.starts, work)
    report_starts(times, bare, trivial)

    with tempfile.TemporaryDirectory(prefix="agentlobby-bench-") as tmp:
        script = Path(tmp) / "model-script.json"  # an agent that calls a model gets this,
        catch_all = {"match": "", "replies": ["cold start"] * 100}  # offline, never the network
        script.write_text(json.dumps({"rules": [catch_all]}))
        stack = Stack(
            port_base=0,
            model_script=script,
            log_dir=Path(tmp) / "logs",
            progress=lambda msg: print(f"[stack] {msg}", file=sys.stderr),
        )
        try:
            info = stack.start()
            env = {
                **os.environ,
                "AGENTLOBBY_PROJECT": info.project,
                "AGENTLOBBY_API_TOKEN": info.api_token,
                "OPENAI_BASE_URL": info.model_base_url or "",
                "OPENAI_API_KEY": "offline-model-server",
                "PYTHONUNBUFFERED": "1",
            }
            probes = {
                t.name: probe_target(t, info.project, info.api_token, env, args.probes)
                for t in targets
            }
        finally:
            stack.stop()
    report_modules(probes, args.probes)
    print(f"\n{machine()} at the end")
    return echo_verdict(probes)


if __name__ == "__main__":
    sys.exit(main())
