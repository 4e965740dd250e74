"""The user API as an OpenAPI 3.1 document, generated from the models that the server speaks.

The body schemas come from the pydantic models of api/schema.py, so every bound a model
enforces (Field constraints: lengths, minimum and maximum of each number) is in the document,
and the identifier rules that models check in validators are shown as patterns. The user
function serves it at `GET /openapi.json` (no token needed); `docs/openapi.json` is a copy that
a test keeps equal to this module's output. To regenerate the copy:

    PYTHONPATH=functions python -m agentlobby.api.openapi > docs/openapi.json
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, get_args

from pydantic import AfterValidator, BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from agentlobby.api.overview import RECENT, ConversationList, LobbyList
from agentlobby.api.schema import ConversationView, ErrorBody, Posted, PostMessage
from agentlobby.api.traces import TraceView
from agentlobby.messages import (
    AGENT_NAME,
    IMAGE_MIME_TYPES,
    LOBBY_NAME,
    MAX_ENVELOPE_BYTES,
    MESSAGE_ID,
    SCHEMA_VERSION,
    Identifier,
    LobbyName,
    SenderName,
)

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _validator(annotated: Any) -> Callable[..., Any]:
    """The function an `Annotated[str, AfterValidator(f)]` type checks its value with."""
    (validator,) = [a for a in get_args(annotated)[1:] if isinstance(a, AfterValidator)]
    return validator.func


# Validators that check a string against a rule: the rule is shown as the string's pattern.
_PATTERNS: dict[Callable[..., Any], str] = {
    _validator(Identifier): MESSAGE_ID.pattern,
    _validator(LobbyName): LOBBY_NAME.pattern,
    _validator(SenderName): AGENT_NAME.pattern,  # `user` is one of these names
}


class _WithPatterns(GenerateJsonSchema):
    """Pydantic's JSON Schema, plus the pattern of each identifier that a validator checks."""

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        json_schema = super().function_after_schema(schema)
        pattern = _PATTERNS.get(schema["function"]["function"])
        if pattern is not None and json_schema.get("type") == "string":
            return {**json_schema, "pattern": pattern}
        return json_schema


_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (PostMessage, "validation"),
    (Posted, "serialization"),
    (ConversationView, "serialization"),
    (ErrorBody, "serialization"),
    (LobbyList, "serialization"),  # the page's lists (api/overview.py)
    (ConversationList, "serialization"),
    (TraceView, "serialization"),  # api/traces.py
]


def _components() -> dict[str, Any]:
    refs, definitions = models_json_schema(
        _MODELS, ref_template=REF_TEMPLATE, schema_generator=_WithPatterns
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    for (model, _mode), ref in refs.items():
        # Each model must be a component of its own name: the paths below refer to them so.
        assert ref == {"$ref": REF_TEMPLATE.format(model=model.__name__)}, (model, ref)
    # A posted image is read with TaskImage's rules (routes._task_image): show those, so that
    # what the document calls valid is what the server takes.
    image = schemas["ImageInput"]["properties"]
    image["mime_type"] = {**image["mime_type"], "enum": list(IMAGE_MIME_TYPES)}
    image["data_base64"] = {
        **image["data_base64"],
        "contentEncoding": "base64",
        "pattern": BASE64,
    }
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _answer(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(model)}}}


def _errors(statuses: dict[int, str]) -> dict[str, Any]:
    return {str(status): _answer(text, ErrorBody) for status, text in statuses.items()}


_UNAUTHORIZED = "missing or wrong bearer token"
_UNAVAILABLE = "Pub/Sub or Firestore unavailable: retry (a post with the same Idempotency-Key)"


