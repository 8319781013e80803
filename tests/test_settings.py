from __future__ import annotations

import hashlib

import pytest

from shared import models, pricing
from shared.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("CLAUDE_MODEL", "SERVER_PORT", "REDIS_URL", "CORS_ORIGINS", "SIDECAR_API_KEYS",
                 "LOG_LEVEL", "MODEL_PRICES", "ANTHROPIC_API_KEY", "TIMEOUT", "ENABLE_CORS",
                 "REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_SENTINEL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_seed_defaults() -> None:
    s = load_settings()
    assert (s.claude_model, s.server_port, s.timeout, s.max_retries) == ("sonnet", 8000, 30, 3)
    assert s.redis_enabled and s.enable_cors and s.cache_ttl_minutes == 60
    assert s.redis_url == "redis://localhost:6379/0" and s.log_level == "INFO"
    assert s.model_id == "claude-sonnet-5-5"
    assert s.api_key() is None


@pytest.mark.parametrize(
    ("alias", "model_id"),
    [("opus", "claude-opus-5-5"), ("HAIKU", "claude-haiku-5-5"),
     ("claude-sonnet-5-5", "claude-sonnet-5-5")],
)
def test_model_aliases(monkeypatch: pytest.MonkeyPatch, alias: str, model_id: str) -> None:
    monkeypatch.setenv("CLAUDE_MODEL", alias)
    assert load_settings().model_id == model_id


def test_only_priced_models_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_MODEL", "claude-x-9")
    with pytest.raises(SettingsError, match="CLAUDE_MODEL"):
        load_settings()
    monkeypatch.setenv("MODEL_PRICES", '{"claude-x-9": {"input": 1, "output": 2}}')
    assert load_settings().model_id == "claude-x-9"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SERVER_PORT", "eighty"),
        ("SERVER_PORT", "70000"),
        ("CLAUDE_MODEL", "gpt-4"),
        ("CLAUDE_MODEL", "claude-3-5-sonnet-20241022"),
        ("REDIS_URL", "http://x"),
        ("LOG_LEVEL", "loud"),
        ("TIMEOUT", "-1"),
        ("MODEL_PRICES", "{not json"),
        ("REDIS_SENTINELS", "sentinel-0:port"),
        ("REDIS_SENTINELS", "sentinel://sentinel-0:26379"),
        ("REDIS_SENTINELS", "a:1,::1"),
        ("REDIS_SENTINELS", "a:70000"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises((SettingsError, ValueError)) as info:
        load_settings()
    assert name in str(info.value)


def test_sentinels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().redis_sentinels == []
    monkeypatch.setenv("REDIS_SENTINELS", " ")
    assert load_settings().redis_sentinels == []
    monkeypatch.setenv("REDIS_SENTINELS", "redis-headless:26379, 10.0.0.7:5000,[fd00::7]:26380,s3")
    monkeypatch.setenv("REDIS_MASTER_NAME", "mymaster")
    s = load_settings()
    assert [(a.host, a.port) for a in s.redis_sentinels] == [
        ("redis-headless", 26379), ("10.0.0.7", 5000), ("fd00::7", 26380), ("s3", 26379)]
    assert s.redis_master_name == "mymaster"


@pytest.mark.parametrize(
    ("master", "url", "named"),
    [("", "redis://x/0", "REDIS_MASTER_NAME"), ("my master", "redis://x/0", "REDIS_MASTER_NAME"),
     ("sidecar", "rediss://x/0", "REDIS_URL")],
)
def test_sentinels_need_a_master_name_and_plain_redis(
    monkeypatch: pytest.MonkeyPatch, master: str, url: str, named: str
) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "s1:26379")
    monkeypatch.setenv("REDIS_MASTER_NAME", master)
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("SIDECAR_API_KEYS", f"farm:{FARM}, {BARE}")
    s = load_settings()
    assert s.cors_origins == ["http://a.example", "http://b.example"]
    assert [(k.tenant, k.secret) for k in s.api_keys()] == \
        [("farm", FARM), ("key-" + hashlib.sha256(BARE.encode()).hexdigest()[:12], BARE)]


FARM = "3f9c2a7be1d04c8e9a6b5d7f0e2c4a1b"
BARE = "b7e4d1a9c3f60e5b2d8a4c7f1e9b3d6a0c5f"


@pytest.mark.parametrize("keys", ["farm:short", "farm:change-me-change-me-change-me-00",
                                  "x" * 40, "bad tenant:" + FARM, "k1"])
def test_weak_or_template_keys_are_refused(monkeypatch: pytest.MonkeyPatch, keys: str) -> None:
    monkeypatch.setenv("SIDECAR_API_KEYS", keys)
    with pytest.raises(SettingsError, match="SIDECAR_API_KEYS") as info:
        load_settings()
    assert "change-me" not in str(info.value) and FARM not in str(info.value)


def test_no_keys_fails_closed_unless_auth_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"SIDECAR_API_KEYS.*SIDECAR_AUTH"):
        load_settings().require_auth()
    monkeypatch.setenv("SIDECAR_AUTH", "off")
    load_settings().require_auth()


def test_wildcard_cors_refused_with_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "*")
    monkeypatch.setenv("SIDECAR_API_KEYS", FARM)
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        load_settings()


def test_price_table_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert pricing.cost_usd("claude-sonnet-5-5", usage) == 18.0
    assert pricing.cost_usd("claude-sonnet-5-5", usage, batch=True) == 9.0
    cached = {"input_tokens": 0, "cache_read_input_tokens": 1_000_000, "output_tokens": 0}
    assert pricing.cost_usd("claude-sonnet-5-5", cached) == pytest.approx(0.3)
    monkeypatch.setenv("MODEL_PRICES", '{"claude-sonnet-5-5": {"input": 1, "output": 2}}')
    s = load_settings()
    assert pricing.cost_usd(s.model_id, usage, overrides=s.model_prices) == 3.0
    # A new snapshot of a known family is priced like its family.
    assert pricing.cost_usd("claude-haiku-5-5-20270101", usage) == 6.0


def test_resolve_rejects_retired_ids() -> None:
    with pytest.raises(ValueError, match="retired"):
        models.resolve("claude-3-5-haiku-20241022")
