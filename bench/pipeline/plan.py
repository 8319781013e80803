"""What `bench.pipeline` runs: the samples per section and the simulator's pace for each."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench.common.output import RESULTS_DIR
from shared import models

RESULTS = RESULTS_DIR / "pipeline.json"
MODEL = models.resolve("sonnet")
PROMPT = "What is the rainfall outlook for the Canterbury plains?"
WORKER_CONCURRENCY = 300
WARMUP = 10
TTFT_SIM = {"ttft_ms": 200, "tokens_per_second": 200, "reply_tokens": 20}
# Section 2 at load: streams of a realistic length and pace (deltas of a few tokens, as Claude
# sends them), so that N in flight is a steady load rather than one burst.
STEADY_SIM = {"ttft_ms": 200, "tokens_per_second": 20, "stream_chunk_ms": 250,
              "reply_tokens": 300}
# Section 3's simulator: fast streams, and a first token late enough that every SSE client is
# attached before its job streams (so "live" is live, not a replay of a finished job).
RELAY_SIM = {"ttft_ms": 1500, "tokens_per_second": 2000}
LONG_REPLY = 2000  # tokens: long enough that the 100 streams overlap despite their spread starts


@dataclass(frozen=True)
class Plan:
    streams: int  # section 2: concurrent streams
    sequential: int  # section 1: sequential submissions per mode
    singles: int  # section 2: one-stream samples per mode
    rounds: int  # section 2: N-stream bursts per mode
    steady_seconds: float = 20.0  # section 2 at load: the measured window per mode
    clients: int = 100  # section 3: SSE clients / pub/sub subscribers
    reply_tokens: int = 500  # section 3: tokens per job (then LONG_REPLY in a second round)
    messages: int = 500  # section 3 baseline: messages per channel


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(streams=args.streams, sequential=50, singles=10, rounds=1,
                    steady_seconds=10.0)
    return Plan(streams=args.streams, sequential=200, singles=30, rounds=3)
