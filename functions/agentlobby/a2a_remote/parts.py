"""A lobby message as an A2A message, and an A2A answer as one reply's text. No I/O.

The A2A message's id is derived from the lobby message's id and the member's name, so every
redelivery sends the same id and a remote that deduplicates by messageId can do so. Its
context id is the conversation's id: one conversation is one A2A context.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from a2a.helpers.proto_helpers import get_data_parts
from a2a.types import Message, Part, Role, Task, TaskState

from agentlobby.messages import MAX_TEXT_CHARS, CodeContent, Envelope, TaskContent

_MESSAGE_NAMESPACE = uuid.UUID("5d0f1c1e-7a2b-4d54-9a63-0b7c2f1e8a11")

# The states after which a task changes no more, or waits for someone: the answer is in.
FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)
_STATE_WORDS = {
    TaskState.TASK_STATE_COMPLETED: "completed",
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_CANCELED: "was canceled",
    TaskState.TASK_STATE_REJECTED: "was rejected",
    TaskState.TASK_STATE_INPUT_REQUIRED: "needs input",
    TaskState.TASK_STATE_AUTH_REQUIRED: "needs authentication",
}
TRUNCATED = "\n[... cut at the lobby's text limit]"


@dataclass(frozen=True)
class Answer:
    """What the remote said, as the lobby shows it."""

    text: str
    failed: bool = False  # the remote's task ended failed, rejected or canceled


def a2a_message_id(agent: str, message_id: str) -> str:
    """The same for every delivery of one lobby message to one member."""
    return uuid.uuid5(_MESSAGE_NAMESPACE, f"{agent}/{message_id}").hex


def text_to_send(message: Envelope) -> str | None:
    """What the remote reads: the message's text (a task's text and tests, code's source);
    None for a message with nothing to read (an image without a caption)."""
    content = message.content
    if isinstance(content, TaskContent) and content.tests:
        return f"{content.text}\n\nTests:\n{content.tests}"
    if isinstance(content, CodeContent):
        return content.source
    return message.text() or None


def outgoing_message(agent: str, message: Envelope, text: str) -> Message:
    """The A2A message for one lobby message; where it comes from rides in its metadata."""
    return Message(
        message_id=a2a_message_id(agent, message.id),
        context_id=message.conversation_id,
        role=Role.ROLE_USER,
        parts=[Part(text=text)],
        metadata={
            "agentlobby": {
                "lobby": message.lobby,
                "sender": message.sender,
                "kind": message.kind,
                "message_id": message.id,
                "conversation_id": message.conversation_id,
            }
        },
    )


def parts_text(parts: list[Part]) -> list[str]:
    """Each part as text: text as it is, data as JSON, a file by its name or address."""
    shown: list[str] = []
    for part in parts:
        if part.HasField("text"):
            if part.text.strip():
                shown.append(part.text)
        elif part.HasField("data"):
            shown.append(json.dumps(get_data_parts([part])[0], sort_keys=True))
        elif part.HasField("url"):
            kind = part.media_type or "unknown type"
            shown.append(f"[file {part.filename or part.url} ({kind})]")
        elif part.HasField("raw"):
            shown.append(f"[file {part.filename or 'unnamed'} ({part.media_type or 'bytes'})]")
    return shown


def message_answer(message: Message) -> Answer:
    return Answer(_fit("\n".join(parts_text(list(message.parts))) or "(an empty answer)"))


def task_answer(agent: str, task: Task) -> Answer:
    """A task in a final state: its artifacts and its status message; a failed one says so."""
    state = task.status.state
    said = parts_text(list(task.status.message.parts)) if task.status.HasField("message") else []
    for artifact in task.artifacts:
        said += parts_text(list(artifact.parts))
    if state == TaskState.TASK_STATE_COMPLETED:
        return Answer(_fit("\n".join(said) or f"({agent}'s task completed without text)"))
    words = _STATE_WORDS.get(state, TaskState.Name(state))
    lines = [f"{agent}'s A2A task {task.id} {words}", *said]
    failed = state in (
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    )
    return Answer(_fit("\n".join(lines)), failed=failed)


def _fit(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[: MAX_TEXT_CHARS - len(TRUNCATED)] + TRUNCATED
