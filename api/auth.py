"""Who is calling: a service key (a tenant's backend) or a browser token (one end user of a
tenant), resolved once per request into a `Principal` that every route checks ownership with.

Keys are looked up by their digest, so the comparison does not depend on how much of a guess
matches. Tokens are JWTs (PyJWT, HS256) signed with a key derived from their tenant's secret:
removing or rotating a tenant's key revokes every token it minted, and every API replica can
verify them with nothing shared but the configuration.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

import jwt

from shared.errors import Forbidden, Unauthorized
from shared.settings import Settings

ISSUER = "sidecar"
ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 10_000
LOCAL_TENANT = "local"  # every caller's tenant when SIDECAR_AUTH=off
# Signs tokens when auth is off: they then guard nothing (every route is open) but still carry
# a subject, so a demo page behaves as it would with keys.
_OPEN_SIGNING_SECRET = b"sidecar-auth-off: tokens here guard nothing"


@dataclass(frozen=True)
class Principal:
    """The caller. `subject` is None for a service key, which sees all of its tenant's work."""

    tenant: str
    subject: str | None = None
    budget_usd_per_day: float | None = None

    @property
    def is_token(self) -> bool:
        return self.subject is not None

    @property
    def scope(self) -> str:
        """What idempotency keys and ownership are scoped by."""
        return f"{self.tenant}\x00{self.subject or ''}"

    def owns(self, tenant: str, subject: str) -> bool:
        """Whether work recorded with this tenant and subject is the caller's to see."""
        return tenant == self.tenant and (self.subject is None or subject == self.subject)


@dataclass(frozen=True)
class Minted:
    token: str
    expires_at: datetime


def _signing_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"sidecar browser token v1", sha256).digest()


class Keyring:
    """The service keys and the token keys derived from them; built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.open = settings.auth_off
        self._tenants = {sha256(k.secret.encode()).digest(): k.tenant
                         for k in settings.api_keys()}
        self._signing = {k.tenant: _signing_key(k.secret.encode()) for k in settings.api_keys()}
        if self.open:
            self._signing[LOCAL_TENANT] = _signing_key(_OPEN_SIGNING_SECRET)
        self._verified: dict[str, tuple[Principal, float]] = {}

    def tenant_of(self, secret: str) -> str | None:
        return self._tenants.get(sha256(secret.encode()).digest())

    def mint(self, tenant: str, subject: str, ttl_seconds: int,
             budget_usd_per_day: float | None) -> Minted:
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=ttl_seconds)
        claims: dict[str, Any] = {"iss": ISSUER, "ten": tenant, "sub": subject,
                                  "iat": now, "exp": expires}
        if budget_usd_per_day is not None:
            claims["bud"] = budget_usd_per_day
        return Minted(jwt.encode(claims, self._signing[tenant], algorithm=ALGORITHM), expires)

    def verify(self, token: str) -> Principal:
        """The token's principal; Unauthorized when it is expired, forged, malformed or its
        tenant's key is gone. A browser sends the same token with every request: once
        verified, it is remembered until it expires (two JWT decodes cost more than the rest
        of a submission's checks)."""
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # bounded: a flood of distinct tokens costs a re-verify
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        # The tenant is read before the signature is checked only to pick the key; nothing
        # from an unverified token is trusted.
        try:
            tenant = jwt.decode(token, options={"verify_signature": False}).get("ten")
            key = self._signing.get(tenant) if isinstance(tenant, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown tenant")
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "sub", "ten", "iss"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired: get a new one") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        budget = claims.get("bud")
        principal = Principal(str(tenant), str(claims["sub"]),
                              float(budget) if isinstance(budget, int | float) else None)
        return principal, float(claims["exp"])

    def authenticate(self, credential: str, allow_token: bool = True) -> Principal:
        """The principal a bearer credential stands for."""
        if credential:
            tenant = self.tenant_of(credential)
            if tenant is not None:
                return Principal(tenant)
            if allow_token and credential.count(".") == 2:
                return self.verify(credential)
        if self.open:
            return Principal(LOCAL_TENANT)
        raise Unauthorized("missing or unknown API key or token: send "
                           "'Authorization: Bearer <key or token>'")


def require_service(principal: Principal) -> None:
    """Only a service key may do this (mint tokens, read service-wide state)."""
    if principal.is_token:
        raise Forbidden("a browser token cannot do this: it needs the tenant's service key")
