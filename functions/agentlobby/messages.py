"""The message envelope every lobby carries, and its content kinds.

One frozen, versioned pydantic model crosses every wire (Pub/Sub data, Firestore documents,
HTTP bodies); contents are a discriminated union on `kind`. docs/messages.md is the schema.
Size limits come from the stores: a Firestore document holds 1 MiB and every transcript entry
is one document, so an envelope is capped well below that (Pub/Sub's 10 MB never binds).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from agentlobby.errors import InvalidMessage, PayloadTooLarge

SCHEMA_VERSION: Literal[1] = 1
MAX_ENVELOPE_BYTES = 900_000
MAX_TEXT_CHARS = 200_000
MAX_TOKEN_BUDGET = 100_000_000  # a budget beyond this is no budget; Firestore holds int64
MAX_COST_BUDGET = 1_000_000.0  # US dollars; a budget beyond this is no budget
MAX_MODEL_NAME_CHARS = 200
MAX_HOPS = 10_000
MAX_ROUND = 1_000
MAX_COUNT = 10**15  # any count stored (tokens, milliseconds): well inside Firestore's int64
USER_SENDER = "user"

LOBBY_NAME = re.compile(r"^[a-z][a-z0-9-]{2,62}$")
AGENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MESSAGE_ID = re.compile(r"^(?!__.*__$)[A-Za-z0-9_-]{1,64}$")  # Firestore reserves __x__ ids
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def check_lobby_name(name: str) -> str:
    """A lobby name is a Pub/Sub topic id we can also put in a URL path and a subscription id."""
    if not LOBBY_NAME.fullmatch(name):
        raise ValueError(
            f"lobby name {name!r} must be 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter"
        )
    return name


def check_agent_name(name: str) -> str:
    """An agent name is also a Python identifier: the entry point in main.py has that name."""
    if not AGENT_NAME.fullmatch(name):
        raise ValueError(
            f"agent name {name!r} must be 2-40 characters of a-z, 0-9 and '_', "
            "starting with a letter"
        )
    return name


def _check_sender(name: str) -> str:
    return name if name == USER_SENDER else check_agent_name(name)


def _check_id(value: str) -> str:
    if not MESSAGE_ID.fullmatch(value):
        raise ValueError(
            f"id {value!r} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-', "
            "not starting and ending with '__'"
        )
    return value


LobbyName = Annotated[str, AfterValidator(check_lobby_name)]
AgentName = Annotated[str, AfterValidator(check_agent_name)]
SenderName = Annotated[str, AfterValidator(_check_sender)]
Identifier = Annotated[str, AfterValidator(_check_id)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
# W3C Trace Context: version-traceid-parentid-flags, lower-case hex (tracing.py)
TRACEPARENT_PATTERN = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
Traceparent = Annotated[str, Field(pattern=TRACEPARENT_PATTERN)]
# US dollars, finite and positive; strict: true or "0.5" is not a budget (1 is).
CostBudget = Annotated[float, Field(gt=0, le=MAX_COST_BUDGET, allow_inf_nan=False, strict=True)]
ModelName = Annotated[str, Field(min_length=1, max_length=MAX_MODEL_NAME_CHARS)]


class Wire(BaseModel):
    """Base of everything that crosses a wire: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TextContent(Wire):
    kind: Literal["text"] = "text"
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class CodeContent(Wire):
    kind: Literal["code"] = "code"
    language: Literal["python"] = "python"
    source: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    round: Annotated[int, Field(ge=1, le=MAX_ROUND)] = 1
    text: Text | None = None


class ImageContent(Wire):
    kind: Literal["image"] = "image"
    mime_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: Base64Bytes
    text: Text | None = None


