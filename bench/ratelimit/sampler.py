"""The simulator's ledger (and a process's RSS) sampled on a thread of its own during a run."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common.meters import rss_kib

SAMPLE_EVERY = 0.5


@dataclass(frozen=True)
class Sample:
    at: float  # wall clock
    calls: int  # /v1/messages answered, any status
    requests: int  # /v1/messages answered 200 (the RPM bucket's charge)
    input_tokens: int
    output_tokens: int
    open_streams: int
    rss_kib: int

    def ledger(self, bucket: str) -> int:
        return {"rpm": self.requests, "itpm": self.input_tokens,
                "otpm": self.output_tokens}[bucket]


class Sampler(threading.Thread):
    """Reads the simulator's stats (and a process's RSS) every SAMPLE_EVERY seconds on its own
    thread, so a busy event loop does not delay samples; `cpu` is the thread's own CPU time,
    for subtracting from this process's figures."""

    def __init__(self, sim_url: str, pid: int | None = None) -> None:
        super().__init__(name="sampler", daemon=True)
        self.sim_url = sim_url
        self.pid = pid
        self.samples: list[Sample] = []
        self.cpu = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.sim_url, timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    self.samples.append(self._sample(http.get("/_sim/stats").json()))
                if self._done.wait(SAMPLE_EVERY):
                    break
        self.cpu = time.thread_time()

    def _sample(self, stats: dict[str, Any]) -> Sample:
        codes = stats["requests"].get("/v1/messages", {})
        return Sample(at=time.time(), calls=sum(codes.values()), requests=codes.get("200", 0),
                      input_tokens=stats["tokens"]["input_tokens"],
                      output_tokens=stats["tokens"]["output_tokens"],
                      open_streams=stats["streams"]["open"],
                      rss_kib=rss_kib(self.pid) if self.pid else 0)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(10)
