"""The runner's hands on the stack: post as a user would, read conversations, script the model,
kill and pause processes the stack started, and read the functions' logs.

Everything goes through what a user or an operator has (the HTTP API, signals to the stack's
own children, its log files), so the scenarios test the system as deployed pieces, not the
library from inside. A few scenarios also reach for Pub/Sub and Firestore directly, as others
would: poison as a hostile publisher, loops as an operator registering agents, crashes to see
when a claim is held and to count the conversations a retried post made.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentlobby.api.schema import ConversationView, Posted
from agentlobby.config import Settings, load_settings
from agentlobby_cli.client import UserClient
from local_emulator.model_server.script import Script
from local_emulator.processes import Child
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo

REPO = Path(__file__).resolve().parent.parent
SERVING_TIMEOUT_S = 60.0


class PostFailed(Exception):
    """A post that got no 2xx: `status` is None when no answer came at all."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"{status or 'no answer'}: {detail}")
        self.status = status


class Harness:
    """One running stack and what the scenarios do to it."""

    def __init__(self, stack: Stack, info: StackInfo) -> None:
        self.stack = stack
        self.info = info
        self.reader = UserClient(info.user_url, info.api_token, timeout_s=10.0)

    @classmethod
    @contextmanager
    def running(cls, log_dir: Path, progress: Callable[[str], None]) -> Iterator[Harness]:
        """Start a stack with an empty model script; stop all of it afterwards, whatever
        happened."""
        log_dir.mkdir(parents=True, exist_ok=True)
        script = log_dir / "empty-script.json"
        script.write_text(json.dumps({"rules": []}))
        stack = Stack(
            port_base=0,
            model_script=script,
            log_dir=log_dir / "logs",
            extra_env={"AGENTLOBBY_STATE_DIR": str(log_dir)},
            progress=progress,
        )
        try:
            info = stack.start()
            yield cls(stack, info)
        finally:
            stack.stop()

    @property
    def project(self) -> str:
        return self.info.project

    def settings(self) -> Settings:
        """What a function of this stack reads, for the registry calls an operator makes."""
        return load_settings({**self.info.client_environment()})

    # --- the user API -----------------------------------------------------------------------

    def post(
        self, lobby: str, body: dict[str, Any], key: str | None = None, timeout_s: float = 30.0
    ) -> Posted:
        """POST /lobbies/{lobby}/messages; PostFailed on anything but a 2xx."""
        headers = {
            "Authorization": f"Bearer {self.info.api_token}",
            "Content-Type": "application/json",
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(
            f"{self.info.user_url}/lobbies/{lobby}/messages",
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise PostFailed(exc.code, exc.read()[:200].decode("utf-8", "replace")) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise PostFailed(None, str(exc)) from exc
        return Posted.model_validate_json(raw)

    def view(self, conversation_id: str) -> ConversationView | None:
        """GET /conversations/{id}, or None while the API cannot answer (a crash, a pause)."""
        try:
            return self.reader.conversation(conversation_id)
        except Exception:  # any failure here means "not readable yet"
            return None

    # --- the offline model ------------------------------------------------------------------

    def play(self, rules: list[dict[str, Any]]) -> None:
        """Replace the model server's script (its counters start from zero)."""
        assert self.stack.model_server is not None
        self.stack.model_server.load_script(Script.from_dict({"rules": rules}, source="stress"))

    def model_requests(self) -> list[dict[str, Any]]:
        """Every chat completion request since the last play(), in arrival order."""
        assert self.stack.model_server is not None
        received: list[dict[str, Any]] = self.stack.model_server.stats()["received"]
        return received

    # --- processes ----------------------------------------------------------------------------

    def child(self, name: str) -> Child:
        """The stack's child process by name (`function-coder`, `firestore-emulator`)."""
        (found,) = [c for c in self.stack.children if c.name == name]
        return found

    def kill(self, target: str) -> int:
        """SIGKILL a function server's whole process group, as a crashed instance; its pid."""
        child = self.child(f"function-{target}")
        os.killpg(child.process.pid, signal.SIGKILL)
        return child.process.pid

    def signal_group(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.child(name).process.pid, sig)

    def serving_again(
        self, target: str, old_pid: int, timeout_s: float = SERVING_TIMEOUT_S
    ) -> float:
        """Wait until the stack restarted a killed server and it answers; the wall-clock time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            child = self.child(f"function-{target}")
            if child.process.pid != old_pid and child.alive() and self._answers(target):
                return time.time()
            time.sleep(0.05)
        raise TimeoutError(f"{target} did not serve again within {timeout_s:.0f}s")

    def _answers(self, target: str) -> bool:
        try:
            with urllib.request.urlopen(self.stack.url(target) + "/healthz", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # an event function answers a GET with 405: it serves
        except (OSError, http.client.HTTPException):
            return False

    def restarts(self) -> int:
        return sum(self.stack.restarts.values())

    # --- logs ---------------------------------------------------------------------------------

    def function_logs(self) -> dict[str, list[str]]:
        """Each function server's log lines so far (restarted servers append to the same file)."""
        logs = {}
        for path in sorted(Path(self.stack.log_dir).glob("function-*.log")):
            name = path.stem.removeprefix("function-")
            logs[name] = path.read_text(errors="replace").splitlines()
        return logs

    def handled(self, conversation_ids: set[str]) -> int:
        """Handler runs on these conversations' messages, from the pipeline's 'handling' lines:
        the deliveries the agents really worked on, redeliveries included."""
        count = 0
        for lines in self.function_logs().values():
            for line in lines:
                if '"handling ' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("conversation_id") in conversation_ids:
                    count += 1
        return count
