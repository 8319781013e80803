"""The `sidecar` command line."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console

from shared.settings import SettingsError, load_settings
from sidecar import stack
from simulator.config import DEFAULT_TIER

app = typer.Typer(help="Sidecar: Claude behind a job queue.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up(
    data_dir: Path = typer.Option(
        Path.home() / ".local" / "state" / "sidecar", help="Where a started Redis keeps its AOF."
    ),
) -> None:
    """Bring the local stack up; Ctrl-C or SIGTERM stops everything it started."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    flower = stack.flower_credentials(settings)
    running = stack.Stack(stack.plan(settings, data_dir, flower), stack.child_env(settings))

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        running.start(lambda s: console.print(f"[green]✓[/green] {s.name} ready"))
        url = f"http://127.0.0.1:{settings.server_port}"
        upstream = "Claude" if settings.api_key() else "the Claude simulator (no ANTHROPIC_API_KEY)"
        console.print(f"[bold]Sidecar is up[/bold] at {url} (docs {url}/docs), on {upstream}.")
        console.print(f"Flower: http://127.0.0.1:{settings.flower_port} "
                      f"(user {flower.partition(':')[0]!r}, password {flower.partition(':')[2]!r})")
        if stack.local_only(settings):
            console.print("[yellow]Auth is off[/yellow] (no SIDECAR_API_KEYS): every route is "
                          "open, so every process listens on 127.0.0.1 only.")
        else:
            console.print("Auth is on: send 'Authorization: Bearer <key>' (SIDECAR_API_KEYS).")
        console.print("Ctrl-C stops it.")
        while (dead := running.dead()) is None:
            time.sleep(0.5)
        console.print(f"[red]{dead.name} exited; stopping the stack[/red]")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        running.stop()


@app.command()
def chat(
    message: str = typer.Argument(..., help="What to ask."),
    url: str | None = typer.Option(None, help="Sidecar API (default $SIDECAR_URL or local)."),
    model: str | None = typer.Option(None, help="opus, sonnet, haiku or a full model id."),
    max_tokens: int | None = typer.Option(None),
    system: str | None = typer.Option(None, help="System prompt."),
    api_key: str | None = typer.Option(None, envvar="SIDECAR_API_KEY", help="Client key."),
) -> None:
    """Submit a chat job and print its answer as it streams."""
    from sidecar.errors import SidecarError
    from sidecar.jobs import JobsClient

    try:
        with JobsClient(url, api_key=api_key) as client:
            job_input = {"message": message, **({"system": system} if system else {})}
            job = client.submit("chat", job_input, model=model, max_tokens=max_tokens)
            final = _print_stream(client, job["id"])
    except SidecarError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    usage = final.get("usage") or {}
    console.print(
        f"\n[dim]{final['status']} · {final['model']} · {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out · ${final.get('cost_usd', 0):.6f}[/dim]"
    )
    if final["status"] != "succeeded":
        raise typer.Exit(1)


def _print_stream(client: Any, job_id: str) -> dict[str, Any]:
    out = Console(highlight=False)
    for event in client.events(job_id):
        if event.event == "token":
            out.print(event.data["text"], end="")
        elif event.event == "reset":
            out.print("\n[yellow]↻ retrying…[/yellow]")
        elif event.event == "done":
            done: dict[str, Any] = event.data
            return done
    raise RuntimeError("stream ended without done")


@app.command()
def batch(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="JSON lines, one job body per line (as for POST /api/jobs)."),
    url: str | None = typer.Option(None, help="Sidecar API (default $SIDECAR_URL or local)."),
    mode: str = typer.Option("queue", help="queue or anthropic_batch (half price, slower)."),
    name: str | None = typer.Option(None, help="A name for the batch and its report."),
    wait: bool = typer.Option(False, "--wait", help="Follow progress until the batch ends."),
    api_key: str | None = typer.Option(None, envvar="SIDECAR_API_KEY", help="Client key."),
) -> None:
    """Submit a batch of jobs; with --wait, show progress and exit 1 if any job failed."""
    from sidecar.batches import BatchClient, follow, read_jobs
    from sidecar.errors import SidecarError

    try:
        client = BatchClient(url, api_key)
        created = client.create(read_jobs(file), mode, name)
        console.print(f"batch [bold]{created['id']}[/bold]: {created['total']} jobs ({mode})")
        if not wait:
            typer.echo(created["id"])
            return
        final = follow(client, created, console)
    except SidecarError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    counts = final["counts"]
    console.print(f"{final['status']}: {counts['succeeded']} succeeded, {counts['failed']} "
                  f"failed, {counts['cancelled']} cancelled · ${final['cost_usd']:.4f}")
    typer.echo(final["id"])
    if counts["failed"] or counts["cancelled"]:
        raise typer.Exit(1)


@app.command()
def report(
    batch_id: str = typer.Argument(...),
    format: str = typer.Option("md", "--format", "-f", help="md, json or csv."),
    url: str | None = typer.Option(None, help="Sidecar API (default $SIDECAR_URL or local)."),
    api_key: str | None = typer.Option(None, envvar="SIDECAR_API_KEY", help="Client key."),
) -> None:
    """Print a batch's drought report."""
    from sidecar.batches import BatchClient
    from sidecar.errors import SidecarError

    try:
        typer.echo(BatchClient(url, api_key).report(batch_id, format))
    except SidecarError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None


@app.command()
def simulator(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8900),
    rpm: int = typer.Option(DEFAULT_TIER["rpm"],
                           help="Requests per minute, reported and enforced (0 = unlimited)."),
    itpm: int = typer.Option(DEFAULT_TIER["itpm"],
                           help="Input tokens per minute, reported and enforced (0 = unlimited)."),
    otpm: int = typer.Option(DEFAULT_TIER["otpm"],
                           help="Output tokens per minute, reported and enforced (0 = unlimited)."),
    ttft_ms: float = typer.Option(50.0, help="Time to first token, milliseconds."),
    tokens_per_second: float = typer.Option(200.0, help="Streaming speed of each answer."),
    seed: int = typer.Option(0, help="Seed of the deterministic answers."),
    fail_529_rate: float = typer.Option(0.0, help="Share of calls answered 529 overloaded."),
    fail_500_rate: float = typer.Option(0.0, help="Share of calls answered 500."),
    batch_seconds_per_request: float = typer.Option(0.05, help="Message Batches speed."),
    reply_tokens: int = typer.Option(0, help="Length of every answer (0 = varies by request)."),
    api_key: str | None = typer.Option(None, help="Only accept this x-api-key."),
) -> None:
    """Run the Claude simulator: the Anthropic Messages API on loopback, for keyless runs."""
    from simulator.app import run
    from simulator.config import SimConfig

    run(
        SimConfig(
            host=host, port=port, rpm=rpm, itpm=itpm, otpm=otpm, ttft_ms=ttft_ms,
            tokens_per_second=tokens_per_second, seed=seed, fail_529_rate=fail_529_rate,
            fail_500_rate=fail_500_rate, batch_seconds_per_request=batch_seconds_per_request,
            reply_tokens=reply_tokens, api_key=api_key,
        )
    )
