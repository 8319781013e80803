"""`/api/usage`: what the caller has spent, against its budgets, today and this month."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, RedisDep, SettingsDep
from shared import budgets

router = APIRouter(prefix="/api/usage", tags=["usage"])


@router.get("")
async def usage(redis: RedisDep, settings: SettingsDep, caller: PrincipalDep) -> dict[str, Any]:
    """Spent (settled jobs' `cost_usd`), reserved (jobs not yet finished, at their worst
    case), budget and remaining, per UTC day and month: the tenant's for a service key, the
    subject's for a browser token."""
    found = budgets.windows(settings, caller.tenant, caller.subject, caller.budget_usd_per_day)
    return {"tenant": caller.tenant, "subject": caller.subject,
            **await budgets.usage(redis, found)}