class AttachmentContent(Wire):
    kind: Literal["attachment"] = "attachment"
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")]
    mime_type: Annotated[str, Field(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]
    data: Base64Bytes


class TaskImage(Wire):
    mime_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: Base64Bytes


class TaskContent(Wire):
    """A coding task: what to build, optional tests that decide the verdict, optional image."""

    kind: Literal["task"] = "task"
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    tests: Text | None = None
    image: TaskImage | None = None
    max_rounds: Annotated[int, Field(ge=1, le=20)] | None = None
    token_budget: Annotated[int, Field(ge=1, le=MAX_TOKEN_BUDGET)] | None = None
    cost_budget: CostBudget | None = None  # US dollars (cost.py prices the model use)


class SpecContent(Wire):
    kind: Literal["spec"] = "spec"
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class ExecutionResultContent(Wire):
    kind: Literal["execution-result"] = "execution-result"
    round: Annotated[int, Field(ge=1, le=MAX_ROUND)]
    code_id: Identifier
    exit_code: Annotated[int, Field(ge=-255, le=255)] | None
    stdout: Text
    stderr: Text
    timed_out: bool
    duration_ms: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    truncated: bool
    reason: str | None
    tests_passed: bool | None = None
    isolation: str | None = None  # which sandbox level held (docs/sandbox.md)
    text: Text | None = None


class VerdictContent(Wire):
    kind: Literal["verdict"] = "verdict"
    round: Annotated[int, Field(ge=1, le=MAX_ROUND)]
    passed: bool
    feedback: Text
    final: bool = False  # no further round follows (passed, or the last allowed round)
    text: Text | None = None


class ResultContent(Wire):
    kind: Literal["result"] = "result"
    status: Literal["succeeded", "failed"]
    rounds: Annotated[int, Field(ge=0, le=MAX_ROUND)]
    code: Text | None
    output: Text | None
    reason: Text | None
    text: Text | None = None


Content = Annotated[
    TextContent
    | CodeContent
    | ImageContent
    | AttachmentContent
    | TaskContent
    | SpecContent
    | ExecutionResultContent
    | VerdictContent
    | ResultContent,
    Field(discriminator="kind"),
]
KINDS: tuple[str, ...] = (
    "text",
    "code",
    "image",
    "attachment",
    "task",
    "spec",
    "execution-result",
    "verdict",
    "result",
)


class Usage(Wire):
    """Model tokens spent to produce one message, and the model that spent them (the name the
    agent asked for), so its cost can be priced on read (cost.py). None: not recorded (a
    message stored before models were recorded, or an agent that did not say)."""

    prompt_tokens: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    completion_tokens: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    model: ModelName | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Envelope(Wire):
    """One message in one lobby, as published, pushed and stored."""

    v: Literal[1] = SCHEMA_VERSION
    id: Identifier
    conversation_id: Identifier
    lobby: LobbyName
    sender: SenderName
    content: Content
    parent_id: Identifier | None = None
    hops: Annotated[int, Field(ge=0, le=MAX_HOPS)] = 0
    created_at: datetime
    usage: Usage | None = None
    # The span that published it: its delivery is a child span in the conversation's trace.
    traceparent: Traceparent | None = None

    @property
    def kind(self) -> str:
        return self.content.kind

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def attributes(self) -> dict[str, str]:
        """Routing fields repeated as Pub/Sub attributes, so filters and logs need not decode."""
        return {
            "v": str(self.v),
            "message_id": self.id,
            "conversation_id": self.conversation_id,
            "lobby": self.lobby,
            "sender": self.sender,
            "kind": self.kind,
            "hops": str(self.hops),
            **({"traceparent": self.traceparent} if self.traceparent else {}),
        }

    def text(self) -> str | None:
        """The human-readable text of the content, where it has one."""
        return getattr(self.content, "text", None)


ENVELOPE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(Envelope)


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line per problem, naming the field path, so a user can fix the payload."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        problems.append(f"{where}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(problems)


def parse_envelope(raw: bytes | str | dict[str, Any]) -> Envelope:
    """Validate an envelope from bytes, text or a decoded dict; InvalidMessage says why not."""
    size = len(raw) if isinstance(raw, bytes | str) else 0
    if size > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(f"envelope is {size} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    try:
        if isinstance(raw, dict):
            return ENVELOPE_ADAPTER.validate_python(raw)
        return ENVELOPE_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc, "envelope")) from exc


def check_size(envelope: Envelope) -> Envelope:
    """Refuse an envelope that would not fit in one transcript document."""
    size = len(envelope.to_json_bytes())
    if size > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(
            f"message is {size} bytes serialised; the limit is {MAX_ENVELOPE_BYTES} "
            "(one Firestore document per transcript entry): send less or split it"
        )
    return envelope


def is_identifier(value: str | None) -> bool:
    """Whether a value from outside (an attribute, a path) may be used as a document id."""
    return value is not None and MESSAGE_ID.fullmatch(value) is not None


def document_key(value: str) -> str:
    """A Firestore-safe id for any string: itself when it is an identifier, else a digest (no
    `/`, never over the key limit), so a hostile attribute can never break a write."""
    if is_identifier(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def new_id() -> str:
    return uuid.uuid4().hex


_REPLY_NAMESPACE = uuid.UUID("6b1f3c1e-58a6-4c55-9b7f-5f0a2c1d9e10")


def reply_id(agent: str, parent_id: str, index: int) -> str:
    """Deterministic: a redelivered message makes the same reply ids, so duplicates collapse."""
    return uuid.uuid5(_REPLY_NAMESPACE, f"{agent}/{parent_id}/{index}").hex


def now() -> datetime:
    return datetime.now(UTC)


def after(parent: datetime) -> datetime:
    """A reply's time: now, but never before its parent, so time order is causal order."""
    return max(now(), parent + timedelta(microseconds=1))


def order_key(envelope: Envelope) -> str:
    """Sorts a transcript: creation time, then id to break ties."""
    return f"{envelope.created_at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{envelope.id}"


def total_usage(transcript: list[Envelope]) -> Usage:
    """The tokens a transcript spent: derived on read, never kept in a counter."""
    prompt = sum(m.usage.prompt_tokens for m in transcript if m.usage)
    completion = sum(m.usage.completion_tokens for m in transcript if m.usage)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)
