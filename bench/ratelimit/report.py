"""`bench.ratelimit`'s printed report: a table per part, each figure against its baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.common.stats import ratio
from bench.ratelimit.plan import BASELINE_ENV, RESERVE, STEADY, STREAM_SLOTS, STREAM_TPS

Row = tuple[str, str, str, str]
# (label, figure); the shares print as percentages.
A_ROWS = (("share of limit used ({bucket})", "utilisation"),
          ("  steady-state share", "steady_utilisation"),
          ("  best possible with the reserve kept", "ceiling_with_reserve"),
          ("upstream calls answered 429", "share_429"), ("upstream calls", "upstream_calls"),
          ("jobs failed", "failed"), ("interactive queue p50 (s)", "interactive_queue_p50_s"),
          ("interactive queue p95 (s)", "interactive_queue_p95_s"),
          ("interactive TTFT p95 (s)", "interactive_ttft_p95_s"),
          ("batch queue p50 (s)", "batch_queue_p50_s"),
          ("batch submission took (s)", "batch_submit_s"),
          ("limiter: admits told to wait", "limiter_waits"),
          ("workers' CPU (s)", "workers_cpu_s"), ("redis-server CPU (s)", "redis_cpu_s"),
          ("wall time (s)", "wall_s"))
PERCENT = {"utilisation", "steady_utilisation", "ceiling_with_reserve", "share_429"}
B_ROWS = (("peak concurrent streams", "peak_streams"), ("jobs/streams succeeded", "succeeded"),
          ("seconds to peak", "seconds_to_peak"),
          ("RSS idle (MiB)", "rss_idle_kib"), ("RSS at peak (MiB)", "rss_peak_kib"),
          ("memory per stream (KiB)", "kib_per_stream"),
          ("CPU per token (µs)", "cpu_us_per_token"), ("tokens relayed", "tokens"))


def cell(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.2f} %"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def rows_a(a: dict[str, Any]) -> list[Row]:
    limited, base = a["limiter"], a["baseline"]
    rows = []
    for label, name in A_ROWS:
        text = label.format(bucket=limited["binding_bucket"].upper())
        percent = name in PERCENT
        if name == "ceiling_with_reserve":  # the baseline keeps no reserve
            rows.append((text, cell(limited[name], percent), "", ""))
            continue
        rows.append((text, cell(limited[name], percent), cell(base[name], percent),
                     cell(ratio(limited[name], base[name]))))
    return rows


def rows_b(b: dict[str, Any]) -> list[Row]:
    rows = []
    for label, name in B_ROWS:
        worker, sdk = b["worker"][name], b["sdk"][name]
        if name.startswith("rss"):
            worker, sdk = worker / 1024, sdk / 1024
        rows.append((label, cell(worker), cell(sdk), cell(ratio(worker, sdk))))
    return rows


def render(title: str, head: Row, rows: Sequence[Row]) -> str:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    lines = [title]
    for row in (head, *rows):
        lines.append(f"  {row[0]:<{widths[0]}}  " + "  ".join(
            f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True)))
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    parts = []
    if "part_a" in results:
        a = results["part_a"]
        limits = " / ".join(f"{v:,} {k.upper()}" for k, v in a["limits"].items())
        title = (f"Part A — limiter on vs off: K={a['scale']} ({limits}); {a['workers']}; "
                 f"{a['jobs']['batch']} batch + {a['jobs']['interactive']} interactive jobs")
        parts.append(render(title, ("", "limiter", "baseline", "ratio"), rows_a(a)))
        parts.append(legend_a(a))
    if "part_b" in results:
        b = results["part_b"]
        title = (f"Part B — one worker process (-c {STREAM_SLOTS}) vs the bare SDK, "
                 f"{b['worker']['streams']} streams of {b['simulator']['reply_tokens']} tokens "
                 f"at {STREAM_TPS} tokens/s")
        parts.append(render(title, ("", "worker", "bare SDK", "ratio"), rows_b(b)))
    return "\n\n".join(parts)


def legend_a(a: dict[str, Any]) -> str:
    limited = a["limiter"]
    return "\n".join([
        "  share of limit used = ledger / (limit + limit x window/60): the bucket starts full "
        "and refills limit/60 per s;",
        f"    window = simulator reset -> last upstream call ({limited['window_s']} s with the "
        f"limiter). Steady-state = ledger rate over {int(100 * STEADY[0])}-"
        f"{int(100 * STEADY[1])} % of the window, once the first minute's limit is spent, "
        "/ (limit/60).",
        f"    best possible with the reserve kept = used / (used + {RESERVE:g} x limit): batch "
        "never spends the interactive reserve.",
        f"  baseline: {', '.join(f'{k}={v}' for k, v in BASELINE_ENV.items())} "
        "(retries honour retry-after); fresh Redis DB, reset simulator.",
        "  queue = started_at - created_at (the limiter's includes waiting for capacity, the "
        "baseline's not its 429 retries); TTFT = first_token_at - created_at (both);",
        "    ratio = limiter / baseline.",
    ])
