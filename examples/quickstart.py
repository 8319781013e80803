"""Sidecar in one minute, for a newcomer with the stack running (`sidecar up`):

    python -m examples.quickstart [--url http://localhost:8000]

It asks one question and waits for the answer, then streams a second answer token by token as
the job's events arrive, and prints what each cost. Every call goes through Sidecar's queue, so
the same limits, retries, cache and accounting apply as for the farming app itself.
"""

from __future__ import annotations

import argparse
import sys

import httpx

from sidecar.errors import SidecarError
from sidecar.jobs import JobsClient, default_url

QUESTION = "What does a 3-month SPI of -1.5 mean for a sheep farm?"
FOLLOW_UP = "Give three low-cost ways to stretch stock water through a dry summer."


def ask(client: JobsClient) -> None:
    """The simplest call: submit, wait, get the text."""
    print(f"Q: {QUESTION}")
    print(f"A: {client.chat(QUESTION, max_tokens=200)}\n")


def stream(client: JobsClient) -> None:
    """A job followed as it runs: its events carry the tokens, then the finished job."""
    job = client.submit_chat(FOLLOW_UP, system="You advise farmers in plain words.",
                             max_tokens=200)
    print(f"Q: {FOLLOW_UP}  (job {job['id']})\nA: ", end="", flush=True)
    for event in client.events(job["id"]):
        if event.event == "token":
            print(event.data["text"], end="", flush=True)
        elif event.event == "reset":  # an attempt failed mid-stream; a retry starts over
            print("\n[retrying]\nA: ", end="", flush=True)
        elif event.event == "done":
            done = event.data
            print(f"\n\nstatus {done['status']}, {done['usage']['output_tokens']} tokens out, "
                  f"cost ${done['cost_usd']:.6f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Sidecar's API (default: SIDECAR_URL, else :8000)")
    args = parser.parse_args(argv)
    url = args.url or default_url()
    try:
        with JobsClient(url) as client:
            ask(client)
            stream(client)
    except httpx.TransportError as exc:
        print(f"No Sidecar at {url} ({exc}). Start one with `sidecar up`.", file=sys.stderr)
        return 1
    except SidecarError as exc:
        print(f"Sidecar refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
