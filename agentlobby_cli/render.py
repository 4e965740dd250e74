"""How the terminal shows a message: a line (or a few) per message, as `chat` and `watch` print."""

from __future__ import annotations

from agentlobby.api.schema import MessageView
from agentlobby.messages import (
    AttachmentContent,
    CodeContent,
    ExecutionResultContent,
    ImageContent,
    ResultContent,
    VerdictContent,
)

PREVIEW_CHARS = 2_000


def message_line(view: MessageView) -> str:
    """One terminal line (or a few) for a message, by its kind."""
    content = view.content
    if isinstance(content, CodeContent):
        body = f"round {content.round}:\n{content.source.rstrip()}"
    elif isinstance(content, ExecutionResultContent):
        stopped = f" ({content.reason})" if content.reason else ""
        output = content.stdout + content.stderr
        body = f"round {content.round}: exit {content.exit_code}{stopped}\n{output}".rstrip()
    elif isinstance(content, VerdictContent):
        verdict = "pass" if content.passed else "fail"
        body = f"round {content.round}: {verdict}: {content.feedback}"
    elif isinstance(content, ResultContent):
        body = f"{content.status} after {content.rounds} round(s)"
        if content.reason:
            body += f": {content.reason}"
        if content.output:
            body += f"\noutput:\n{content.output.rstrip()}"
    elif isinstance(content, AttachmentContent):
        body = f"<{content.mime_type} {content.name}>"
    elif isinstance(content, ImageContent):
        body = f"<{content.mime_type}>"
    else:
        body = view.text or ""
    if len(body) > PREVIEW_CHARS:
        body = body[:PREVIEW_CHARS] + " ..."
    return f"[{view.sender}] {view.kind}: {body}"
