"""Cost of a call from its usage, using the model table with settings' overrides."""

from __future__ import annotations

from collections.abc import Mapping

from shared.models import ALIASES, PRICES, Price, family

PER_MILLION = 1_000_000


def price_for(model_id: str, overrides: Mapping[str, Price] | None = None) -> Price:
    """Price of a model: an override, else the table, else its family's price (new snapshots)."""
    table = {**PRICES, **(overrides or {})}
    if model_id in table:
        return table[model_id]
    alias = family(model_id)
    if alias is not None and ALIASES[alias] in table:
        return table[ALIASES[alias]]
    return table[ALIASES["sonnet"]]


def cost_usd(
    model_id: str,
    usage: Mapping[str, int | None],
    *,
    batch: bool = False,
    overrides: Mapping[str, Price] | None = None,
) -> float:
    """Dollar cost of one call's usage, cache writes and reads included, batch discount applied."""
    price = price_for(model_id, overrides)
    tokens_in = usage.get("input_tokens") or 0
    tokens_out = usage.get("output_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    cache_read = usage.get("cache_read_input_tokens") or 0
    dollars = (
        tokens_in * price.input
        + cache_write * price.input * price.cache_write_multiplier
        + cache_read * price.input * price.cache_read_multiplier
        + tokens_out * price.output
    ) / PER_MILLION
    if batch:
        dollars *= price.batch_multiplier
    return round(dollars, 8)
