"""The A2A methods a lobby serves, on its conversations.

    SendMessage            post to the lobby: a new conversation (no taskId/contextId) or the
                           next message of one (taskId or contextId: the conversation id);
                           waits up to BLOCKING_S for the task to settle unless the request says
                           returnImmediately, then answers the task
    SendStreamingMessage   the same post, answered by the task's events (stream.py)
    GetTask                the task, its history cut to historyLength if given
    CancelTask             an open or running conversation ends `cancelled` (lifecycle.cancel)
    SubscribeToTask        the events of a task that has not ended

A message's messageId is the post's Idempotency-Key, so a client's retry of the same send is a
no-op. Everything a request carries is checked before the first write: a refused send writes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    SendMessageRequest,
    SendMessageResponse,
    SubscribeToTaskRequest,
    Task,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.task import apply_history_length, validate_history_length

from agentlobby.a2a_edge.card import OUTPUT_MODES
from agentlobby.a2a_edge.inbound import post_of
from agentlobby.a2a_edge.stream import Event, progress
from agentlobby.a2a_edge.tasks import to_task
from agentlobby.a2a_edge.wire import to_json
from agentlobby.api.events import LIFETIME_S
from agentlobby.api.overview import read_conversation
from agentlobby.api.posting import post_message
from agentlobby.config import Settings
from agentlobby.errors import UnknownConversation
from agentlobby.lifecycle import Lifecycle, is_over
from agentlobby.store.conversations import Conversations
from agentlobby.tracing import flush

BLOCKING_S = 30.0  # a blocking send answers within this (the cloud's user function: 60 s)
CANCEL_REASON = "cancelled by the user (A2A CancelTask)"
_ANY_OUTPUT = {"*/*", "text/*", *OUTPUT_MODES}


def send(lobby: str, request: SendMessageRequest, config: Settings) -> dict[str, Any]:
    view = _post(lobby, request, config)
    if not request.configuration.return_immediately:
        for _event in progress(config, lobby, view, BLOCKING_S):
            pass  # waiting for the task to settle; the answer is the task as it is then
        view = read_conversation(config, view["conversation_id"])
    task = apply_history_length(to_task(view, lobby), request.configuration)
    return to_json(SendMessageResponse(task=task))


def send_streaming(
    lobby: str, request: SendMessageRequest, config: Settings
) -> Iterator[Event | None]:
    view = _post(lobby, request, config)
    return progress(config, lobby, view, LIFETIME_S)


def get(lobby: str, request: GetTaskRequest, config: Settings) -> dict[str, Any]:
    validate_history_length(request)
    return to_json(apply_history_length(_task(lobby, request.id, config), request))


def cancel(lobby: str, request: CancelTaskRequest, config: Settings) -> dict[str, Any]:
    task = _task(lobby, request.id, config)  # TaskNotFound for another lobby's conversation
    if not Lifecycle(Conversations(config.project)).cancel(request.id, CANCEL_REASON):
        raise TaskNotCancelableError(
            message=f"task {request.id} has already ended ({task.metadata['status']}): only an "
            "open or running task can be cancelled"
        )
    return to_json(_task(lobby, request.id, config))


def subscribe(
    lobby: str, request: SubscribeToTaskRequest, config: Settings
) -> Iterator[Event | None]:
    view = _view(lobby, request.id, config)
    if is_over(view["status"]):
        raise UnsupportedOperationError(
            message=f"task {request.id} has ended ({view['status']}): there is nothing to "
            "subscribe to; GetTask reads it"
        )
    return progress(config, lobby, view, LIFETIME_S)


def _post(lobby: str, request: SendMessageRequest, config: Settings) -> dict[str, Any]:
    """Post the request's message and answer the conversation's view right after."""
    validate_history_length(request.configuration)
    accepted = set(request.configuration.accepted_output_modes)
    if accepted and not accepted & _ANY_OUTPUT:
        raise ContentTypeNotSupportedError(
            message=f"acceptedOutputModes {sorted(accepted)} has none of what a lobby answers: "
            f"{', '.join(OUTPUT_MODES)}"
        )
    message = request.message
    task_id, context_id = message.task_id, message.context_id
    if task_id and context_id and task_id != context_id:
        raise InvalidParamsError(
            message=f"taskId {task_id!r} and contextId {context_id!r} differ: here a task is "
            "its conversation, so both are its id; send one, or the same in both"
        )
    conversation_id = task_id or context_id or None
    post = post_of(message, conversation_id)  # ContentTypeNotSupported, InvalidParams
    if conversation_id is not None:
        view = _view(lobby, conversation_id, config)
        if is_over(view["status"]):
            raise UnsupportedOperationError(
                message=f"task {conversation_id} has ended ({view['status']}) and takes no more "
                "messages: send without taskId and contextId to start a new one"
            )
    try:
        posted = post_message(lobby, post, message.message_id, config)
    finally:
        flush()
    return read_conversation(config, posted.conversation_id)


def _view(lobby: str, task_id: str, config: Settings) -> dict[str, Any]:
    """The conversation behind a task of this lobby; TaskNotFound for any other id."""
    if not task_id:
        raise InvalidParamsError(message="id is required: the task's id (its conversation id)")
    try:
        view = read_conversation(config, task_id)
    except UnknownConversation:
        raise TaskNotFoundError(message=f"no task {task_id!r} in lobby {lobby!r}") from None
    if view["lobby"] != lobby:
        raise TaskNotFoundError(
            message=f"no task {task_id!r} in lobby {lobby!r} (it is in another lobby: ask that "
            "lobby's agent)"
        )
    return view


def _task(lobby: str, task_id: str, config: Settings) -> Task:
    return to_task(_view(lobby, task_id, config), lobby)
