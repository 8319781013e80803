"""Spending budgets: what a tenant (and a browser token's subject) may spend per day and month.

A job reserves its worst-case cost (its input estimate and its whole `max_tokens` at the model's
price) in the same script that queues it, so two requests can never both squeeze into the last
dollar; the script that finishes the job settles the reservation to the real cost. Windows are
UTC days and months: a refusal's Retry-After is the time until the window that refused rolls.
Every job's spend is counted, budget or not, so `/api/usage` always has the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from shared import keys, pricing
from shared.lua import source
from shared.record import Record
from shared.settings import Budget, Settings

WINDOWS = ("day", "month")
SPEND_TTL_SECONDS = 35 * 86_400  # a month's key outlives its month; a day's is cheap to keep

RESERVE = source("reserve", "budget")


@dataclass(frozen=True)
class Window:
    """One budget window of one payer: its key, its limit (None: unlimited), when it rolls."""

    name: str
    key: str
    limit: float | None
    rolls_at: datetime

    def retry_after(self, now: datetime) -> float:
        return max(1.0, (self.rolls_at - now).total_seconds())


def _rolls(now: datetime) -> tuple[datetime, datetime]:
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month = (first + timedelta(days=32)).replace(day=1)
    return day, month


def windows(settings: Settings, tenant: str, subject: str | None,
            subject_day_budget: float | None, now: datetime | None = None) -> list[Window]:
    """The windows a job of this payer counts in: the tenant's day and month, and the
    subject's day and month when a browser token placed it."""
    now = now or datetime.now(UTC)
    day_end, month_end = _rolls(now)
    day, month = f"d{now:%Y-%m-%d}", f"m{now:%Y-%m}"
    budget = settings.budgets.get(tenant) or Budget()
    found = [Window("day", keys.spend(tenant, None, day), budget.usd_per_day, day_end),
             Window("month", keys.spend(tenant, None, month), budget.usd_per_month, month_end)]
    if subject:
        found += [Window("day", keys.spend(tenant, subject, day), subject_day_budget, day_end),
                  Window("month", keys.spend(tenant, subject, month), None, month_end)]
    return found


def worst_case_usd(fields: Record, settings: Settings, batch: bool = False) -> float:
    """What the job can cost at most in one attempt: its input and its whole max_tokens."""
    usage = {"input_tokens": int(fields.get("input_tokens_estimate") or 0),
             "output_tokens": int(fields["max_tokens"])}
    return pricing.cost_usd(fields["model"], usage, batch=batch, overrides=settings.model_prices)


def limits_args(found: list[Window]) -> list[str]:
    return ["" if w.limit is None else repr(w.limit) for w in found]


async def reserve(redis: Redis, found: list[Window], amount: float) -> Window | None:
    """Reserve `amount` in every window at once (a batch's total); the window that refused it,
    or None when it fits."""
    refused = int(await redis.eval(RESERVE, len(found), *[w.key for w in found], repr(amount),
                                   SPEND_TTL_SECONDS, *limits_args(found)))
    return found[refused - 1] if refused else None


def _money(value: Any) -> float:
    return round(float(value or 0), 8)


async def usage(redis: Redis, found: list[Window]) -> dict[str, Any]:
    """Spent, reserved, budget and remaining per window of the caller (its first two
    windows when it is a tenant, the subject's when it is a browser token)."""
    mine = found[2:] if len(found) > 2 else found
    async with redis.pipeline(transaction=False) as pipe:
        for window in mine:
            pipe.hmget(window.key, ["spent", "reserved"])
        rows = await pipe.execute()
    spent = {w.name: _money(row[0]) for w, row in zip(mine, rows, strict=True)}
    reserved = {w.name: _money(row[1]) for w, row in zip(mine, rows, strict=True)}
    budget = {w.name: w.limit for w in mine}
    remaining = {w.name: None if w.limit is None else
                 max(0.0, round(w.limit - spent[w.name] - reserved[w.name], 8)) for w in mine}
    return {"spent_usd": spent, "reserved_usd": reserved, "budget_usd": budget,
            "remaining_usd": remaining}
