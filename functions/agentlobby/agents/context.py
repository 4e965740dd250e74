"""What a handler may use besides its message: the conversation, the model, the sandbox.

Agents never import the store, Google's SDKs or the sandbox: they reach them here, one context
per delivery, with heavy clients built only on first use (echo never imports openai).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from agentlobby.config import Settings
from agentlobby.errors import CostBudgetSpent, ModelCallLimitExceeded, UnknownAgent
from agentlobby.messages import USER_SENDER, Envelope, TaskContent

if TYPE_CHECKING:
    from agentlobby.lifecycle import Lifecycle
    from agentlobby.model import ModelClient
    from agentlobby.sandbox.runner import ExecutionResult
    from agentlobby.store.conversations import Conversations


class AgentContext:
    """One delivery's view of the world, for the agent named `agent` in `lobby`."""

    def __init__(
        self, agent: str, lobby: str, settings: Settings, conversation_id: str | None = None
    ) -> None:
        self.agent = agent
        self.lobby = lobby
        self.settings = settings
        self.conversation_id = conversation_id

    @functools.cached_property
    def _conversations(self) -> Conversations:
        from agentlobby.store.conversations import Conversations

        return Conversations(self.settings.project)

    @functools.cached_property
    def lifecycle(self) -> Lifecycle:
        """Status moves of conversations: is one over, start work on one (lifecycle.py)."""
        from agentlobby.lifecycle import Lifecycle

        return Lifecycle(self._conversations)

    def transcript(self, conversation_id: str) -> list[Envelope]:
        """Every stored message of the conversation, in causal order."""
        return self._conversations.transcript(conversation_id)

    def agent_setting(self, agent: str, key: str) -> object:
        """One of an agent's registry settings (`agentlobby agents set`), None when unset."""
        from agentlobby.store.registry import Registry

        try:
            return Registry(self.settings.project).agent(agent).settings.get(key)
        except UnknownAgent:
            return None

    @functools.cached_property
    def model(self) -> ModelClient:
        from agentlobby.model import ModelClient

        return ModelClient.for_agent(
            self.agent, self.settings, self._count_model_call, self.conversation_id
        )

    def _count_model_call(self) -> None:
        """Every model call counts against the conversation's limit (AGENTLOBBY_MAX_MODEL_CALLS):
        past it, the conversation is stopped as a runaway instead of the call being made."""
        if self.conversation_id is None:
            return
        calls = self._conversations.count_model_call(self.conversation_id)
        limit = self.settings.max_model_calls
        if calls > limit:
            raise ModelCallLimitExceeded(
                f"conversation stopped at its limit of {limit} model calls "
                f"(AGENTLOBBY_MAX_MODEL_CALLS): {self.agent} asked for call {calls}"
            )
        self._check_cost_budget(self.conversation_id)

    def _check_cost_budget(self, conversation_id: str) -> None:
        """No model call once the conversation's cost budget is spent (the task's
        `cost_budget`, else AGENTLOBBY_COST_BUDGET): what is stored plus what this delivery's
        calls spent so far (corrective retries), priced with the settings' price table."""
        from agentlobby.cost import cost_of, spent_usd, usd

        transcript = self.transcript(conversation_id)
        task = next(
            (
                m.content
                for m in transcript
                if m.sender == USER_SENDER and isinstance(m.content, TaskContent)
            ),
            None,
        )
        budget = (task.cost_budget if task else None) or self.settings.cost_budget
        if budget is None:
            return
        prices = self.settings.prices
        model = self.model.settings.model
        if prices.price_of(model) is None:  # it would cost $0 by the table: no budget at all
            raise CostBudgetSpent(
                f"cost budget cannot be kept: model {model!r} has no price; add it to the "
                "price table (AGENTLOBBY_PRICES or AGENTLOBBY_PRICES_FILE, docs/observability.md)"
            )
        spent = cost_of(transcript, prices).total_usd + spent_usd(self.model.spent, prices)
        if spent >= budget:
            raise CostBudgetSpent(
                f"cost budget spent: {usd(spent)} used of {usd(budget)}; "
                f"{self.agent}'s next model call was not made"
            )

    def run_code(self, source: str) -> ExecutionResult:
        """Run a program in the sandbox (the sandbox function in the cloud) with the limits of
        this function's settings."""
        from agentlobby.sandbox.client import run_code

        return run_code(source, self.settings)
