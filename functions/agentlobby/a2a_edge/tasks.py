"""A conversation, as GET /conversations/{id} shows it, seen as an A2A task. No I/O.

The conversation id is both the task id and the context id. Its status maps to a task state:

    conversation                               task state
    open, the last message is the user's       working         (an answer is due)
    open, an agent answered last               input-required  (a chat waits for you)
    running                                    working
    succeeded                                  completed
    failed                                     failed
    cancelled                                  canceled

Every transcript message is a history entry (role user for the user's, agent for the rest,
with the sender and kind in its metadata). A finished coding task's `result` message becomes
two artifacts: the final code and its output.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from a2a.types import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

from agentlobby.messages import USER_SENDER

CODE_ARTIFACT = "final-code"
OUTPUT_ARTIFACT = "output"
# States after which a stream ends: terminal, or waiting for the user (interrupted).
SETTLED = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
    }
)
TERMINAL = frozenset(
    {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}
)
_BY_STATUS = {
    "running": TaskState.TASK_STATE_WORKING,
    "succeeded": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
}


def task_state(status: str, last_sender: str | None) -> TaskState:
    """The task state of a conversation's status (the table above)."""
    if status == "open":
        answered = last_sender is not None and last_sender != USER_SENDER
        return TaskState.TASK_STATE_INPUT_REQUIRED if answered else TaskState.TASK_STATE_WORKING
    state = _BY_STATUS.get(status)
    if state is None:
        raise ValueError(f"conversation status {status!r} has no task state: add it to the table")
    return state


def state_of(view: dict[str, Any]) -> TaskState:
    messages = view["messages"]
    return task_state(view["status"], messages[-1]["sender"] if messages else None)


def history_message(view: dict[str, Any], entry: dict[str, Any]) -> Message:
    """One transcript entry as an A2A message: its text, and its content as data when the
    content is more than text (code, a run's result, a verdict...)."""
    conversation_id = view["conversation_id"]
    message = Message(
        message_id=entry["id"],
        context_id=conversation_id,
        task_id=conversation_id,
        role=Role.ROLE_USER if entry["sender"] == USER_SENDER else Role.ROLE_AGENT,
    )
    message.metadata.update({"sender": entry["sender"], "kind": entry["kind"]})
    text = entry.get("text")
    if text:
        message.parts.append(Part(text=text, media_type="text/plain"))
    if entry["kind"] != "text":
        data = Part(media_type="application/json")
        data.data.struct_value.update(_plain(_without_image_data(entry["content"])))
        message.parts.append(data)
    if not message.parts:  # a message with neither: say what it was
        message.parts.append(Part(text=f"({entry['kind']} from {entry['sender']})"))
    return message


def artifacts(view: dict[str, Any]) -> list[Artifact]:
    """The final code and its output, from a finished task's `result` message."""
    results = [m["content"] for m in view["messages"] if m["kind"] == "result"]
    if not results:
        return []
    result = results[-1]
    found = []
    if result.get("code"):
        found.append(
            Artifact(
                artifact_id=CODE_ARTIFACT,
                name="final code",
                description=f"the program after {result.get('rounds', 0)} round(s)",
                parts=[Part(text=result["code"], media_type="text/x-python", filename="main.py")],
            )
        )
    if result.get("output") is not None:
        found.append(
            Artifact(
                artifact_id=OUTPUT_ARTIFACT,
                name="output",
                description="what the final code printed when it ran in the sandbox",
                parts=[Part(text=result["output"], media_type="text/plain")],
            )
        )
    return found


def status_message(view: dict[str, Any]) -> Message | None:
    """What the status says in words: the reason a task ended, if it has one."""
    if not view.get("reason"):
        return None
    conversation_id = view["conversation_id"]
    message = Message(
        message_id=f"{conversation_id}-status",
        context_id=conversation_id,
        task_id=conversation_id,
        role=Role.ROLE_AGENT,
        parts=[Part(text=view["reason"], media_type="text/plain")],
    )
    return message


def task_status(view: dict[str, Any], message: Message | None = None) -> TaskStatus:
    status = TaskStatus(state=state_of(view))
    stamp = view["messages"][-1]["created_at"] if view["messages"] else None
    if stamp:
        status.timestamp.FromDatetime(datetime.fromisoformat(stamp))
    said = message if message is not None else status_message(view)
    if said is not None:
        status.message.CopyFrom(said)
    return status


def to_task(view: dict[str, Any], lobby: str) -> Task:
    """The whole task: status, history and artifacts."""
    conversation_id = view["conversation_id"]
    task = Task(id=conversation_id, context_id=conversation_id, status=task_status(view))
    task.history.extend(history_message(view, entry) for entry in view["messages"])
    task.artifacts.extend(artifacts(view))
    task.metadata.update({"lobby": lobby, "status": view["status"], "rounds": view["rounds"]})
    return task


def status_update(view: dict[str, Any], message: Message | None = None) -> TaskStatusUpdateEvent:
    conversation_id = view["conversation_id"]
    return TaskStatusUpdateEvent(
        task_id=conversation_id, context_id=conversation_id, status=task_status(view, message)
    )


def message_update(view: dict[str, Any], entry: dict[str, Any]) -> TaskStatusUpdateEvent:
    """One lobby message as it arrives: a status update carrying it. Its state is `working`
    while the task goes on; the settled state comes once, in the last update of a stream."""
    state = state_of(view)
    conversation_id = view["conversation_id"]
    status = TaskStatus(
        state=TaskState.TASK_STATE_WORKING if state in SETTLED else state,
        message=history_message(view, entry),
    )
    status.timestamp.FromDatetime(datetime.fromisoformat(entry["created_at"]))
    return TaskStatusUpdateEvent(task_id=conversation_id, context_id=conversation_id, status=status)


def artifact_updates(view: dict[str, Any]) -> list[TaskArtifactUpdateEvent]:
    conversation_id = view["conversation_id"]
    return [
        TaskArtifactUpdateEvent(
            task_id=conversation_id, context_id=conversation_id, artifact=artifact, last_chunk=True
        )
        for artifact in artifacts(view)
    ]


def _without_image_data(content: dict[str, Any]) -> dict[str, Any]:
    """A task's image is kept out of history: its type and size say enough there."""
    image = content.get("image")
    if isinstance(image, dict) and "data" in image:
        return {**content, "image": {"mime_type": image.get("mime_type"), "bytes": "omitted"}}
    return content


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """JSON-plain values only (a protobuf Struct holds nothing else)."""
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return plain
