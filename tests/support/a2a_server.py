"""A real A2A server for tests, built with a2a-sdk's own server classes, on loopback.

The agent answers deterministically: `hello` becomes the message `HELLO`; text starting with
`task:` is answered with a completed task whose artifact holds the text in capitals; `fail:`
ends its task failed; `invalid:` is refused with the protocol's invalid-params error. It counts
the executions per A2A messageId. `fail_next` makes the next POSTs answer 500 before the SDK
sees them, and `down` makes every POST answer 500, as a remote that is failing would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import get_message_text, new_text_artifact, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import InvalidParamsError
from starlette.applications import Starlette

from local_emulator.stack import free_port

START_TIMEOUT_S = 30.0


class RemoteState:
    """What the server was asked, and how it should fail; shared with its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: Counter[str] = Counter()  # A2A messageId -> times the agent ran
        self.contexts: dict[str, str] = {}  # A2A messageId -> its contextId
        self.metadata: dict[str, dict[str, Any]] = {}
        self.refused_posts = 0
        self.fail_next = 0
        self.down = False

    def ran(self, message_id: str, context_id: str, metadata: dict[str, Any]) -> None:
        with self._lock:
            self.executions[message_id] += 1
            self.contexts[message_id] = context_id
            self.metadata[message_id] = metadata

    def refuse(self) -> bool:
        with self._lock:
            if self.down or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                self.refused_posts += 1
                return True
            return False


class Shouter(AgentExecutor):
    def __init__(self, state: RemoteState) -> None:
        self.state = state

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        from google.protobuf.json_format import MessageToDict

        self.state.ran(message.message_id, message.context_id, MessageToDict(message.metadata))
        text = get_message_text(message)
        if text.startswith("invalid:"):
            raise InvalidParamsError(f"cannot take {text!r}")
        if text.startswith(("task:", "fail:")):
            done = text.startswith("task:")
            task_id, context_id = context.task_id or "t", context.context_id or "c"
            state = TaskState.TASK_STATE_COMPLETED if done else TaskState.TASK_STATE_FAILED
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(
                        state=state,
                        message=None if done else new_text_message("the remote gave up"),
                    ),
                    artifacts=[new_text_artifact("answer", text.upper())] if done else [],
                )
            )
            return
        await event_queue.enqueue_event(new_text_message(text.upper()))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


class Refusing:
    """ASGI wrapper: a POST answers 500 while the state says the remote is failing."""

    def __init__(self, app: Any, state: RemoteState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.state.refuse():
            headers = [(b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": b"failing for the test"})
            return
        await self.app(scope, receive, send)


def agent_card(url: str) -> AgentCard:
    return AgentCard(
        name="shouter",
        description="Answers in capitals.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", url=url + "/", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="shout", name="shout", description="capitals", tags=["test"])],
    )


@contextmanager
def a2a_server() -> Iterator[tuple[str, RemoteState]]:
    """Serve the shouter on a free loopback port in a thread; yields its URL and state."""
    state = RemoteState()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    card = agent_card(url)
    handler = DefaultRequestHandler(
        agent_executor=Shouter(state), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])
    server = uvicorn.Server(
        uvicorn.Config(Refusing(app, state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"a2a-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the A2A test server on {url} did not start")
            time.sleep(0.02)
        yield url, state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
