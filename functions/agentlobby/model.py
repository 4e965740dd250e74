"""Model access for agents, through the official `openai` package only.

Per agent: base URL, key and model come from config.Settings.model_for(agent); every request
carries `X-Agentlobby-Agent: <agent>`; the openai client retries 429, 5xx and timeouts with
exponential backoff (max_retries); a Firestore slot limit bounds concurrent calls across all
instances. `complete_parsed` regenerates unusable answers with a corrective prompt, a bounded
number of times, so malformed output is never passed on. Errors leave as ours: ModelUnavailable
(transient: Pub/Sub redelivers) or ModelRejected / ModelOutputError (permanent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from agentlobby.config import ModelSettings, Settings
from agentlobby.cost import PriceTable, spent_usd
from agentlobby.errors import ModelOutputError, ModelRejected, ModelUnavailable
from agentlobby.messages import Usage
from agentlobby.rate_limits import ModelLimiter, limiter_for
from agentlobby.store.slots import Slots
from agentlobby.tracing import model_call_span, record_model_answer

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

AGENT_HEADER = "X-Agentlobby-Agent"
CORRECTIVE_ATTEMPTS = 2
SLOT_WAIT_S = 120.0
SLOT_LEASE_S = 20.0  # renewed while the call runs: a dead holder frees its slot within it
ChatMessage = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage


@dataclass(frozen=True)
class Parsed(Generic[T]):
    value: T
    usage: Usage


class ModelClient:
    """One agent's model: an openai client plus the cross-instance concurrency limit."""

    def __init__(
        self,
        agent: str,
        model: ModelSettings,
        project: str,
        before_call: Callable[[], None] | None = None,
        limiter: ModelLimiter | None = None,
        conversation_id: str | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.agent = agent
        self.conversation_id = conversation_id
        self._prices = prices  # for the model call's span: what it cost
        self.settings = model
        self._project = project
        self._client: openai.OpenAI | None = None
        # Runs before each request; raising stops the call (a conversation's call limit).
        self._before_call = before_call
        self._limiter = limiter  # the model's shared rate limit (rate_limits.py), if any
        self.spent: list[Usage] = []  # every call's usage so far, stored or not

    @classmethod
    def for_agent(
        cls,
        agent: str,
        settings: Settings,
        before_call: Callable[[], None] | None = None,
        conversation_id: str | None = None,
    ) -> ModelClient:
        model = settings.model_for(agent)
        limiter = limiter_for(agent, model.model, settings)
        return cls(
            agent, model, settings.project, before_call, limiter, conversation_id, settings.prices
        )

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            import openai

            if not self.settings.api_key and not self.settings.base_url:
                raise ModelRejected(
                    f"{self.agent} has no model configured: set OPENAI_API_KEY (or "
                    f"AGENTLOBBY_{self.agent.upper()}_API_KEY), or run offline with "
                    "AGENTLOBBY_MODEL_SCRIPT"
                )
            self._client = openai.OpenAI(
                api_key=self.settings.api_key or "unused",
                base_url=self.settings.base_url,
                timeout=self.settings.timeout_s,
                max_retries=self.settings.max_retries,
                default_headers={AGENT_HEADER: self.agent},
            )
        return self._client

    def complete(self, messages: list[ChatMessage]) -> Completion:
        """One chat completion, holding one of the agent's slots while it runs."""
        client = self._openai()
        if self._before_call is not None:
            self._before_call()
        slots = Slots(
            self._project,
            self.agent,
            self.settings.concurrency,
            lease_s=SLOT_LEASE_S,
        )
        with slots.hold(SLOT_WAIT_S):
            if self._limiter is not None:
                self._limiter.wait_turn()
            with model_call_span(self.settings.model, self.agent, self.conversation_id) as span:
                response = self._create(client, messages)
                usage = Usage(
                    prompt_tokens=response.usage.prompt_tokens if response.usage else 0,
                    completion_tokens=response.usage.completion_tokens if response.usage else 0,
                    model=self.settings.model,
                )
                cost = spent_usd([usage], self._prices) if self._prices else None
                record_model_answer(span, response.model, usage, cost)
        text = (response.choices[0].message.content or "") if response.choices else ""
        self.spent.append(usage)
        if self._limiter is not None:
            self._limiter.spend(usage.total_tokens)
        return Completion(text=text, usage=usage)

    def _create(self, client: openai.OpenAI, messages: list[ChatMessage]) -> Any:
        """The request itself, its failures as ours: transient or permanent."""
        import openai

        try:
            return client.chat.completions.create(
                model=self.settings.model,
                messages=messages,  # type: ignore[arg-type]  # plain dicts, as the API takes
            )
        except (openai.RateLimitError, openai.InternalServerError) as exc:
            raise ModelUnavailable(f"{self.agent}'s model kept failing: {exc}") from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ModelUnavailable(f"{self.agent}'s model did not answer: {exc}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409):  # timeout, conflict: worth another try
                raise ModelUnavailable(
                    f"{self.agent}'s model answered {exc.status_code}: {exc.message}"
                ) from exc
            raise ModelRejected(
                f"{self.agent}'s model refused the request ({exc.status_code}): {exc.message}"
            ) from exc
        except openai.APIError as exc:  # an answer the client could not read
            raise ModelUnavailable(f"{self.agent}'s model answered badly: {exc}") from exc

    def complete_parsed(
        self,
        messages: list[ChatMessage],
        parse: Callable[[str], T],
        corrective: str,
        attempts: int = CORRECTIVE_ATTEMPTS,
    ) -> Parsed[T]:
        """Ask, parse, and on a ValueError ask again with `corrective`; usage sums every try."""
        conversation = list(messages)
        prompt = completion_tokens = 0
        problem = ""
        for attempt in range(attempts + 1):
            answer = self.complete(conversation)
            prompt += answer.usage.prompt_tokens
            completion_tokens += answer.usage.completion_tokens
            try:
                value = parse(answer.text)
                return Parsed(value, self._usage(prompt, completion_tokens))
            except ValueError as exc:
                problem = str(exc)
                log.warning("%s answer %d unusable: %s", self.agent, attempt + 1, problem)
                conversation += [
                    {"role": "assistant", "content": answer.text},
                    {"role": "user", "content": f"{corrective} (Problem: {problem}.)"},
                ]
        error = ModelOutputError(
            f"{self.agent}'s model gave no usable answer in {attempts + 1} tries: {problem}"
        )
        error.usage = self._usage(prompt, completion_tokens)
        raise error

    def _usage(self, prompt: int, completion: int) -> Usage:
        return Usage(prompt_tokens=prompt, completion_tokens=completion, model=self.settings.model)
