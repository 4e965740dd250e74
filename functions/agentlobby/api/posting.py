"""Posting a message to a lobby: validate it, store it in its conversation, publish it.

One path for every way in: POST /lobbies/{lobby}/messages (routes.py) and the A2A edge's
SendMessage (a2a_edge/) both hand a PostMessage here, so validation, idempotency, the first
status, the trace span and the publish are the same whichever door a message came through.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid

from pydantic import ValidationError

from agentlobby.api.schema import Posted, PostMessage
from agentlobby.auth import bearer_token
from agentlobby.config import Settings
from agentlobby.errors import InvalidMessage, PayloadTooLarge
from agentlobby.images import image_size
from agentlobby.lifecycle import Status, first_status
from agentlobby.messages import (
    MAX_ENVELOPE_BYTES,
    USER_SENDER,
    Envelope,
    TaskContent,
    TaskImage,
    TextContent,
    check_lobby_name,
    check_size,
    describe_validation_error,
    new_id,
    now,
)
from agentlobby.store import lobbies
from agentlobby.store.conversations import Conversations
from agentlobby.store.registry import Registry
from agentlobby.tracing import current_traceparent, post_span

# A 429's body, status and Retry-After header.
Limited = tuple[dict[str, str], int, dict[str, str]]
_IDEMPOTENCY = uuid.UUID("1f0e7a52-3c0a-4c1e-8a5e-2b1d0c9f7a44")


def post_limited(headers: dict[str, str], config: Settings) -> Limited | None:
    """A 429 with Retry-After once the token's posts in this window pass the limit."""
    if config.post_rate_limit is None:
        return None
    from agentlobby.rate_limits import post_retry_after
    from agentlobby.store.rate_limits import RateWindows

    token = bearer_token(headers.get("authorization", "")) or ""
    wait = post_retry_after(
        RateWindows(config.project), token, config.post_rate_limit, config.rate_window_s
    )
    if wait is None:
        return None
    error = (
        f"too many posts: this token may post {config.post_rate_limit} messages per "
        f"{config.rate_window_s:g}s (AGENTLOBBY_POST_RATE_LIMIT); retry in {wait}s"
    )
    return {"error": error}, 429, {"Retry-After": str(wait)}


def parse_post(body: bytes) -> PostMessage:
    if len(body) > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    try:
        decoded = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"body is not valid JSON: {exc}") from exc
    except ValueError as exc:  # an integer Python will not convert (int_max_str_digits)
        raise InvalidMessage(
            f"body has an integer of more than {sys.get_int_max_str_digits()} digits: "
            "no field takes one (see docs/messages.md for each number's bounds)"
        ) from exc
    except RecursionError as exc:
        raise InvalidMessage("body is nested too deeply: send a flat JSON object") from exc
    if not isinstance(decoded, dict):
        raise InvalidMessage('body must be a JSON object like {"text": "hello"}')
    try:
        return PostMessage.model_validate(decoded)
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc, "message")) from exc


