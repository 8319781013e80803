"""Chaos benchmark: does Sidecar lose, double or garble jobs while its processes die?

Two APIs, three workers, Redis with AOF (or a Sentinel group) and the simulator failing 10 % of
upstream calls (529, 500, 429 with and without retry-after, an error mid-stream, a dropped
connection) run 2 000 jobs — chats, drought analyses and one batch — while a worker is
SIGKILLed every 20 s, Redis restarts twice and one API restarts; a quarter of the jobs are
followed over SSE by clients that hang up mid-stream and resume with Last-Event-ID on the
other API. Then Redis is audited: jobs lost, jobs that succeeded twice, texts that differ,
tokens billed against the simulator's ledger, limiter leftovers, keys without TTL, and how long
a dead worker's jobs waited to run again.

    python -m bench.chaos [--quick] [--jobs 2000] [--seconds 240] [--variant aof|sentinel]

Starts and stops every process it uses; prints a table with a verdict per goal and writes
bench/results/chaos-<variant>.json (chaos-<variant>-quick.json with --quick).
"""
