"""The vision agent: a task with an image becomes a written specification via the model.

A task without an image needs no model: its text is the specification. Either way the
conversation gets one `spec` message, which is what the coder waits for.
"""

from __future__ import annotations

import base64

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.agents.coding import budget_left, finish_failed, task_of
from agentlobby.errors import ModelOutputError
from agentlobby.messages import USER_SENDER, Envelope, SpecContent
from agentlobby.model import ChatMessage

SYSTEM_PROMPT = (
    "You turn a user's request and an image into a precise specification for a Python "
    "program: inputs, outputs, behaviour and edge cases, as plain text. Describe what the "
    "image shows that matters for the program. Do not write code."
)


def _spec_text(answer: str) -> str:
    text = answer.strip()
    if not text:
        raise ValueError("the specification was empty")
    return text


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender != USER_SENDER:
        return []
    transcript = ctx.transcript(message.conversation_id)
    if any(m.kind == "spec" for m in transcript):
        return []  # a later user message in the same conversation is not a new task
    ctx.lifecycle.start_work(message.conversation_id)
    task = task_of(transcript)
    if task.image is None:
        return [Outgoing(content=SpecContent(text=task.text))]
    if reason := budget_left(task, transcript, ctx):
        return finish_failed(message, ctx, reason, transcript)
    data_url = f"data:{task.image.mime_type};base64,{base64.b64encode(task.image.data).decode()}"
    request: list[ChatMessage] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": task.text},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        },
    ]
    try:
        parsed = ctx.model.complete_parsed(
            request, _spec_text, "Answer with the specification as plain text."
        )
    except ModelOutputError as exc:
        return finish_failed(message, ctx, str(exc), transcript, exc.usage)  # type: ignore[arg-type]
    spec = f"{task.text}\n\nFrom the image:\n{parsed.value}"
    return [Outgoing(content=SpecContent(text=spec), usage=parsed.usage)]


AGENT = AgentSpec(
    name="vision",
    description="Turns a task (text, optional image) into a specification.",
    listens_to=frozenset({"task", "text"}),
    handle=handle,
    default_lobbies=("coding",),
    exclusive=True,
)
