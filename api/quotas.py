"""Per-tenant limits: requests and tokens per minute per tenant, on the same Redis limiter that
paces the workers (one bucket scope per tenant). A batch counts as many requests as it has
jobs: it cannot be used to get around them."""

from __future__ import annotations

import secrets
from hashlib import sha256

from shared.errors import RateLimited
from shared.limiter import Limiter
from shared.settings import Settings

BATCH_RETRY_SECONDS = 60.0


def client_scope(tenant: str) -> str:
    # Scope names hold a digest, never the tenant's name (they show in /api/limits).
    return "client:" + sha256(tenant.encode()).hexdigest()[:16]


def _too_big(settings: Settings, tokens: int, requests: int) -> str | None:
    """Why a batch can never fit the tenant's per-minute quotas, if it cannot."""
    if settings.client_rpm and requests > settings.client_rpm:
        return (f"a batch of {requests} jobs exceeds this tenant's {settings.client_rpm} "
                "requests per minute (CLIENT_RPM): send it in parts")
    if settings.client_tpm and tokens > settings.client_tpm:
        return (f"a batch of {tokens} tokens exceeds this tenant's {settings.client_tpm} tokens "
                "per minute (CLIENT_TPM): send it in parts")
    return None


async def charge(limiter: Limiter, settings: Settings, tenant: str, tokens: int,
                 requests: int = 1) -> None:
    """Count `requests` requests of `tokens` tokens in all against the tenant's buckets, or
    refuse them with 429."""
    if settings.auth_off or not (settings.client_rpm or settings.client_tpm):
        return  # one local caller: nobody to share with
    if (reason := _too_big(settings, tokens, requests)) is not None:
        raise RateLimited(reason, retry_after=BATCH_RETRY_SECONDS)
    limits = {"rpm": settings.client_rpm, "itpm": settings.client_tpm, "otpm": 0}
    admission = await limiter.admit(client_scope(tenant), secrets.token_hex(8), tokens, 0, 0.0,
                                    limits, 0, hold=0, probe=False, requests=requests)
    if not admission.admitted:
        what = "requests" if admission.reason == "rpm" else "tokens"
        raise RateLimited(f"this tenant is over its {what}-per-minute limit; "
                          f"retry in {admission.wait:.1f}s", retry_after=admission.wait)