def _paths() -> dict[str, Any]:
    lobby = {
        "name": "lobby",
        "in": "path",
        "required": True,
        "description": "a lobby (Pub/Sub topic) that exists, such as `chat` or `coding`",
        "schema": {"type": "string", "pattern": LOBBY_NAME.pattern, "examples": ["chat"]},
    }
    conversation_id = {
        "name": "conversation_id",
        "in": "path",
        "required": True,
        "description": "the id a post answered with (any other id is not found)",
        "schema": {"type": "string", "pattern": MESSAGE_ID.pattern},
    }
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "makes a retry of the same post answer the same ids, with no second message",
        "schema": {"type": "string"},
    }
    return {
        "/lobbies/{lobby}/messages": {
            "post": {
                "operationId": "postMessage",
                "summary": "Post a message (a text, or a coding task) to a lobby",
                "parameters": [lobby, idempotency_key],
                "requestBody": {
                    "required": True,
                    "description": f"at most {MAX_ENVELOPE_BYTES:,} bytes (413 above)",
                    "content": {JSON: {"schema": _ref(PostMessage), "examples": _post_examples()}},
                },
                "responses": {
                    "202": {
                        **_answer("stored in the transcript, then published", Posted),
                        "links": {
                            "conversation": {
                                "operationId": "getConversation",
                                "parameters": {
                                    "conversation_id": "$response.body#/conversation_id"
                                },
                            }
                        },
                    },
                    **_errors(
                        {
                            400: "another validation problem",
                            401: _UNAUTHORIZED,
                            404: "unknown lobby",
                            405: "wrong method on this path",
                            413: f"body over {MAX_ENVELOPE_BYTES:,} bytes",
                            422: "invalid JSON, a non-object body, missing, extra or wrongly "
                            "typed fields, a value out of bounds, a bad lobby name",
                            503: _UNAVAILABLE,
                        }
                    ),
                    "429": {
                        **_answer(
                            "too many posts with this token in the current minute "
                            "(AGENTLOBBY_POST_RATE_LIMIT): retry after Retry-After seconds",
                            ErrorBody,
                        ),
                        "headers": {
                            "Retry-After": {
                                "description": "whole seconds until the next minute's window",
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        },
                    },
                },
            }
        },
        "/conversations/{conversation_id}": {
            "get": {
                "operationId": "getConversation",
                "summary": "A conversation: its status, derived values and whole transcript",
                "parameters": [conversation_id],
                "responses": {
                    "200": _answer("the conversation", ConversationView),
                    **_errors(
                        {
                            401: _UNAUTHORIZED,
                            404: "unknown conversation",
                            405: "wrong method on this path",
                            503: _UNAVAILABLE,
                        }
                    ),
                },
            }
        },
        "/conversations/{conversation_id}/trace": {
            "get": {
                "operationId": "getConversationTrace",
                "summary": "A conversation's OpenTelemetry spans, where the stack keeps them",
                "description": "The trace id of the conversation and, when the stack collects "
                "spans itself (the local stack), every span; deployed, `where` names Cloud "
                "Trace and `spans` is empty. docs/observability.md.",
                "parameters": [conversation_id],
                "responses": {
                    "200": _answer("the conversation's trace", TraceView),
                    **_errors(
                        {
                            401: _UNAUTHORIZED,
                            404: "unknown conversation",
                            405: "wrong method on this path",
                            503: _UNAVAILABLE,
                        }
                    ),
                },
            }
        },
        **_page_paths(),
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; needs no token",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the function is up",
                        "content": {
                            JSON: {
                                "schema": {
                                    "type": "object",
                                    "properties": {"status": {"const": "ok"}},
                                    "required": ["status"],
                                    "additionalProperties": False,
                                }
                            }
                        },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document; needs no token",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the OpenAPI 3.1 document of the user API",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    **_errors({405: "a method other than GET or HEAD"}),
                },
            }
        },
    }


def _page_paths() -> dict[str, Any]:
    """The JSON routes of the page (api/overview.py); its event streams are in docs, not here."""

    def listing(operation: str, summary: str, model: type[BaseModel]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": operation,
                "summary": summary,
                "responses": {
                    "200": _answer("the list", model),
                    **_errors(
                        {401: _UNAUTHORIZED, 405: "wrong method on this path", 503: _UNAVAILABLE}
                    ),
                },
            }
        }

    return {
        "/lobbies": listing("listLobbies", "Every lobby and the agents in it", LobbyList),
        "/conversations": listing(
            "listConversations",
            f"The {RECENT} most recently created conversations, newest first: status, rounds, "
            "tokens and cost of each",
            ConversationList,
        ),
    }


def _post_examples() -> dict[str, Any]:
    return {
        "chat": {"summary": "a text message", "value": {"text": "hello"}},
        "task": {
            "summary": "a coding task with its bounds",
            "value": {
                "text": "write add(a, b)",
                "tests": "from solution import add\nassert add(2, 3) == 5",
                "max_rounds": 3,
                "token_budget": 20000,
                "cost_budget": 0.05,
            },
        },
    }


@functools.cache
def _document() -> str:
    return json.dumps(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "agentlobby user API",
                "version": str(SCHEMA_VERSION),
                "description": "Post messages to lobbies and read conversations. Every answer "
                'is JSON; every 4xx and 5xx is {"error": "..."} saying what to fix. A 5xx is '
                "only ever 503, for a backend (Pub/Sub, Firestore) that is unavailable. See "
                "docs/messages.md.",
            },
            "paths": _paths(),
            "components": {
                "schemas": _components(),
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "the deployment's AGENTLOBBY_API_TOKEN",
                    }
                },
            },
            "security": [{"bearer": []}],
        },
        sort_keys=True,
    )


def document() -> dict[str, Any]:
    """The OpenAPI document, a fresh copy each call (it is built once)."""
    value: dict[str, Any] = json.loads(_document())
    return value


def render() -> str:
    """The document as docs/openapi.json holds it: indented, keys sorted, a final newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
