"""Per-client limits when client keys are on: requests and tokens per minute per key, on the
same Redis limiter that paces the workers (one bucket scope per key)."""

from __future__ import annotations

import secrets
from hashlib import sha256

from shared.errors import RateLimited
from shared.limiter import Limiter
from shared.settings import Settings


def client_scope(key: str) -> str:
    # Key names hold a digest, never the key itself.
    return "client:" + sha256(key.encode()).hexdigest()[:16]


async def charge(limiter: Limiter, settings: Settings, key: str, tokens: int) -> None:
    """Count one request of `tokens` against the client's buckets, or refuse it with 429."""
    if not key or not (settings.client_rpm or settings.client_tpm):
        return
    limits = {"rpm": settings.client_rpm, "itpm": settings.client_tpm, "otpm": 0}
    admission = await limiter.admit(client_scope(key), secrets.token_hex(8), tokens, 0, 0.0,
                                    limits, 0, hold=0, probe=False)
    if not admission.admitted:
        what = "requests" if admission.reason == "rpm" else "tokens"
        raise RateLimited(f"this API key is over its {what}-per-minute limit; "
                          f"retry in {admission.wait:.1f}s", retry_after=admission.wait)
