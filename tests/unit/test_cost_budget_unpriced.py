"""A cost budget on a model the price table does not know cannot be kept: the call is refused
with a reason naming the model and the fix, instead of the budget silently counting $0."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agentlobby.agents.context import AgentContext
from agentlobby.config import DEFAULT_MODEL, load_settings
from agentlobby.errors import CostBudgetSpent
from agentlobby.messages import USER_SENDER, Envelope, TaskContent, new_id, now


def _context(model: str, budget: float | None) -> AgentContext:
    settings = load_settings({"AGENTLOBBY_MODEL": model, "AGENTLOBBY_PROJECT": "no-io-here"})
    ctx = AgentContext("coder", "coding", settings, conversation_id=new_id())
    task = Envelope(
        id=new_id(),
        conversation_id=ctx.conversation_id or "",
        lobby="coding",
        sender=USER_SENDER,
        content=TaskContent(text="add", cost_budget=budget),
        created_at=now(),
    )
    ctx.transcript = lambda _conversation_id: [task]  # type: ignore[method-assign]
    ctx.__dict__["model"] = SimpleNamespace(settings=settings.model_for("coder"), spent=[])
    return ctx


def test_a_budget_on_an_unpriced_model_refuses_the_call_naming_the_fix() -> None:
    ctx = _context("model-with-no-price", 0.05)
    with pytest.raises(
        CostBudgetSpent, match=r"'model-with-no-price' has no price.*AGENTLOBBY_PRICES"
    ):
        ctx._check_cost_budget(ctx.conversation_id or "")


def test_an_unpriced_model_without_a_budget_and_a_priced_one_with_a_budget_go_on() -> None:
    ctx = _context("model-with-no-price", None)
    ctx._check_cost_budget(ctx.conversation_id or "")
    ctx = _context(DEFAULT_MODEL, 0.05)
    ctx._check_cost_budget(ctx.conversation_id or "")
