"""Prompt caching as the API reports it: prefixes up to `cache_control` breakpoints.

The reported split (`cache_read_input_tokens`, `cache_creation_input_tokens`, `input_tokens`) is
what callers use to verify their caching layout, and what ITPM admission depends on (cache reads
are free), so lookup is separate from commit: a request refused with 429 must not warm the cache.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.prompt import Piece

_MAX_ENTRIES = 100_000


@dataclass(slots=True)
class CacheAccount:
    """How a request's input splits; `pending` holds prefixes to remember once admitted."""

    total: int
    read: int = 0
    creation: int = 0
    creation_1h: int = 0
    pending: list[tuple[bytes, float]] = field(default_factory=list)

    @property
    def uncached(self) -> int:
        return self.total - self.read - self.creation

    def usage(self) -> dict[str, object]:
        return {
            "input_tokens": self.uncached,
            "cache_creation_input_tokens": self.creation,
            "cache_read_input_tokens": self.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.creation - self.creation_1h,
                "ephemeral_1h_input_tokens": self.creation_1h,
            },
        }


@dataclass(frozen=True, slots=True)
class _Breakpoint:
    digest: bytes
    tokens: int
    ttl: float


class PromptCache:
    """Remembers prefix digests until their TTL runs out (refreshed on every hit)."""

    def __init__(self, min_tokens: int = 1024, clock: Callable[[], float] = time.monotonic):
        self.min_tokens = min_tokens
        self.clock = clock
        self.entries: OrderedDict[bytes, float] = OrderedDict()

    def account(self, model: str, pieces: list[Piece]) -> CacheAccount:
        """Split the input without changing the cache; call `commit` if the request proceeds."""
        total = sum(p.tokens for p in pieces)
        account = CacheAccount(total)
        points = [b for b in _breakpoints(model, pieces) if b.tokens >= self.min_tokens]
        if not points:
            return account
        now = self.clock()
        hit = next((b for b in reversed(points) if self._alive(b.digest, now)), None)
        if hit is not None:
            account.read = hit.tokens
        last = points[-1]
        if hit is not last:
            account.creation = last.tokens - account.read
            account.creation_1h = account.creation if last.ttl > 300 else 0
        account.pending = [(b.digest, b.ttl) for b in points]
        return account

    def commit(self, account: CacheAccount) -> None:
        now = self.clock()
        for digest, ttl in account.pending:
            self.entries[digest] = now + ttl
            self.entries.move_to_end(digest)
        while len(self.entries) > _MAX_ENTRIES:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()

    def _alive(self, digest: bytes, now: float) -> bool:
        expires = self.entries.get(digest)
        if expires is None:
            return False
        if expires < now:
            del self.entries[digest]
            return False
        return True


def _breakpoints(model: str, pieces: list[Piece]) -> list[_Breakpoint]:
    """Running digest of the prompt (per model, as caches are) at each marked piece."""
    if not any(p.ttl is not None for p in pieces):
        return []
    running = hashlib.blake2b(model.encode(), digest_size=16)
    tokens = 0
    found: list[_Breakpoint] = []
    for piece in pieces:
        running.update(piece.key())
        tokens += piece.tokens
        if piece.ttl is not None:
            found.append(_Breakpoint(running.copy().digest(), tokens, piece.ttl))
    return found
