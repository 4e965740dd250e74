"""The local stack: real emulators, one functions-framework server per function, wired lobbies.

The functions are functions/main.py's entry points (roster.py); each agent module's
`default_lobbies` decides the memberships the stack creates, so adding an agent needs no
change here.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agentlobby.config import load_settings
from agentlobby.messages import now
from agentlobby.store import lobbies, membership
from agentlobby.store.registry import AgentRecord, DeclaredSetting, Registry
from local_emulator import prereqs, processes
from local_emulator.roster import agent_spec, discover_targets
from local_emulator.span_collector import SpanCollector
from local_emulator.stack_state import StackInfo

if TYPE_CHECKING:
    from local_emulator.model_server.script import Script
    from local_emulator.model_server.server import ModelServer

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
EMULATOR_START_TIMEOUT_S = 60.0
FUNCTION_START_TIMEOUT_S = 30.0
SUPERVISE_EVERY_S = 0.5
SWEEPER_TARGET = "sweeper"
# The page's event streams hold a request thread each (api/events.py): the user function gets
# more than functions-framework's default of 4 per core, as deployed (infra/functions.conf).
USER_THREADS = {"THREADS": "32"}


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel handed out (bind to 0) can be handed out again, to the JVM of an emulator
    starting meanwhile, before our server binds it; ports below the range are never handed out.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12_000), low) if low > 2048 else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port found on 127.0.0.1: pass --port-base N")


class Stack:
    """Starts and stops everything; `start()` returns what clients need to reach it."""

    def __init__(
        self,
        *,
        port_base: int = 0,
        project: str | None = None,
        api_token: str | None = None,
        model_script: Path | Script | None = None,
        record_model_to: Path | None = None,
        log_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        functions_dir: Path = FUNCTIONS_DIR,
        progress: Callable[[str], None] = lambda _msg: None,
        trace: bool = False,
    ) -> None:
        self.project = project or f"agentlobby-local-{secrets.token_hex(3)}"
        self.api_token = api_token or secrets.token_urlsafe(24)
        self.model_script = model_script
        self.record_model_to = record_model_to
        self._log_dir = log_dir
        self._made_log_dir = False
        # A log folder the stack made for itself goes when it stops, unless AGENTLOBBY_KEEP_LOGS
        # asks to keep it or the start failed (its error names a log to read).
        self.keep_logs = os.environ.get("AGENTLOBBY_KEEP_LOGS") == "1"
        self.extra_env = extra_env or {}
        self.progress = progress
        self.functions_dir = functions_dir
        self.targets = discover_targets(functions_dir / "main.py")
        self.ports = self._ports(port_base)
        self.children: list[processes.Child] = []
        self.model_server: ModelServer | None = None
        # With `trace`, every function exports its spans to a collector of the stack's own.
        self.trace = trace
        self.span_collector: SpanCollector | None = None
        self.info: StackInfo | None = None
        self.restarts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []
        self._saved_env: dict[str, str | None] = {}

    def _ports(self, base: int) -> dict[str, int]:
        names = ["pubsub", "firestore", "model", "traces", *(t.name for t in self.targets)]
        if base == 0:
            return {name: free_port() for name in names}
        return {name: base + i for i, name in enumerate(names)}

    @property
    def log_dir(self) -> Path:
        """Where every process logs; a fresh temporary folder unless one was set before start."""
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="agentlobby-logs-"))
            self._made_log_dir = True
        return self._log_dir

    @log_dir.setter
    def log_dir(self, path: Path) -> None:
        self._log_dir = path

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.ports[target]}"

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackInfo:
        problems = prereqs.missing()
        if problems:
            raise RuntimeError("; ".join(problems) + f". To fix it, {prereqs.INSTALL_HINT}")
        self._check_ports_free()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._start()
        except BaseException:
            self.keep_logs = True
            self.stop()
            raise

    def _start(self) -> StackInfo:
        hosts = {
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}",
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports['firestore']}",
        }
        self.progress("starting the Pub/Sub and Firestore emulators")
        self._start_emulators(hosts)
        # This process is the stack's owner: Google's clients here must talk to its emulators.
        # stop() puts back what was there, for a process that runs more than one stack.
        self._saved_env = {name: os.environ.get(name) for name in hosts}
        os.environ.update(hosts)
        model_env = self._start_model_server()
        env = {
            **os.environ,
            **hosts,
            **model_env,
            **self._start_span_collector(),
            "AGENTLOBBY_PROJECT": self.project,
            "AGENTLOBBY_API_TOKEN": self.api_token,
            **self._sandbox_env(),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.progress(f"starting {len(self.targets)} function servers")
        self._start_functions(env)
        self._check_identity()
        self.progress("creating lobbies and memberships")
        self._wire(env)
        self._watch(load_settings(env).sweep_interval_s)
        self.info = StackInfo(
            project=self.project,
            user_url=self.url("user"),
            api_token=self.api_token,
            pubsub_emulator_host=hosts["PUBSUB_EMULATOR_HOST"],
            firestore_emulator_host=hosts["FIRESTORE_EMULATOR_HOST"],
            model_base_url=model_env.get("OPENAI_BASE_URL"),
            pid=os.getpid(),
            log_dir=str(self.log_dir),
            trace_url=self.span_collector.url if self.span_collector else None,
            remote_url=next((self.url(t.name) for t in self.targets if t.kind == "remote"), None),
        )
        return self.info

    def _check_ports_free(self) -> None:
        """Fail before starting anything when a port of the block is taken: a server that
        cannot bind exits, and the one already there (another stack's) would answer for it."""
        what = {"pubsub": "the Pub/Sub emulator", "firestore": "the Firestore emulator"}
        for name, port in self.ports.items():
            if name == "model" and self.model_script is None and self.record_model_to is None:
                continue
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                    continue
                except (OSError, OverflowError) as exc:
                    problem = getattr(exc, "strerror", None) or str(exc)
            raise RuntimeError(
                f"port {port} for {what.get(name, name)} on 127.0.0.1 is not free ({problem}): "
                f"the stack needs {len(self.ports)} ports from {min(self.ports.values())}; "
                "pass another --port-base, or 0 for free ports"
            )

    def _check_identity(self) -> None:
        """The servers that answer are the ones just started: every child is alive and the user
        function accepts this stack's token (another stack's would answer 401)."""
        dead = [c for c in self.children if not c.alive()]
        if dead:
            raise RuntimeError(
                f"{dead[0].name} exited with code {dead[0].process.returncode} while starting; "
                f"last lines of {dead[0].log_path}:\n{dead[0].log_tail()}"
            )
        if "user" not in self.ports:
            return
        request = urllib.request.Request(
            self.url("user") + "/conversations/stack-identity-check",
            headers={"Authorization": f"Bearer {self.api_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                return  # 404: the token was accepted, so this is our user function
        except OSError as exc:
            raise RuntimeError(
                f"the user function at {self.url('user')} did not answer: {exc}"
            ) from exc
        raise RuntimeError(
            f"the server at {self.url('user')} refused this stack's API token: another stack "
            "or program answers on that port; pass another --port-base, or 0 for free ports"
        )

    def _start_emulators(self, hosts: dict[str, str]) -> None:
        pubsub = processes.start(
            "pubsub-emulator",
            [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={hosts['PUBSUB_EMULATOR_HOST']}",
                f"--project={self.project}",
            ],
            dict(os.environ),
            self.log_dir,
        )
        self.children.append(pubsub)
        firestore = processes.start(
            "firestore-emulator",
            [
                "gcloud",
                "emulators",
                "firestore",
                "start",
                f"--host-port={hosts['FIRESTORE_EMULATOR_HOST']}",
            ],
            dict(os.environ),
            self.log_dir,
        )
        self.children.append(firestore)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            waits = [
                pool.submit(processes.wait_http, child, f"http://{host}/", EMULATOR_START_TIMEOUT_S)
                for child, host in (
                    (pubsub, hosts["PUBSUB_EMULATOR_HOST"]),
                    (firestore, hosts["FIRESTORE_EMULATOR_HOST"]),
                )
            ]
            for wait in waits:
                wait.result()

    def _sandbox_env(self) -> dict[str, str]:
        """Code runs in the sandbox function, as in the cloud, when main.py has one."""
        if not any(t.name == "sandbox" and t.kind == "http" for t in self.targets):
            return {}
        return {
            "AGENTLOBBY_SANDBOX_URL": self.url("sandbox"),
            "AGENTLOBBY_SANDBOX_TOKEN": secrets.token_urlsafe(24),
        }

    def _start_model_server(self) -> dict[str, str]:
        """Replay a script, or record a real model's answers into one; else agents go direct."""
        from local_emulator.model_server.server import ModelServer, load_script_file

        if self.record_model_to is not None:
            upstream = os.environ.get("OPENAI_BASE_URL") or None
            server = ModelServer(
                port=self.ports["model"], record_to=self.record_model_to, upstream=upstream
            ).start()
            self.progress(f"recording model answers into {self.record_model_to} via {server.url}")
        elif self.model_script is not None:
            given = self.model_script
            script = load_script_file(given) if isinstance(given, Path) else given
            server = ModelServer(script, port=self.ports["model"]).start()
            source = f" (script {given})" if isinstance(given, Path) else ""
            self.progress(f"offline model server at {server.url}{source}")
        else:
            return {}
        self.model_server = server
        return {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "offline-model-server"}

    def _start_span_collector(self) -> dict[str, str]:
        """The standard OpenTelemetry variables, pointing every function at our collector."""
        if not self.trace:
            return {}
        self.span_collector = SpanCollector(self.ports["traces"], self.log_dir).start()
        self.progress(f"collecting traces at {self.span_collector.url}")
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.span_collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "AGENTLOBBY_TRACE_QUERY_URL": self.span_collector.url,
        }

    def _start_functions(self, env: dict[str, str]) -> None:
        started = []
        for target in self.targets:
            argv = [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                target.name,
                "--source",
                str(self.functions_dir / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[target.name]),
            ]
            own_env = {**env, **USER_THREADS} if target.name == "user" else env
            child = processes.start(f"function-{target.name}", argv, own_env, self.log_dir)
            self.children.append(child)
            started.append((child, self.url(target.name)))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            waits = [
                pool.submit(processes.wait_http, c, url + "/healthz", FUNCTION_START_TIMEOUT_S)
                for c, url in started
            ]
            for wait in waits:
                wait.result()

    def _wire(self, env: dict[str, str]) -> None:
        settings = load_settings(env)
        registry = Registry(self.project)
        lobbies.ensure_topic(self.project, lobbies.DEAD_LETTER_TOPIC)
        for target in self.targets:
            if target.kind == "dead-letter":
                lobbies.ensure_plain_push_subscription(
                    self.project,
                    lobbies.DEAD_LETTER_TOPIC,
                    "agentlobby-dead-letter-recorder",
                    lobbies.push_endpoint(
                        self.url(target.name), self.project, lobbies.DEAD_LETTER_TOPIC
                    ),
                )
        if str(self.functions_dir) not in sys.path:
            # Agent modules beside main.py import as functions-framework imports them there.
            sys.path.insert(0, str(self.functions_dir))
        specs = [(t, agent_spec(t)) for t in self.targets if t.kind == "agent"]
        for target, spec in specs:
            registry.put_agent(
                AgentRecord(
                    name=target.name,
                    endpoint=self.url(target.name),
                    description=spec.description,
                    listens_to=tuple(sorted(spec.listens_to)),
                    declared=tuple(
                        DeclaredSetting.model_validate(s.declared()) for s in spec.settings
                    ),
                    registered_at=now(),
                )
            )
        for name in sorted({lobby for _t, spec in specs for lobby in spec.default_lobbies}):
            membership.create_lobby(settings, name)
        for target, spec in specs:
            for lobby in spec.default_lobbies:
                membership.enter(settings, target.name, lobby)

    def _watch(self, sweep_interval_s: float) -> None:
        """Supervise the function servers (a dead one is started again, as Cloud Run starts a
        new instance) and call the sweeper on a timer, as Cloud Scheduler does."""
        self._stopping.clear()
        self._watchers = [
            threading.Thread(target=self._supervise, name="supervisor", daemon=True),
        ]
        if any(t.name == SWEEPER_TARGET for t in self.targets):
            self._watchers.append(
                threading.Thread(target=self._sweep_every, args=(sweep_interval_s,), daemon=True)
            )
        for watcher in self._watchers:
            watcher.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_EVERY_S):
            for index, child in enumerate(list(self.children)):
                if not child.name.startswith("function-") or child.alive():
                    continue
                if self._stopping.is_set():
                    return
                name = child.name.removeprefix("function-")
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.progress(
                    f"function {name} exited with code {child.process.returncode}: "
                    f"starting it again (restart {self.restarts[name]})"
                )
                self.children[index] = processes.restart(child)

    def _sweep_every(self, interval_s: float) -> None:
        url = self.url(SWEEPER_TARGET) + "/"
        while not self._stopping.wait(interval_s):
            request = urllib.request.Request(url, data=b"", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=max(30.0, interval_s)) as answer:
                    report = json.loads(answer.read())
            except (OSError, ValueError) as exc:  # the sweeper restarting: the next tick retries
                self.progress(f"sweep failed: {exc}")
                continue
            if report.get("redriven") or report.get("given_up") or report.get("failed"):
                self.progress(f"sweep: {json.dumps(report)}")

    def stop(self) -> None:
        """Stop everything started; each part even if another one failed to stop."""
        self._stopping.set()
        for watcher in self._watchers:
            watcher.join(timeout=2)
        self._watchers = []
        try:
            if self.model_server is not None:
                self.model_server.stop()
                self.model_server = None
            if self.span_collector is not None:
                self.span_collector.stop()
                self.span_collector = None
        finally:
            processes.stop(list(reversed(self.children)))
            self.children = []
            self._restore_env()
            if self._made_log_dir and not self.keep_logs:
                shutil.rmtree(self.log_dir, ignore_errors=True)

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
