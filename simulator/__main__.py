"""`python -m simulator`: run the simulator as its own process (how tests and benchmarks use it).

Every flag can also come from the environment (`--rpm` <- `SIM_RPM`, `--ttft-ms` <-
`SIM_TTFT_MS`, ...), so a process manager can configure it without building a command line.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from simulator.app import run
from simulator.config import FAULT_RATES, SimConfig

# Flag name (without dashes, underscores for dashes) -> parser for its value.
_FLAGS: dict[str, type] = {
    "host": str,
    "port": int,
    "rpm": int,
    "itpm": int,
    "otpm": int,
    "ttft_ms": float,
    "tokens_per_second": float,
    "seed": int,
    **dict.fromkeys(FAULT_RATES, float),
    "batch_seconds_per_request": float,
    "reply_tokens": int,
    "api_key": str,
    "stream_chunk_ms": float,
    "cache_min_tokens": int,
}


_LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags default to `SIM_<NAME>` from `env`, then to the SimConfig default."""
    defaults = {f.name: f.default for f in fields(SimConfig)}
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Anthropic Messages API simulator for tests and benchmarks.",
    )
    for name, kind in _FLAGS.items():
        env_name = f"SIM_{name.upper()}"
        default: Any = env.get(env_name, defaults[name])
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            default=kind(default) if default is not None else None,
            help=f"(env {env_name}; default {defaults[name]!r})",
        )
    parser.add_argument("--log-level", default=env.get("SIM_LOG_LEVEL", "INFO"))
    return parser


def config_from_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> SimConfig:
    parser = build_parser(env)
    args = vars(parser.parse_args(argv))
    args.pop("log_level")
    try:
        return SimConfig(**args)
    except ValueError as exc:
        parser.error(str(exc))  # exits with a usage message rather than a traceback
        raise  # unreachable; keeps type checkers content


def main(argv: Sequence[str] | None = None) -> None:
    env = os.environ
    level = build_parser(env).parse_known_args(argv)[0].log_level
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT)
    run(config_from_args(argv, env))


if __name__ == "__main__":
    main()
