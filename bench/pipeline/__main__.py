"""`python -m bench.pipeline [--quick] [--streams 200]`: start the stack, run the three
sections, print the table and write bench/results/pipeline.json."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import uvloop

import bench.pipeline
from bench.common.output import log, write_results
from bench.pipeline.plan import RESULTS, WORKER_CONCURRENCY, Plan, make_plan
from bench.pipeline.relay import measure_relay
from bench.pipeline.report import legend, table
from bench.pipeline.stack import Stack, running_stack
from bench.pipeline.steady import measure_steady
from bench.pipeline.submit import measure_submit
from bench.pipeline.ttft import measure_ttft


async def measure_async(stack: Stack, plan: Plan) -> dict[str, Any]:
    log(f"section 2: time to first token (1 and {plan.streams} streams)")
    ttft = await measure_ttft(stack, plan)
    log(f"section 2, at load: {plan.streams} streams in flight for {plan.steady_seconds:.0f} s "
        "per mode")
    ttft["steady"] = await measure_steady(stack, plan)
    log(f"section 3: relay to {plan.clients} SSE clients")
    relay = await measure_relay(stack, plan)
    return {"ttft": ttft, "relay": relay}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=bench.pipeline.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples per figure")
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams (sec. 2)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    plan = make_plan(args)
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    log("starting redis-server, simulator, Sidecar worker, no-op worker and API")
    with running_stack() as stack:
        log(f"section 1: submit→start, {plan.sequential} sequential submissions per mode")
        submit = measure_submit(stack, plan)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = runner.run(measure_async(stack, plan))
    config = {**vars(plan), "quick": args.quick, "cpus": os.cpu_count(),
              "worker_concurrency": WORKER_CONCURRENCY, "loadavg_1m_at_start": load_at_start,
              "loadavg_1m_at_end": os.getloadavg()[0],
              "wall_s": round(time.monotonic() - started, 1)}
    results = {"config": config, "submit": submit, **measured}
    write_results(RESULTS, results)
    sys.stdout.write(f"{table(results)}\n\n{legend(results)}\nfigures: {RESULTS}\n")


if __name__ == "__main__":
    main()
