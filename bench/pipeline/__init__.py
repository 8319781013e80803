"""Benchmark: what Sidecar's pipeline adds on top of its building blocks.

The machine is small and noisy, so every figure is set against a baseline measured in the same
run, on the same processes:

1. Submit → worker start: `POST /api/jobs` to the job's recorded `started_at`, against a no-op
   Celery task's send → start on the identical Celery config (`bench/noop_app.py`).
2. Added time to first token: `POST` → first SSE `token` event, against streaming straight from
   the simulator with the anthropic SDK: one stream at a time; N streams in flight (N users who
   each start a stream when the last ends, arrivals spread); and N streams sent at once.
3. Token relay to 100 SSE clients (live, then replaying the finished jobs) against raw Redis
   pub/sub, every client's text checked against its job's result, with the CPU each process
   spent.

    python -m bench.pipeline [--quick] [--streams 200]

Starts its own redis-server, simulator, Sidecar worker, no-op worker and API, and stops them at
the end. Prints a table and writes the figures to bench/results/pipeline.json.
"""
