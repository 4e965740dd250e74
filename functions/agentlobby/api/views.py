"""How conversations look to users: stored records turned into the API's answer models.

Derived values (rounds, final code, token use, cost) are computed from the transcript on
read, never stored twice; cost uses the price table of the function that reads (cost.py).
"""

from __future__ import annotations

from agentlobby.api.schema import ConversationView, MessageView, UsageView
from agentlobby.cost import PriceTable, cost_of
from agentlobby.messages import CodeContent, Envelope, total_usage
from agentlobby.store.conversations import ConversationRecord, DeadLetter


def message_view(message: Envelope) -> MessageView:
    return MessageView(
        id=message.id,
        sender=message.sender,
        kind=message.kind,
        lobby=message.lobby,
        parent_id=message.parent_id,
        hops=message.hops,
        created_at=message.created_at.isoformat(),
        content=message.content,
        usage=message.usage,
        text=message.text(),
    )


def conversation_view(
    record: ConversationRecord,
    transcript: list[Envelope],
    letters: list[DeadLetter],
    prices: PriceTable,
) -> ConversationView:
    codes = [m.content for m in transcript if isinstance(m.content, CodeContent)]
    usage = total_usage(transcript)
    return ConversationView(
        conversation_id=record.id,
        lobby=record.lobby,
        status=record.status,
        reason=record.reason,
        rounds=len(codes),
        final_code=codes[-1].source if codes else None,
        usage=UsageView(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
        cost=cost_of(transcript, prices),
        messages=[message_view(m) for m in transcript],
        dead_letters=letters,
    )
