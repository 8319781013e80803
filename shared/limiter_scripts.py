"""Lua for the shared rate limiter: continuously refilling buckets per model (requests, input
tokens, output tokens per minute), a cap on requests in flight, and a cool-down after a 429.

The text lives in `shared/lua/limiter/`; these names stay because callers run the scripts by
digest (`workers.runner` preloads ADMIT for its one-round-trip claim).
"""

from __future__ import annotations

from shared.lua import source

ADMIT = source("limiter/admit", "limiter/refill")
SETTLE = source("limiter/settle", "limiter/refill")
LEARN = source("limiter/learn", "limiter/refill")
COOLDOWN = source("limiter/cooldown", "limiter/refill")
KEEPALIVE = source("limiter/keepalive")
WAIT = source("limiter/wait")
