"""Benchmark: Sidecar's shared rate limiter, and how many streams one worker process holds.

The machine is small and noisy, so every figure is set against a baseline measured in the same
run, on the same machine.

Part A — limiter on vs off. The simulator enforces Anthropic's low tier (50 RPM, 30 000 ITPM,
8 000 OTPM) multiplied by a scale K, as continuously refilling buckets. Four workers (all four
on `-Q interactive,batch`, `-c 50` each) and one API run N chat jobs: 80 % batch
(max_tokens 200) submitted at once, 20 % interactive (max_tokens 100) trickled in evenly over
the run's expected length. Every reply is as long as its max_tokens allows, so a reservation is
what the call really uses. The baseline is the same run with `LIMITER_ENABLED=false` (the
worker's retries only, which honour retry-after; MAX_RETRIES=10, JOB_MAX_ATTEMPTS=20) on a
fresh Redis database and a reset simulator.

    share of the limit used = used / (limit + limit * window / 60)

for the binding bucket (the one the run needed the most minutes of): the bucket starts full
(one minute's limit) and refills limit/60 per second. `used` is the simulator's own ledger;
`window` runs from the simulator's reset to the last upstream call (after it no job was left
wanting capacity, so refill had no taker). The steady-state share is the ledger's rate between
30 % and 90 % of the window over the refill rate: pacing alone, without the one-off costs
(the initial bucket, the interactive reserve left unspent at the end).

Part B — streams one worker process holds: one worker (`-c 1200`, MAX_IN_FLIGHT=2000, limiter
on) against an unlimited simulator streaming slowly (0.5 token/s, 20 tokens, 200 ms to the
first token: a stream lasts 40 s); N jobs at once. Peak concurrent streams, the worker's RSS
idle vs at peak, memory per stream and CPU per relayed token, against the bare SDK
(`anthropic.AsyncAnthropic` on one uvloop loop in this process, reading the same raw events and
keeping the text) holding as many streams against the same simulator. The worker takes ~20 ms
of CPU per job of 20-30 tokens, so taking 1 100 jobs keeps its one core (the GIL) busy for
20-30 s: streams must outlast that ramp to be held all at once, and at 5 tokens/s (5 500 token
events a second, ~0.4 ms each) the process would run out of CPU before it held 1 000.

    python -m bench.ratelimit [--quick] [--jobs 2000] [--scale K] [--streams 1100] [--only a|b]

Starts its own redis-server, simulators, workers and API, and stops them at the end. Prints a
table and writes the figures to bench/results/ratelimit.json.
"""
