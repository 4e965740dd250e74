"""One call to a remote A2A agent with the official a2a-sdk client, bounded and tried again.

A call resolves the agent's card (`URL/.well-known/agent-card.json`), sends one message with
SendMessage (not streamed) and, when the answer is a task still at work, polls GetTask until it
reaches a final state, all within `timeout_s`. What goes wrong is translated at this boundary:

- a timeout, a refused connection, 408/429/5xx, or the remote's internal error are transient:
  the call is tried again in-process (up to `tries`, with backoff), then RemoteAgentUnavailable
  propagates so the delivery is retried (Pub/Sub's redelivery, the sweeper's redrive);
- a protocol error for the request itself (invalid params, unsupported operation or content
  type, no agent card, another 4xx, an answer that is not A2A) is RemoteAgentRejected:
  permanent, so the delivery becomes a dead letter with that reason at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from a2a.client import A2AClientError, A2AClientTimeoutError, ClientConfig, ClientFactory
from a2a.client.errors import AgentCardResolutionError
from a2a.types import GetTaskRequest, Message, SendMessageRequest, Task
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError, InternalError, InvalidAgentResponseError

from agentlobby.a2a_remote.parts import FINAL_STATES, Answer, message_answer, task_answer
from agentlobby.errors import RemoteAgentRejected, RemoteAgentUnavailable

log = logging.getLogger(__name__)

POLL_EVERY_S = 0.2
BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
_TRANSIENT_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RemoteCall:
    """Who is called where, and how patiently."""

    agent: str  # the member's name in the lobby
    url: str  # the remote agent's base URL: its card is at URL/.well-known/agent-card.json
    timeout_s: float  # one try: card, send and polling together
    tries: int  # in-process tries on transient failures, before the delivery is retried


def ask(call: RemoteCall, message: Message) -> Answer:
    """The remote's answer to `message`; raises RemoteAgentRejected or RemoteAgentUnavailable."""
    for attempt in range(1, call.tries + 1):
        try:
            return asyncio.run(_ask_once(call, message))
        except RemoteAgentUnavailable as exc:
            if attempt == call.tries:
                raise RemoteAgentUnavailable(
                    f"{exc} (tried {call.tries} time{'s' if call.tries > 1 else ''})"
                ) from exc
            pause = BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
            log.warning("%s; trying again in %.1f s", exc, pause, extra={"agent": call.agent})
            time.sleep(pause)
    raise AssertionError("unreachable: tries is at least 1")


async def _ask_once(call: RemoteCall, message: Message) -> Answer:
    where = f"remote A2A agent {call.agent} at {call.url}"
    try:
        async with (
            asyncio.timeout(call.timeout_s),
            httpx.AsyncClient(timeout=httpx.Timeout(call.timeout_s)) as http,
        ):
            config = ClientConfig(
                streaming=False,
                httpx_client=http,
                supported_protocol_bindings=[
                    TransportProtocol.JSONRPC,
                    TransportProtocol.HTTP_JSON,
                ],
            )
            client = await ClientFactory(config).create_from_url(call.url)
            task: Task | None = None
            async for event in client.send_message(SendMessageRequest(message=message)):
                if event.HasField("message"):
                    return message_answer(event.message)
                if event.HasField("task"):
                    task = event.task
            if task is None:
                raise RemoteAgentRejected(f"{where} answered neither a message nor a task")
            while task.status.state not in FINAL_STATES:
                await asyncio.sleep(POLL_EVERY_S)
                task = await client.get_task(GetTaskRequest(id=task.id))
            return task_answer(call.agent, task)
    except TimeoutError:
        raise RemoteAgentUnavailable(
            f"{where} did not answer within {call.timeout_s:g} s (its timeout_s setting)"
        ) from None
    except A2AError as exc:
        raise translated(where, exc) from exc
    except ValueError as exc:  # the factory: no transport of the card's that we speak
        raise RemoteAgentRejected(f"{where}: {exc} (we speak JSON-RPC and HTTP+JSON)") from exc


def translated(where: str, exc: A2AError) -> RemoteAgentRejected | RemoteAgentUnavailable:
    """An a2a-sdk error as ours: transient when waiting may help, else permanent."""
    said = str(exc) or type(exc).__name__
    if isinstance(exc, A2AClientTimeoutError):
        return RemoteAgentUnavailable(f"{where} timed out: {said}")
    if isinstance(exc, InternalError | InvalidAgentResponseError):
        return RemoteAgentUnavailable(f"{where} failed inside: {type(exc).__name__}: {said}")
    if isinstance(exc, AgentCardResolutionError | A2AClientError):
        status = _status(exc)
        if status is None and isinstance(exc.__cause__, httpx.RequestError):
            return RemoteAgentUnavailable(f"{where} could not be reached: {exc.__cause__!r}")
        if status is not None and (status >= 500 or status in _TRANSIENT_STATUS):
            return RemoteAgentUnavailable(f"{where} answered HTTP {status}")
        if isinstance(exc, AgentCardResolutionError):
            return RemoteAgentRejected(
                f"{where} has no usable agent card (/.well-known/agent-card.json): {said}; "
                "check the --a2a URL given to `agentlobby agents add-remote`"
            )
        return RemoteAgentRejected(f"{where} refused the request: {said}")
    return RemoteAgentRejected(f"{where} refused the request: {type(exc).__name__}: {said}")


def _status(exc: A2AError) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        return cause.response.status_code
    return None
