"""How conversations look to users: the JSON the HTTP API answers and the lines the CLI prints.

Derived values (rounds, final code, token use) are computed from the transcript on read,
never stored twice.
"""

from __future__ import annotations

from typing import Any

from agentlobby.conversations import ConversationRecord, DeadLetter, total_usage
from agentlobby.messages import Envelope

PREVIEW_CHARS = 2_000


def message_view(message: Envelope) -> dict[str, Any]:
    content = message.content.model_dump(mode="json")
    view: dict[str, Any] = {
        "id": message.id,
        "sender": message.sender,
        "kind": message.kind,
        "lobby": message.lobby,
        "parent_id": message.parent_id,
        "hops": message.hops,
        "created_at": message.created_at.isoformat(),
        "content": content,
        "usage": message.usage.model_dump() if message.usage else None,
    }
    text = message.text()
    if text is not None:
        view["text"] = text
    return view


def conversation_view(
    record: ConversationRecord, transcript: list[Envelope], letters: list[DeadLetter]
) -> dict[str, Any]:
    codes = [m for m in transcript if m.kind == "code"]
    usage = total_usage(transcript)
    return {
        "conversation_id": record.id,
        "lobby": record.lobby,
        "status": record.status,
        "reason": record.reason,
        "rounds": len(codes),
        "final_code": getattr(codes[-1].content, "source", None) if codes else None,
        "usage": usage.model_dump() | {"total_tokens": usage.total_tokens},
        "messages": [message_view(m) for m in transcript],
        "dead_letters": [letter.model_dump(mode="json") for letter in letters],
    }


def message_line(view: dict[str, Any]) -> str:
    """One terminal line (or a few) for a message view, as `chat` and `watch` print it."""
    content = view.get("content", {})
    kind = view.get("kind", "?")
    if kind == "code":
        body = f"round {content.get('round')}:\n{content.get('source', '').rstrip()}"
    elif kind == "execution-result":
        body = (
            f"round {content.get('round')}: exit {content.get('exit_code')}"
            f"{' (' + content['reason'] + ')' if content.get('reason') else ''}"
            f"\n{(content.get('stdout') or '') + (content.get('stderr') or '')}".rstrip()
        )
    elif kind == "verdict":
        verdict = "pass" if content.get("passed") else "fail"
        body = f"round {content.get('round')}: {verdict}: {content.get('feedback', '')}"
    elif kind == "result":
        body = f"{content.get('status')} after {content.get('rounds')} round(s)"
        if content.get("reason"):
            body += f": {content['reason']}"
        if content.get("output"):
            body += f"\noutput:\n{content['output'].rstrip()}"
    elif kind in ("image", "attachment"):
        body = f"<{content.get('mime_type')} {content.get('name') or ''}>".replace(" >", ">")
    else:
        body = view.get("text") or ""
    if len(body) > PREVIEW_CHARS:
        body = body[:PREVIEW_CHARS] + " ..."
    return f"[{view.get('sender')}] {kind}: {body}"
