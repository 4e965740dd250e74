"""Cost in money: the price table, its overrides and their errors, and the cost of a transcript."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentlobby.api.schema import ConversationView, PostMessage
from agentlobby.config import DEFAULT_MODEL, load_settings
from agentlobby.cost import DEFAULT_PRICES_FILE, NOT_RECORDED, PriceTable, cost_of, load_prices, usd
from agentlobby.errors import ConfigError, InvalidMessage
from agentlobby.messages import Envelope, TaskContent, TextContent, Usage, now

PRICE = {"input_per_million": 1.0, "output_per_million": 3.0}


def message(sender: str, usage: Usage | None, index: int = 0) -> Envelope:
    return Envelope(
        id=f"m{sender}{index}",
        conversation_id="c1",
        lobby="coding",
        sender=sender,
        content=TextContent(text="x"),
        created_at=now(),
        usage=usage,
    )


def table(**prices: dict[str, float]) -> PriceTable:
    return load_prices({"AGENTLOBBY_PRICES": json.dumps({"v": 1, "prices": prices})})


def test_cost_is_priced_per_message_model_and_summed_by_agent() -> None:
    prices = table(a=PRICE, b={"input_per_million": 10.0, "output_per_million": 0.0})
    transcript = [
        message("user", None),
        message("coder", Usage(prompt_tokens=1_000_000, completion_tokens=0, model="a"), 1),
        message("coder", Usage(prompt_tokens=0, completion_tokens=500_000, model="a"), 2),
        message("checker", Usage(prompt_tokens=100_000, completion_tokens=7, model="b"), 3),
    ]
    cost = cost_of(transcript, prices)
    assert cost.by_agent == {"coder": 1.0 + 1.5, "checker": 1.0}
    assert cost.total_usd == 3.5
    assert cost.unpriced_models == []


def test_the_default_table_prices_the_offline_stacks_model() -> None:
    """The local stack asks for the default model, so a demo shows a cost that is not zero."""
    prices = load_settings({}).prices
    used = Usage(prompt_tokens=2_000, completion_tokens=1_000, model=DEFAULT_MODEL)
    cost = cost_of([message("coder", used)], prices)
    price = prices.price_of(DEFAULT_MODEL)
    assert price is not None and price.input_per_million > 0 and price.output_per_million > 0
    expected = (2_000 * price.input_per_million + 1_000 * price.output_per_million) / 1e6
    assert cost.total_usd == pytest.approx(expected) and cost.total_usd > 0


def test_an_unknown_or_unrecorded_model_costs_nothing_and_is_named() -> None:
    prices = table(a=PRICE)
    cost = cost_of(
        [
            message("coder", Usage(prompt_tokens=10, completion_tokens=1, model="mystery")),
            message("checker", Usage(prompt_tokens=10, completion_tokens=1), 1),
        ],
        prices,
    )
    assert (cost.total_usd, cost.by_agent) == (0.0, {})
    assert cost.unpriced_models == [NOT_RECORDED, "mystery"]


def test_the_star_entry_prices_every_model_not_named() -> None:
    prices = table(a=PRICE, **{"*": {"input_per_million": 2.0, "output_per_million": 2.0}})
    cost = cost_of(
        [message("coder", Usage(prompt_tokens=500_000, completion_tokens=0, model="other"))],
        prices,
    )
    assert cost.by_agent == {"coder": 1.0} and cost.unpriced_models == []


def test_tokens_without_usage_or_zero_tokens_are_not_listed() -> None:
    cost = cost_of([message("echo", Usage(model="mystery")), message("user", None, 1)], table())
    assert cost.model_dump() == {"total_usd": 0.0, "by_agent": {}, "unpriced_models": []}


def test_float_noise_is_rounded_away_but_a_tiny_cost_stays() -> None:
    prices = table(a={"input_per_million": 0.1, "output_per_million": 0.2})
    transcript = [
        message("coder", Usage(prompt_tokens=1, completion_tokens=0, model="a"), i)
        for i in range(3)
    ]
    cost = cost_of(transcript, prices)
    assert cost.total_usd == 3e-7  # 0.1e-6 * 3 is 3.0000000000000004e-07 unrounded
    assert cost_of(transcript[:1], prices).total_usd > 0


def test_later_sources_win_per_model(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"gpt-4o-mini": PRICE, "mine": PRICE}}))
    inline = {"prices": {"mine": {"input_per_million": 9, "output_per_million": 9}}}
    prices = load_prices(
        {"AGENTLOBBY_PRICES_FILE": str(path), "AGENTLOBBY_PRICES": json.dumps(inline)}
    )
    assert prices.price_of("gpt-4o-mini") == prices.prices["gpt-4o-mini"]
    assert prices.prices["gpt-4o-mini"].input_per_million == 1.0  # the file beat the default
    assert prices.prices["mine"].input_per_million == 9.0  # the variable beat the file
    assert "gpt-4o" in prices.prices  # the default file's other models stay
    assert prices.sources == ("prices.json", str(path), "AGENTLOBBY_PRICES")


def test_the_default_file_is_valid_and_ships_in_the_package() -> None:
    assert DEFAULT_PRICES_FILE.parent.name == "agentlobby"
    data = json.loads(DEFAULT_PRICES_FILE.read_text())
    assert DEFAULT_MODEL in data["prices"]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'agentlobby = ["prices.json"]' in pyproject


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not json", "AGENTLOBBY_PRICES"),
        ('{"prices": {"a": {"input_per_million": -1, "output_per_million": 0}}}', "prices.a"),
        ('{"prices": {"a": {"input_per_million": 1}}}', "output_per_million"),
        ('{"prices": {"a": {"input_per_million": 1, "output_per_million": 1, "x": 1}}}', "x"),
        ('{"prices": {"a": {"input_per_million": "NaN", "output_per_million": 1}}}', "finite"),
        ('{"prices": {"a": {"input_per_million": 1e300, "output_per_million": 1}}}', "1000000"),
        ('{"prices": {"": {"input_per_million": 1, "output_per_million": 1}}}', "prices"),
        ('{"v": 2, "prices": {}}', "v"),
        ("[]", "AGENTLOBBY_PRICES"),
    ],
)
def test_a_bad_inline_table_names_the_variable_the_field_and_the_shape(
    value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"AGENTLOBBY_PRICES": value})
    message = str(caught.value)
    assert "AGENTLOBBY_PRICES" in message and says in message
    assert '"input_per_million"' in message  # the shape to write instead


def test_a_missing_or_bad_prices_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=r"AGENTLOBBY_PRICES_FILE=.*nope\.json.*cannot be read"):
        load_settings({"AGENTLOBBY_PRICES_FILE": str(missing)})
    bad = tmp_path / "bad.json"
    bad.write_text('{"prices": {"a": 3}}')
    with pytest.raises(ConfigError, match=r"AGENTLOBBY_PRICES_FILE=.*bad\.json.*prices\.a"):
        load_settings({"AGENTLOBBY_PRICES_FILE": str(bad)})


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "nan", "inf"])
def test_a_bad_default_cost_budget_is_refused_at_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="AGENTLOBBY_COST_BUDGET"):
        load_settings({"AGENTLOBBY_COST_BUDGET": raw})


def test_the_default_cost_budget_is_none_or_what_is_set() -> None:
    assert load_settings({}).cost_budget is None
    assert load_settings({"AGENTLOBBY_COST_BUDGET": "0.25"}).cost_budget == 0.25


@pytest.mark.parametrize("budget", [0, -0.01, float("nan"), float("inf"), 1e7, "lots", True])
def test_a_posted_cost_budget_is_positive_finite_and_bounded(budget: Any) -> None:
    with pytest.raises(ValueError, match="cost_budget"):
        PostMessage.model_validate({"text": "t", "cost_budget": budget})
    with pytest.raises(ValueError, match="cost_budget"):
        TaskContent.model_validate({"text": "t", "cost_budget": budget})


def test_a_posted_cost_budget_reaches_the_task() -> None:
    from agentlobby.api.posting import post_content

    post = PostMessage.model_validate({"text": "t", "cost_budget": 0.5})
    content = post_content(post, None, lobby_takes_tasks=False)  # the field alone makes a task
    assert isinstance(content, TaskContent) and content.cost_budget == 0.5
    with pytest.raises(InvalidMessage):
        from agentlobby.api.posting import parse_post

        parse_post(b'{"text": "t", "cost_budget": 0}')


def test_a_view_without_cost_reads_as_zero_and_the_cost_round_trips() -> None:
    base: dict[str, Any] = {
        "conversation_id": "c1",
        "lobby": "coding",
        "status": "open",
        "reason": None,
        "rounds": 0,
        "final_code": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "messages": [],
        "dead_letters": [],
    }
    assert ConversationView.model_validate(base).cost.total_usd == 0.0
    cost = {"total_usd": 0.0123, "by_agent": {"coder": 0.0123}, "unpriced_models": []}
    view = ConversationView.model_validate({**base, "cost": cost})
    assert view.model_dump(mode="json")["cost"] == cost


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0, "$0"), (0.0123, "$0.0123"), (0.5, "$0.5"), (3e-7, "$0.0000003"), (1234.5, "$1,234.50")],
)
def test_amounts_for_people_keep_a_small_cost_visible(amount: float, shown: str) -> None:
    assert usd(amount) == shown
