"""The model table: aliases, current ids, output limits and prices, in one place.

Every cost figure in Sidecar is computed from `price_for`, so correcting a price (or adding a
model) is a one-line change here or an override in settings (`MODEL_PRICES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write_multiplier: float = 1.25
    cache_read_multiplier: float = 0.10
    batch_multiplier: float = 0.50


ALIASES: dict[str, str] = {
    "opus": "claude-opus-5-5",
    "sonnet": "claude-sonnet-5-5",
    "haiku": "claude-haiku-5-5",
}

PRICES: dict[str, Price] = {
    "claude-opus-5-5": Price(input=5.00, output=25.00),
    "claude-sonnet-5-5": Price(input=3.00, output=15.00),
    "claude-haiku-5-5": Price(input=1.00, output=5.00),
}

MAX_OUTPUT_TOKENS: dict[str, int] = {
    "claude-opus-5-5": 64_000,
    "claude-sonnet-5-5": 64_000,
    "claude-haiku-5-5": 64_000,
}
DEFAULT_MAX_OUTPUT_TOKENS = 64_000

# The retired ids the seed documented; naming one is an error that says what to use instead.
RETIRED: dict[str, str] = {
    "claude-3-opus-20250219": "opus",
    "claude-3-opus-20240229": "opus",
    "claude-3-5-sonnet-20241022": "sonnet",
    "claude-3-5-haiku-20241022": "haiku",
}


def family(model_id: str) -> str | None:
    """The alias whose family a full id belongs to (`claude-sonnet-…` → `sonnet`)."""
    return next((alias for alias in ALIASES if alias in model_id), None)


def known_ids(extras: Iterable[str] = ()) -> list[str]:
    """Every model id Sidecar accepts: the price table's and the configured extras."""
    return sorted({*PRICES, *extras})


def resolve(name: str, extras: Iterable[str] = (), strict: bool = True) -> str:
    """Turn an alias or a known full id into the id sent to Claude; raise ValueError otherwise.
    The service accepts only ids with a price (`extras` are those `MODEL_PRICES` adds), so
    nothing is ever counted, limited or billed for a model it cannot price; the direct client
    (`strict=False`) takes any well-formed `claude-…` id, as the seed did."""
    value = name.strip()
    if value.lower() in ALIASES:
        return ALIASES[value.lower()]
    if value in RETIRED:
        raise ValueError(f"{value[:100]!r} is retired; use {RETIRED[value]!r} or a current id")
    well_formed = value.startswith("claude-") and len(value) <= 100 and \
        not any(c.isspace() for c in value)
    if not strict and well_formed:
        return value
    allowed = known_ids(extras)
    if value not in allowed:
        choices = ", ".join([*ALIASES, *allowed])
        raise ValueError(f"unknown model {value[:100]!r}: use one of {choices}")
    return value


def max_output_tokens(model_id: str) -> int:
    """The largest max_tokens Claude accepts for this model."""
    return MAX_OUTPUT_TOKENS.get(model_id, DEFAULT_MAX_OUTPUT_TOKENS)
