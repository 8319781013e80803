"""A cap on the event streams one tenant holds open (`MAX_STREAMS_PER_TENANT`, per API
process): each stream holds a connection and a mailbox, so one tenant's leak or flood of
EventSources must not starve the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

from shared.errors import RateLimited

RETRY_AFTER_SECONDS = 5.0


class TooManyStreams(RateLimited):
    error_type = "too_many_streams"


class StreamSlots:
    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self.open: Counter[str] = Counter()

    def take(self, tenant: str) -> None:
        """Count one more open stream, or refuse it with 429."""
        if self.open[tenant] >= self.per_tenant:
            raise TooManyStreams(f"this tenant already has {self.per_tenant} event streams open "
                                 "(MAX_STREAMS_PER_TENANT): close some",
                                 retry_after=RETRY_AFTER_SECONDS)
        self.open[tenant] += 1

    def give_back(self, tenant: str) -> None:
        self.open[tenant] -= 1
        if self.open[tenant] <= 0:
            del self.open[tenant]

    async def hold(self, tenant: str, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`stream`, with the slot taken (by `take`) given back however it ends."""
        try:
            async for frame in stream:
                yield frame
        finally:
            self.give_back(tenant)
