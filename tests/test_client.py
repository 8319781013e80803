"""`SidecarClient` against the real simulator on loopback: answers, streams, cache, retries,
errors, lifecycle and health, each checked through what the simulator actually received."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.models import ALIASES
from shared.pricing import cost_usd
from shared.settings import get_settings
from sidecar.client import Model, RateLimitError, SidecarClient, SidecarError, StreamChunk
from tests.simulator_fixtures import SimProcess, free_port, start_simulator

pytestmark = pytest.mark.integration

Factory = Callable[..., SidecarClient]
PROMPT = "How should farmers plan for a dry spring?"


@pytest.fixture(scope="module")
def fast_simulator() -> Iterator[SimProcess]:
    sim = start_simulator(ttft_ms=10, tokens_per_second=500)
    yield sim
    sim.stop()


@pytest.fixture
def sim(fast_simulator: SimProcess) -> SimProcess:
    """The module's simulator with no faults queued and zeroed counters."""
    fast_simulator.reset()
    return fast_simulator


@pytest.fixture
def make_client(sim: SimProcess) -> Iterator[Factory]:
    """Clients pointed at the simulator, closed after the test."""
    made: list[SidecarClient] = []

    def make(**options: Any) -> SidecarClient:
        options.setdefault("api_key", "test-key")
        options.setdefault("base_url", sim.url)
        client = SidecarClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[pytest.MonkeyPatch]:
    """Settings read afresh from an environment without a Claude key (and no stray .env)."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CLAUDE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def upstream(sim: SimProcess, status: str | None = None) -> int:
    """How many `/v1/messages` calls reached the simulator (with that status, if given)."""
    counts: dict[str, int] = sim.stats()["requests"].get("/v1/messages", {})
    return sum(counts.values()) if status is None else counts.get(status, 0)


def joined(chunks: list[StreamChunk]) -> str:
    return "".join(chunk.content for chunk in chunks)


# --- construction ------------------------------------------------------------------------


def test_model_enum_holds_current_ids() -> None:
    members = [Model.OPUS, Model.SONNET, Model.HAIKU]
    assert members == [ALIASES["opus"], ALIASES["sonnet"], ALIASES["haiku"]]
    assert Model("claude-haiku-5-5") is Model.HAIKU and isinstance(Model.OPUS, str)


@pytest.mark.parametrize(
    ("model", "expected"),
    [(Model.OPUS, "claude-opus-5-5"), ("haiku", "claude-haiku-5-5"),
     ("claude-sonnet-5-5-20270101", "claude-sonnet-5-5-20270101")],
)
def test_model_accepts_enum_alias_or_id(model: Model | str, expected: str) -> None:
    assert SidecarClient(api_key="k", base_url="http://127.0.0.1:9", model=model).model == expected


@pytest.mark.parametrize("bad", ["gpt-4", "claude-3-opus-20240229"])
def test_bad_model_name_is_refused_by_name(bad: str) -> None:
    with pytest.raises(SidecarError, match=bad):
        SidecarClient(api_key="k", base_url="http://127.0.0.1:9", model=bad)
    client = SidecarClient(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(SidecarError, match=bad):
        client.chat("hi", model=bad)


def test_missing_key_is_a_clear_error(clean_settings: pytest.MonkeyPatch) -> None:
    with pytest.raises(SidecarError, match="ANTHROPIC_API_KEY"):
        SidecarClient()


def test_key_and_url_default_to_settings(
    clean_settings: pytest.MonkeyPatch, sim: SimProcess
) -> None:
    clean_settings.setenv("ANTHROPIC_API_KEY", "from-settings")
    clean_settings.setenv("ANTHROPIC_BASE_URL", sim.url)
    with SidecarClient(cache_ttl=0) as client:
        assert client.base_url == sim.url
        assert client.chat(PROMPT, max_tokens=20)
    assert upstream(sim, "200") == 1


# --- answers -------------------------------------------------------------------------------


def test_chat_answers_and_records_usage_and_cost(make_client: Factory) -> None:
    client = make_client(model="haiku")
    answer = client.chat(PROMPT, max_tokens=60)
    assert answer.strip()
    usage = client.last_usage
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert client.total_cost_usd > 0
    assert client.total_cost_usd == pytest.approx(cost_usd("claude-haiku-5-5", usage))
    first_cost = client.total_cost_usd
    client.chat("Something else entirely", max_tokens=60)
    assert client.total_cost_usd > first_cost


async def test_chat_async(sim: SimProcess) -> None:
    async with SidecarClient(api_key="k", base_url=sim.url, cache_ttl=0) as client:
        answer = await client.chat_async(PROMPT, max_tokens=40)
        assert answer.strip() and client.total_cost_usd > 0
    with SidecarClient(api_key="k", base_url=sim.url, cache_ttl=0) as sync_client:
        assert sync_client.chat(PROMPT, max_tokens=40) == answer


def test_stream_joins_to_the_plain_answer(make_client: Factory) -> None:
    client = make_client(cache_ttl=0)
    answer = client.chat(PROMPT, system="Be practical.", max_tokens=80)
    plain_usage = client.last_usage
    chunks = list(client.chat_stream(PROMPT, system="Be practical.", max_tokens=80))
    assert len(chunks) > 2 and joined(chunks) == answer
    assert [chunk.is_final for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    final = chunks[-1]
    assert final.content == "" and final.usage == plain_usage == client.last_usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_stream_async(sim: SimProcess) -> None:
    async with SidecarClient(api_key="k", base_url=sim.url, cache_ttl=0) as client:
        answer = await client.chat_async(PROMPT, max_tokens=60)
        chunks = [chunk async for chunk in client.chat_stream_async(PROMPT, max_tokens=60)]
    assert len(chunks) > 2 and joined(chunks) == answer
    assert chunks[-1].is_final and chunks[-1].usage is not None
    assert chunks[-1].usage["output_tokens"] > 0


def test_history_and_system_are_sent(make_client: Factory, sim: SimProcess) -> None:
    client = make_client(cache_ttl=0)
    bare = client.chat(PROMPT, max_tokens=40)
    bare_input = client.last_usage["input_tokens"] if client.last_usage else 0
    history = [
        {"role": "user", "content": "We run sheep near the river, rainfall is down 40 percent."},
        {"role": "assistant", "content": "Then fodder reserves and water carting matter most."},
    ]
    with_context = client.chat(PROMPT, system="You advise farmers.", history=history,
                               max_tokens=40)
    assert with_context != bare
    assert client.last_usage is not None and client.last_usage["input_tokens"] > bare_input + 20
    with pytest.raises(SidecarError, match=r"history\[0\]"):
        client.chat(PROMPT, history=[{"role": "system", "content": "x"}])
    assert upstream(sim) == 2


def test_invalid_arguments_fail_before_any_call(make_client: Factory, sim: SimProcess) -> None:
    client = make_client()
    with pytest.raises(SidecarError, match="max_tokens"):
        client.chat(PROMPT, max_tokens=0)
    with pytest.raises(SidecarError, match="max_tokens"):
        client.chat_stream(PROMPT, max_tokens=10**9)
    with pytest.raises(SidecarError, match="message"):
        client.chat("   ")
    assert upstream(sim) == 0


# --- cache ---------------------------------------------------------------------------------


def test_cache_answers_repeats_without_calling_claude(
    make_client: Factory, sim: SimProcess
) -> None:
    client = make_client()
    answer = client.chat(PROMPT, max_tokens=30)
    usage = client.last_usage
    assert client.chat(PROMPT, max_tokens=30) == answer
    assert upstream(sim) == 1 and client.last_usage == usage
    client.chat(PROMPT, max_tokens=31)  # any difference in the request is another key
    client.chat(PROMPT, max_tokens=30, temperature=0.5)
    assert upstream(sim) == 3
    list(client.chat_stream(PROMPT, max_tokens=30))  # streaming bypasses the cache
    assert upstream(sim) == 4
    client.clear_cache()
    client.chat(PROMPT, max_tokens=30)
    assert upstream(sim) == 5


async def test_async_chat_shares_the_cache(sim: SimProcess) -> None:
    async with SidecarClient(api_key="k", base_url=sim.url) as client:
        answer = client.chat(PROMPT, max_tokens=30)
        assert await client.chat_async(PROMPT, max_tokens=30) == answer
    assert upstream(sim) == 1


def test_cache_belongs_to_the_instance(make_client: Factory, sim: SimProcess) -> None:
    make_client().chat(PROMPT, max_tokens=30)
    make_client().chat(PROMPT, max_tokens=30)
    assert upstream(sim) == 2


def test_cache_entries_expire(make_client: Factory, sim: SimProcess) -> None:
    client = make_client(cache_ttl=0.3)
    client.chat(PROMPT, max_tokens=30)
    client.chat(PROMPT, max_tokens=30)
    assert upstream(sim) == 1
    time.sleep(0.4)
    client.chat(PROMPT, max_tokens=30)
    assert upstream(sim) == 2


def test_cache_ttl_zero_disables_the_cache(make_client: Factory, sim: SimProcess) -> None:
    client = make_client(cache_ttl=0)
    client.chat(PROMPT, max_tokens=30)
    client.chat(PROMPT, max_tokens=30)
    assert upstream(sim) == 2


# --- retries and errors ----------------------------------------------------------------------


def test_one_529_is_retried(make_client: Factory, sim: SimProcess) -> None:
    sim.fault(kind="status", status=529, count=1)
    assert make_client().chat(PROMPT, max_tokens=30)
    assert (upstream(sim, "529"), upstream(sim, "200")) == (1, 1)


async def test_one_529_is_retried_async(sim: SimProcess) -> None:
    sim.fault(kind="status", status=529, count=1)
    async with SidecarClient(api_key="k", base_url=sim.url) as client:
        assert await client.chat_async(PROMPT, max_tokens=30)
    assert (upstream(sim, "529"), upstream(sim, "200")) == (1, 1)


def test_persistent_429_raises_rate_limit_error(make_client: Factory, sim: SimProcess) -> None:
    sim.fault(kind="status", status=429, count=5, retry_after=1)
    client = make_client(max_retries=1)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        client.chat(PROMPT, max_tokens=30)
    err = caught.value
    assert isinstance(err, SidecarError)
    assert (err.retry_after, err.status, err.error_type) == (1.0, 429, "rate_limit_error")
    assert upstream(sim, "429") == 2  # the first try and one retry
    assert time.monotonic() - started >= 0.95  # the retry waited as retry-after asked


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "invalid_request_error"), (401, "authentication_error"),
     (403, "permission_error"), (404, "not_found_error")],
)
def test_client_errors_are_not_retried(
    make_client: Factory, sim: SimProcess, status: int, error_type: str
) -> None:
    sim.fault(kind="status", status=status, count=3)
    with pytest.raises(SidecarError) as caught:
        make_client().chat(PROMPT, max_tokens=30)
    assert not isinstance(caught.value, RateLimitError)
    assert (caught.value.status, caught.value.error_type) == (status, error_type)
    assert upstream(sim) == 1


def test_stream_dropped_before_any_text_is_retried(make_client: Factory, sim: SimProcess) -> None:
    client = make_client(cache_ttl=0)
    answer = client.chat(PROMPT, max_tokens=40)
    sim.fault(kind="drop", count=1, after_tokens=0)
    chunks = list(client.chat_stream(PROMPT, max_tokens=40))
    assert joined(chunks) == answer and chunks[-1].is_final
    assert upstream(sim) == 3  # the plain call, the dropped stream, the retried one


async def test_async_stream_dropped_before_any_text_is_retried(sim: SimProcess) -> None:
    sim.fault(kind="drop", count=1, after_tokens=0)
    async with SidecarClient(api_key="k", base_url=sim.url) as client:
        chunks = [chunk async for chunk in client.chat_stream_async(PROMPT, max_tokens=40)]
    assert joined(chunks) and chunks[-1].is_final
    assert upstream(sim) == 2


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [({"kind": "drop"}, "connection_error"),
     ({"kind": "stream_error", "error_type": "overloaded_error"}, "overloaded_error")],
)
def test_stream_failing_after_text_raises(
    make_client: Factory, sim: SimProcess, fault: dict[str, Any], error_type: str
) -> None:
    sim.fault(count=1, after_tokens=3, **fault)
    received: list[StreamChunk] = []
    with pytest.raises(SidecarError) as caught:
        for chunk in make_client().chat_stream(PROMPT, max_tokens=60):
            received.append(chunk)
    assert joined(received) and not any(chunk.is_final for chunk in received)
    assert caught.value.error_type == error_type
    assert upstream(sim) == 1  # text had gone out: no retry


async def test_async_stream_failing_after_text_raises(sim: SimProcess) -> None:
    sim.fault(kind="drop", count=1, after_tokens=3)
    received: list[StreamChunk] = []
    async with SidecarClient(api_key="k", base_url=sim.url) as client:
        with pytest.raises(SidecarError):
            async for chunk in client.chat_stream_async(PROMPT, max_tokens=60):
                received.append(chunk)
    assert joined(received) and upstream(sim) == 1


# --- lifecycle and health ----------------------------------------------------------------------


def test_context_manager_closes_the_sdk_client(sim: SimProcess) -> None:
    with SidecarClient(api_key="k", base_url=sim.url) as client:
        client.chat(PROMPT, max_tokens=20)
        sdk = client._sync
    assert sdk is not None and sdk.is_closed()
    with pytest.raises(SidecarError, match="closed"):
        client.chat(PROMPT, max_tokens=20)  # not even from the cache


async def test_async_context_manager_closes_both_sdk_clients(sim: SimProcess) -> None:
    async with SidecarClient(api_key="k", base_url=sim.url, cache_ttl=0) as client:
        await client.chat_async(PROMPT, max_tokens=20)
        client.chat(PROMPT, max_tokens=20)
        sdks = (client._async, client._sync)
    assert all(sdk is not None and sdk.is_closed() for sdk in sdks)


async def test_health_ok_against_the_simulator(sim: SimProcess) -> None:
    async with SidecarClient(api_key="k", base_url=sim.url, model="opus") as client:
        report = client.health()
        assert report["status"] == "ok" and report["model"] == "claude-opus-5-5"
        assert report["latency_ms"] >= 0
        assert (await client.health_async())["status"] == "ok"
    assert sim.stats()["requests"]["/v1/messages/count_tokens"] == {"200": 2}


def test_health_reports_error_against_a_closed_port() -> None:
    client = SidecarClient(api_key="k", base_url=f"http://127.0.0.1:{free_port()}")
    report = client.health()
    assert report["status"] == "error" and report["error"]
    client.close()
    assert client.health()["status"] == "error"  # even a closed client answers
