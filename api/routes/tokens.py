"""`/api/tokens`: short-lived browser tokens, minted by a tenant's backend (its service key)
for one end user, so the browser never holds the key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictFloat, StrictInt, StrictStr

from api import openapi
from api.auth import Keyring, require_service
from api.body import read_object
from api.deps import PrincipalDep, SettingsDep
from shared.schemas import Strict
from shared.validation import parse

router = APIRouter(prefix="/api/tokens", tags=["auth"])

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 3600


class TokenRequest(Strict):
    subject: StrictStr = Field(min_length=1, max_length=200,
                               description="the end user the token stands for")
    ttl_seconds: StrictInt = Field(DEFAULT_TTL_SECONDS, ge=10, le=MAX_TTL_SECONDS)
    budget_usd_per_day: StrictFloat | StrictInt | None = Field(None, ge=0)


class TokenMinted(Strict):
    token: str
    expires_at: str
    tenant: str
    subject: str


@router.post("", status_code=201, response_model=TokenMinted,
             openapi_extra=openapi.body(TokenRequest),
             responses={403: {"description": "a browser token cannot mint tokens"}})
async def mint_token(request: Request, settings: SettingsDep,
                     caller: PrincipalDep) -> JSONResponse:
    """A token for one end user (`subject`) of the caller's tenant: `Authorization: Bearer` on
    the job, chat and batch routes, `?access_token=` on event streams. It sees only its
    subject's work, and spends at most `budget_usd_per_day` a day."""
    require_service(caller)
    body = parse(TokenRequest, await read_object(request, settings.max_body_bytes))
    keyring: Keyring = request.app.state.keyring
    budget = None if body.budget_usd_per_day is None else float(body.budget_usd_per_day)
    minted = keyring.mint(caller.tenant, body.subject, body.ttl_seconds, budget)
    expires = minted.expires_at.isoformat().replace("+00:00", "Z")
    return JSONResponse({"token": minted.token, "expires_at": expires, "tenant": caller.tenant,
                         "subject": body.subject}, status_code=201,
                        headers={"Cache-Control": "no-store"})
