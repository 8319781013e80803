"""What a process spends, read from /proc: CPU seconds, resident memory, and waiting for idle."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

# Between rounds, wait until the servers are idle (a round's tail of acks, metrics and cache
# writes outlives its clients) so one round does not slow the next.
IDLE_LOOK = 0.3  # seconds
IDLE_CPU_SHARE = 0.1  # of one core, over IDLE_LOOK
IDLE_WAIT_MAX = 5.0  # seconds


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """A process's resident set size in KiB (0 when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class CpuMeter:
    """CPU seconds each role's processes used since the meter was made; with `client`, also this
    benchmark's own process, as the role 'client'."""

    def __init__(self, pids: dict[str, list[int]], client: bool = False, digits: int = 2) -> None:
        self.pids = pids
        self.client = client
        self.digits = digits
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        now = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.pids.items()}
        if self.client:
            now["client"] = time.process_time()
        return now

    def used(self) -> dict[str, float]:
        now = self._read()
        return {role: round(now[role] - self.start[role], self.digits) for role in now}


async def wait_idle(pids: Sequence[int]) -> None:
    """Return once the processes together use under IDLE_CPU_SHARE of a core (or after
    IDLE_WAIT_MAX seconds, on a machine too busy to tell)."""
    deadline = time.monotonic() + IDLE_WAIT_MAX
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(IDLE_LOOK)
        if sum(cpu_seconds(pid) for pid in pids) - before < IDLE_LOOK * IDLE_CPU_SHARE:
            return
