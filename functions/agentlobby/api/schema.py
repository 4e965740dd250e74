"""The user API's bodies: what a client may post and every answer, as typed models.

The server (routes.py) writes these and the CLI's client reads them back with the same
models, so neither side reads the other's JSON by string keys. docs/messages.md documents them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentlobby.cost import CostView
from agentlobby.lifecycle import Status
from agentlobby.messages import (
    MAX_TEXT_CHARS,
    MAX_TOKEN_BUDGET,
    Content,
    CostBudget,
    Identifier,
    LobbyName,
    SenderName,
    Usage,
    Wire,
)
from agentlobby.store.conversations import DeadLetter

__all__ = [
    "ConversationView",
    "CostView",
    "DeadLetter",
    "ErrorBody",
    "ImageInput",
    "MessageView",
    "PostMessage",
    "Posted",
    "UsageView",
]


class ImageInput(Wire):
    mime_type: str
    data_base64: str


class PostMessage(Wire):
    """What a client may post. Fields beyond text make it a coding task."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    conversation_id: Identifier | None = None
    tests: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None = None
    image: ImageInput | None = None
    max_rounds: Annotated[int, Field(ge=1, le=20)] | None = None
    token_budget: Annotated[int, Field(ge=1, le=MAX_TOKEN_BUDGET)] | None = None
    cost_budget: CostBudget | None = None  # US dollars


class Posted(Wire):
    """202: the post is stored and published."""

    conversation_id: Identifier
    message_id: Identifier


class UsageView(Wire):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class MessageView(Wire):
    """One transcript entry: the envelope's fields, its content, and its text where it has one."""

    id: Identifier
    sender: SenderName
    kind: str
    lobby: LobbyName
    parent_id: Identifier | None
    hops: int
    created_at: str
    content: Content
    usage: Usage | None
    text: str | None = None


class ConversationView(Wire):
    """200 on GET /conversations/{id}: status, derived values and the whole transcript."""

    conversation_id: Identifier
    lobby: LobbyName
    status: Status
    reason: str | None
    rounds: int
    final_code: str | None
    usage: UsageView
    # What the model use cost, priced by the user function's price table (cost.py).
    cost: CostView = CostView(total_usd=0.0, by_agent={})
    messages: list[MessageView]
    dead_letters: list[DeadLetter]


class ErrorBody(Wire):
    """Every 4xx and 5xx: what was wrong and how to fix it."""

    error: str
