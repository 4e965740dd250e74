"""Cost in money: a price table per model, and what a transcript's model use cost.

Prices are US dollars per million tokens, input (prompt) and output (completion), per model
name as the agents ask for it (`AGENTLOBBY_MODEL`). The table is read once per cold start:
the default file shipped beside this module (prices.json), then `AGENTLOBBY_PRICES_FILE`, then
`AGENTLOBBY_PRICES` (inline JSON); a later source wins per model. The entry `"*"` prices every
model the table does not name. A model with no price (and no `"*"`) costs nothing and is
listed in `CostView.unpriced_models`, so a missing price is visible instead of a silent zero.

Cost is derived from the transcript on read, like token use (messages.total_usage): the same
function gives the API's view, the CLI and the trace one figure. No I/O but load_prices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from agentlobby.errors import ConfigError
from agentlobby.messages import (
    MAX_MODEL_NAME_CHARS,
    Envelope,
    Usage,
    Wire,
    describe_validation_error,
)

DEFAULT_PRICES_FILE = Path(__file__).with_name("prices.json")
ANY_MODEL = "*"
NOT_RECORDED = "(model not recorded)"
MAX_PRICE = 1_000_000.0  # USD per million tokens: past this, surely a typo
MAX_PRICES_BYTES = 1_000_000
DIGITS = 10  # amounts are rounded to 1e-10 USD: float noise never shows, real cost always does

PerMillion = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]
ModelKey = Annotated[str, Field(min_length=1, max_length=MAX_MODEL_NAME_CHARS)]


class Price(Wire):
    """US dollars per million tokens of one model."""

    input_per_million: PerMillion
    output_per_million: PerMillion

    def of(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_million
            + usage.completion_tokens * self.output_per_million
        ) / 1_000_000


class PriceFile(Wire):
    """The shape of prices.json, AGENTLOBBY_PRICES_FILE and AGENTLOBBY_PRICES."""

    v: Literal[1] = 1
    prices: dict[ModelKey, Price]


class CostView(Wire):
    """What a conversation's model use cost, in US dollars: in total and by agent (agents that
    spent nothing are left out). `unpriced_models` names models used without a price."""

    total_usd: float
    by_agent: dict[str, float]
    unpriced_models: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class PriceTable:
    """Model name -> price; `sources` says where the table came from, for messages."""

    prices: Mapping[str, Price]
    sources: tuple[str, ...] = ()

    def price_of(self, model: str | None) -> Price | None:
        """The model's price, else the `"*"` entry's, else None (unpriced)."""
        if model is not None and model in self.prices:
            return self.prices[model]
        return self.prices.get(ANY_MODEL)


def cost_of(transcript: list[Envelope], prices: PriceTable) -> CostView:
    """What the transcript's model use cost, priced with `prices`."""
    by_agent: dict[str, float] = {}
    unpriced: set[str] = set()
    for message in transcript:
        usage = message.usage
        if usage is None or usage.total_tokens == 0:
            continue
        price = prices.price_of(usage.model)
        if price is None:
            unpriced.add(usage.model or NOT_RECORDED)
            continue
        by_agent[message.sender] = by_agent.get(message.sender, 0.0) + price.of(usage)
    return CostView(
        total_usd=round(math.fsum(by_agent.values()), DIGITS),
        by_agent={agent: round(amount, DIGITS) for agent, amount in sorted(by_agent.items())},
        unpriced_models=sorted(unpriced),
    )


def spent_usd(usages: list[Usage], prices: PriceTable) -> float:
    """What some usages not yet in a transcript cost (unpriced ones count nothing)."""
    total = 0.0
    for usage in usages:
        price = prices.price_of(usage.model)
        total += price.of(usage) if price is not None else 0.0
    return total


def parse_prices(raw: str | bytes, where: str) -> dict[str, Price]:
    """Prices from JSON text; ConfigError names `where` (a variable or a file) and the fix."""
    if len(raw) > MAX_PRICES_BYTES:
        raise ConfigError(f"{where} is {len(raw)} bytes; a price table holds at most 1 MB")
    try:
        return dict(PriceFile.model_validate_json(raw).prices)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, f"price table in {where}")
            + '; write {"v": 1, "prices": {"MODEL": {"input_per_million": 0.15, '
            '"output_per_million": 0.6}}} (docs/configuration.md, "Cost")'
        ) from None


def load_prices(env: Mapping[str, str]) -> PriceTable:
    """The default file, then AGENTLOBBY_PRICES_FILE, then AGENTLOBBY_PRICES: later wins."""
    prices = parse_prices(DEFAULT_PRICES_FILE.read_bytes(), str(DEFAULT_PRICES_FILE))
    sources = [DEFAULT_PRICES_FILE.name]
    path = env.get("AGENTLOBBY_PRICES_FILE")
    if path:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"AGENTLOBBY_PRICES_FILE={path!r} cannot be read ({exc.strerror}): "
                "point it at a JSON price table or unset it"
            ) from None
        prices.update(parse_prices(text, f"AGENTLOBBY_PRICES_FILE={path!r}"))
        sources.append(path)
    inline = env.get("AGENTLOBBY_PRICES")
    if inline:
        prices.update(parse_prices(inline, "AGENTLOBBY_PRICES"))
        sources.append("AGENTLOBBY_PRICES")
    return PriceTable(prices, tuple(sources))


def usd(amount: float) -> str:
    """An amount for people: `$0.0123`, with enough digits that a small cost is not `$0.00`."""
    if amount == 0:
        return "$0"
    if amount >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.{max(2, 3 - math.floor(math.log10(amount)))}f}".rstrip("0")
