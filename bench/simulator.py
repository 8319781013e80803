"""Benchmark: how many concurrent streams one simulator process holds, and at what cost.

Starts `python -m simulator` as a subprocess, measures one stream alone (the baseline), then
opens N concurrent streams through one `anthropic.AsyncAnthropic` client and reports streams
held at once, tokens received, aggregate tokens/s, ideal vs actual wall time and simulator CPU
seconds per token, each also as a ratio to the baseline measured in the same run.

    python -m bench.simulator --streams 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import uvloop

from bench.common.meters import cpu_seconds
from bench.common.sdk import sdk_client
from tests.simulator_fixtures import start_simulator

MODEL = "claude-sonnet-5-5"
log = logging.getLogger("bench.simulator")


@dataclass
class Round:
    """One measured round: N streams started together."""

    streams: int
    tokens: int
    wall: float
    ideal: float
    sim_cpu: float
    client_cpu: float
    peak_open: int
    failures: int
    slowest: float
    server_mean: float
    server_max: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    @property
    def cpu_per_token_us(self) -> float:
        return 1e6 * self.sim_cpu / self.tokens if self.tokens else float("nan")


async def one_stream(client: anthropic.AsyncAnthropic, max_tokens: int) -> tuple[int, float]:
    """Read a whole raw stream; return the output tokens it reported and how long it took."""
    started = time.monotonic()
    tokens = 0
    stream = await client.messages.create(
        model=MODEL, max_tokens=max_tokens, stream=True,
        messages=[{"role": "user", "content": "Outlook for the dry season?"}],
    )
    async for event in stream:
        if event.type == "message_delta":
            tokens = event.usage.output_tokens
    return tokens, time.monotonic() - started


async def measure(
    client: anthropic.AsyncAnthropic, control: httpx2.AsyncClient, pid: int,
    streams: int, args: argparse.Namespace,
) -> Round:
    await control.post("/_sim/reset")
    sim_cpu, client_cpu = cpu_seconds(pid), time.process_time()
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(one_stream(client, args.max_tokens) for _ in range(streams)), return_exceptions=True
    )
    wall = time.monotonic() - started
    sim_cpu = cpu_seconds(pid) - sim_cpu
    client_cpu = time.process_time() - client_cpu
    stats = (await control.get("/_sim/stats")).json()
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    finished = [o for o in outcomes if isinstance(o, tuple)]
    for failure in failures[:3]:
        log.warning("stream failed: %r", failure)
    ideal = args.ttft_ms / 1000 + (args.max_tokens - 1) / args.tps
    return Round(
        streams=streams,
        tokens=sum(tokens for tokens, _ in finished),
        wall=wall,
        ideal=ideal,
        sim_cpu=sim_cpu,
        client_cpu=client_cpu,
        peak_open=int(stats["streams"]["peak_open"]),
        failures=len(failures),
        slowest=max((seconds for _, seconds in finished), default=0.0),
        server_mean=float(stats["streams"]["completed_seconds_mean"]),
        server_max=float(stats["streams"]["completed_seconds_max"]),
    )


def report(base: Round, load: Round) -> dict[str, Any]:
    return {
        "streams_requested": load.streams,
        "streams_held_concurrently": load.peak_open,
        "failed_streams": load.failures,
        "tokens_received": load.tokens,
        "tokens_per_second": round(load.tokens_per_second, 1),
        "tokens_per_second_vs_baseline": round(load.tokens_per_second / base.tokens_per_second, 1),
        "ideal_wall_s": round(load.ideal, 3),
        "actual_wall_s": round(load.wall, 3),
        "wall_over_ideal": round(load.wall / load.ideal, 3),
        "slowest_stream_client_s": round(load.slowest, 3),
        "stream_server_mean_s": load.server_mean,
        "stream_server_max_s": load.server_max,
        "baseline_stream_server_s": base.server_max,
        "baseline_wall_over_ideal": round(base.wall / base.ideal, 3),
        "sim_cpu_s": round(load.sim_cpu, 2),
        "sim_cpu_us_per_token": round(load.cpu_per_token_us, 1),
        "baseline_sim_cpu_us_per_token": round(base.cpu_per_token_us, 1),
        "cpu_per_token_vs_baseline": round(load.cpu_per_token_us / base.cpu_per_token_us, 2),
        "sim_cpu_share_of_one_core": round(load.sim_cpu / load.wall, 2),
        "client_cpu_s": round(load.client_cpu, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim = start_simulator(tokens_per_second=args.tps, ttft_ms=args.ttft_ms,
                          reply_tokens=args.max_tokens, log_level="WARNING")
    try:
        async with (
            sdk_client(sim.url, args.streams + 100, keepalive=args.streams) as client,
            httpx2.AsyncClient(base_url=sim.url) as control,
        ):
            base = await measure(client, control, sim.pid, 1, args)
            load = await measure(client, control, sim.pid, args.streams, args)
        return report(base, load)
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--tps", type=float, default=20.0, help="tokens per second per stream")
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # The client shares the machine with the simulator; uvloop keeps its own overhead down.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args))
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        sys.stdout.write(f"{key:<{width}}  {value}\n")


if __name__ == "__main__":
    main()
