"""The in-memory answer cache a `SidecarClient` owns: identical requests within `ttl` seconds are
answered locally instead of paying Claude again.

It lives in the instance, not the module, so two clients (or two tests) never see each other's
answers, and it is bounded so a long-running process cannot grow it without limit.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT_MAX_ENTRIES = 1024


def cache_key(*parts: Any) -> str:
    """sha256 of the parts as canonical JSON, so equal requests hash equally whatever the order
    of their keys."""
    payload = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class TTLCache:
    """String answers kept for `ttl` seconds, at most `max_entries`, oldest evicted first.

    `ttl <= 0` turns it off: nothing is stored, every lookup misses. Thread-safe, because a
    sync client is often shared by the threads of a web server.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_entries > 0

    def get(self, key: str) -> str | None:
        """The fresh answer for `key`, or None (an expired one is dropped on the way)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if expires_at <= self._clock():
                del self._entries[key]
                return None
            return value

    def put(self, key: str, value: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
