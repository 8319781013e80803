"""The Redis side of Sidecar's protocol: every Lua script, kept as `.lua` files beside this
module so they read (and lint) as Lua rather than as Python strings.

A script is its preludes followed by its body, joined in the order given; `time.lua` comes
first in every script, so all of them read Redis's clock (`now_seconds()`) the same way and
never a host's.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def source(name: str, *preludes: str) -> str:
    """The text of script `name` (a path under `shared/lua/` without `.lua`), after `time`
    and the given preludes."""
    parts = ("time", *preludes, name)
    return "\n".join((HERE / f"{part}.lua").read_text() for part in parts)