def _task_image(post: PostMessage) -> TaskImage | None:
    if post.image is None:
        return None
    try:
        image = TaskImage.model_validate(
            {"mime_type": post.image.mime_type, "data": post.image.data_base64}
        )
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc, "image")) from exc
    try:  # strictly: a lenient decoder drops what is not base64 and takes "é" as no image
        base64.b64decode(post.image.data_base64, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        raise InvalidMessage(
            f"invalid image: data: Base64 decoding error: {exc}; "
            "send only A-Z, a-z, 0-9, '+' and '/', with '=' padding"
        ) from exc
    try:
        image_size(image.mime_type, image.data)
    except ValueError as exc:
        raise InvalidMessage(f"invalid image: {exc}") from exc
    return image


def post_content(
    post: PostMessage, image: TaskImage | None, lobby_takes_tasks: bool
) -> TextContent | TaskContent:
    """A task where a member works on tasks (the coding lobby) or task fields are given."""
    task_fields = (post.tests, post.image, post.max_rounds, post.token_budget, post.cost_budget)
    if not lobby_takes_tasks and all(value is None for value in task_fields):
        return TextContent(text=post.text)
    return TaskContent(
        text=post.text,
        tests=post.tests,
        image=image,
        max_rounds=post.max_rounds,
        token_budget=post.token_budget,
        cost_budget=post.cost_budget,
    )


def post_message(lobby: str, post: PostMessage, key: str | None, config: Settings) -> Posted:
    """Store a validated post in its conversation (a new one, or `post.conversation_id`) and
    publish it to the lobby; `key` (an Idempotency-Key) makes a retry a no-op. Nothing is
    written until every check passed: a refused post leaves no trace."""
    try:
        check_lobby_name(lobby)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from exc
    image = _task_image(post)  # everything is validated before the first read
    check_lobby(config.project, lobby)
    takes_tasks = _lobby_takes_tasks(config.project, lobby)
    content = post_content(post, image, takes_tasks)
    conversation_id = post.conversation_id or (
        conversation_id_for_key(lobby, key) if key else new_id()
    )
    # The key is scoped to its conversation: agents remember deliveries by message id across
    # conversations, so the same key in two conversations must not make the same id.
    message_id = (
        uuid.uuid5(_IDEMPOTENCY, f"{lobby}/{conversation_id}/{key}").hex if key else new_id()
    )
    envelope = check_size(
        Envelope(
            id=message_id,
            conversation_id=conversation_id,
            lobby=lobby,
            sender=USER_SENDER,
            content=content,
            created_at=now(),
        )
    )
    conversations = Conversations(config.project)
    status: Status = first_status(isinstance(content, TaskContent), takes_tasks)
    existing = None
    if post.conversation_id is not None:
        existing = conversations.get(post.conversation_id)  # UnknownConversation: a 404
        if existing.lobby != lobby:
            raise InvalidMessage(
                f"conversation {existing.id} is in lobby {existing.lobby!r}, not {lobby!r}: "
                f"post to /lobbies/{existing.lobby}/messages"
            )
    # A new conversation starts a trace; a later post joins the trace its first post started.
    with post_span(lobby, envelope, existing.traceparent if existing else None):
        envelope = envelope.model_copy(update={"traceparent": current_traceparent()})
        if existing is not None:
            stored, _ = conversations.record(envelope)
        else:  # a new conversation, or the retry of a post with an Idempotency-Key that opened one
            stored = conversations.start(envelope, status)
        if stored.content != envelope.content:
            raise InvalidMessage(
                f"Idempotency-Key {key!r} was already used for a different message in "
                f"conversation {conversation_id}: a retry must send the same body; use a new "
                "key for a new message"
            )
        lobbies.publish(config.project, stored)
    return Posted(conversation_id=stored.conversation_id, message_id=stored.id)


def conversation_id_for_key(lobby: str, key: str) -> str:
    """The conversation a post with this Idempotency-Key (and no conversation_id) opens: the
    same for every retry, so a client can know it before it posts."""
    return uuid.uuid5(_IDEMPOTENCY, f"conversation/{lobby}/{key}").hex


_known_lobbies: set[tuple[str, str]] = set()


def check_lobby(project: str, lobby: str) -> None:
    """UnknownLobby unless the registry has it; lobbies are never removed, so found is cached."""
    if (project, lobby) not in _known_lobbies:
        Registry(project).lobby(lobby)
        _known_lobbies.add((project, lobby))


def _lobby_takes_tasks(project: str, lobby: str) -> bool:
    """Whether a member listens to tasks, read per post: agents enter and leave at runtime, and
    the change takes effect at once (a cached answer would keep a left lobby's posts running)."""
    registry = Registry(project)
    # A membership left behind by a removed agent names no agent: it takes nothing.
    return any(
        "task" in agent.listens_to for agent in registry.agents_named(registry.members(lobby))
    )
