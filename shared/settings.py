"""All configuration, read once from the environment (and an optional `.env`).

Nothing else in Sidecar reads `os.environ`: processes call `get_settings()` once and pass the
result down. Invalid values stop the process at start-up with a message naming the variable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared import models
from shared.models import Price

CommaList = Annotated[list[str], NoDecode]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(ValueError):
    """Raised at start-up when a variable holds a value Sidecar cannot use."""


class Budget(BaseModel):
    """A tenant's spending limits in US dollars; None is no limit for that window."""

    model_config = ConfigDict(extra="forbid")

    usd_per_day: float | None = Field(None, ge=0)
    usd_per_month: float | None = Field(None, ge=0)


MIN_SECRET_LENGTH = 32
# Values copied from templates and examples: a deployment that kept one is not keyed at all.
TEMPLATE_SECRETS = ("change-me", "changeme", "replace-me", "replaceme", "your-key", "secret",
                    "example", "xxxxxxxx", "placeholder")
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class SentinelAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


SENTINEL_PORT = 26379
SENTINEL = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?")


def parse_sentinel(item: str) -> SentinelAddress:
    """`host:port`, `host` (Sentinel's own port, 26379) or `[IPv6 address]:port`."""
    match = SENTINEL.fullmatch(item)
    port = int(match["port"] or SENTINEL_PORT) if match else 0
    if match is None or not 0 < port < 65536:
        raise ValueError(f"{item[:100]!r} is not host:port (e.g. redis-headless:26379; an IPv6 "
                         "address in brackets)")
    return SentinelAddress(match["v6"] or match["host"], port)


@dataclass(frozen=True)
class ApiKey:
    tenant: str
    secret: str = field(repr=False)


def parse_api_key(item: str) -> ApiKey:
    """`tenant:secret`, or a bare secret (its tenant then named by the secret's digest)."""
    tenant, sep, secret = item.partition(":")
    if not sep:
        tenant, secret = "key-" + sha256(item.encode()).hexdigest()[:12], item
    if not TENANT_NAME.match(tenant):
        raise ValueError(f"tenant name {tenant[:64]!r} must be 1-64 letters, digits, '_', '.', '-'")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the secret of tenant {tenant!r} is shorter than {MIN_SECRET_LENGTH} "
                         "characters (make one with: openssl rand -hex 32)")
    if any(word in secret.lower() for word in TEMPLATE_SECRETS) or len(set(secret)) < 8:
        raise ValueError(f"the secret of tenant {tenant!r} is a template value, not a secret")
    return ApiKey(tenant, secret)


class Settings(BaseSettings):
    """Sidecar's settings; each field is the environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- Claude ---
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    claude_model: str = "sonnet"
    timeout: float = Field(30.0, gt=0, le=3600)
    max_retries: int = Field(3, ge=0, le=20)
    model_prices: Annotated[dict[str, Price], NoDecode] = Field(default_factory=dict)

    # --- HTTP front ---
    server_port: int = Field(8000, ge=1, le=65535)
    enable_cors: bool = True
    cors_origins: CommaList = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173"]
    )
    sidecar_api_keys: CommaList = Field(default_factory=list)
    sidecar_auth: Literal["on", "off"] = "on"
    metrics_token: SecretStr | None = None
    max_streams_per_tenant: int = Field(500, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_batch_body_bytes: int = Field(33_554_432, ge=1024)

    # --- Redis ---
    redis_enabled: bool = True
    redis_url: str = "redis://localhost:6379/0"
    redis_sentinels: Annotated[list[SentinelAddress], NoDecode] = Field(default_factory=list)
    redis_master_name: str = ""
    redis_sentinel_password: SecretStr | None = None
    cache_ttl_minutes: int = Field(60, ge=0)
    cache_scope: Literal["tenant", "global"] = "tenant"

    # --- Jobs ---
    job_ttl_hours: float = Field(24, gt=0)
    job_max_attempts: int = Field(3, ge=1, le=20)
    job_lease_seconds: float = Field(20, ge=2, le=600)
    worker_concurrency: int = Field(200, ge=1, le=5000)
    worker_metrics_port: int = Field(9100, ge=0, le=65535)
    worker_metrics_host: str = "0.0.0.0"
    worker_shutdown_grace_seconds: float = Field(600, ge=0)
    sse_keepalive_seconds: float = Field(15, gt=0)

    # --- Rate limits (issue: shared limiter) ---
    limiter_enabled: bool = True
    rate_limits: Annotated[dict[str, dict[str, int]], NoDecode] = Field(default_factory=dict)
    max_in_flight: int = Field(200, ge=0)
    interactive_reserve: float = Field(0.2, ge=0.0, lt=1.0)
    queue_deadline_interactive_seconds: float = Field(120, gt=0)
    queue_deadline_batch_seconds: float = Field(43_200, gt=0)
    defer_after_seconds: float = Field(2.0, ge=0)
    count_tokens_above: int = Field(20_000, ge=0)
    client_rpm: int = Field(120, ge=0)
    client_tpm: int = Field(200_000, ge=0)

    # --- Tenants' budgets and queue caps ---
    budgets: Annotated[dict[str, Budget], NoDecode] = Field(default_factory=dict)
    max_queued_jobs_per_tenant: int = Field(20_000, ge=1)
    max_queued_jobs: int = Field(100_000, ge=1)

    # --- Batches and the nightly drought report ---
    upstream_batch_poll_seconds: float = Field(30, gt=0)
    nightly_enabled: bool = False
    nightly_cron: str = "0 2 * * *"
    nightly_timezone: str = "Pacific/Auckland"
    nightly_regions: str = ""
    nightly_mode: Literal["queue", "anthropic_batch"] = "anthropic_batch"
    nightly_tenant: str = ""  # whose key reads the nightly reports; default the first tenant

    # --- Flower (read by Flower itself too: both names are Flower options) ---
    flower_basic_auth: SecretStr | None = None
    flower_port: int = Field(5555, ge=1, le=65535)

    # --- Local stack (`sidecar up`) and the CLI ---
    sidecar_url: str | None = None
    simulator_port: int = Field(8900, ge=1, le=65535)

    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", "sidecar_api_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [parse_sentinel(item.strip()) for item in value.split(",") if item.strip()]
        return [parse_sentinel(item) if isinstance(item, str) else item for item in value]

    @field_validator("sidecar_api_keys")
    @classmethod
    def _strong_keys(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_api_key(item)  # raises naming what is wrong, never the secret itself
        return value

    @field_validator("metrics_token", "flower_basic_auth", "anthropic_api_key",
                     "redis_sentinel_password", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sidecar_auth", mode="before")
    @classmethod
    def _lower_auth(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("nightly_cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("must be a cron expression of five fields: m h dom mon dow")
        return value

    @field_validator("nightly_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if urlparse(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("anthropic_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and urlparse(value).scheme not in {"http", "https"}:
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("model_prices", "rate_limits", "budgets", mode="before")
    @classmethod
    def _prices_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not JSON ({exc.msg})") from None
        return value

    @model_validator(mode="after")
    def _known_default_model(self) -> Settings:
        try:
            models.resolve(self.claude_model, self.model_prices)
        except ValueError as exc:
            raise ValueError(f"CLAUDE_MODEL: {exc}") from None
        return self

    @model_validator(mode="after")
    def _sentinels_complete(self) -> Settings:
        # A default master name would meet a Sentinel that calls its master something else
        # ("mymaster" in the Bitnami chart) with "no master found" at the first command; asked
        # for here, the mistake stops the process at start-up instead.
        if not self.redis_sentinels:
            return self
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.redis_master_name):
            raise ValueError("REDIS_MASTER_NAME must be set when REDIS_SENTINELS is: the name the "
                             "sentinels monitor (`sentinel monitor <name> ...`; letters, digits, "
                             "'.', '_', '-')")
        if urlparse(self.redis_url).scheme != "redis":
            raise ValueError("REDIS_URL must be a redis:// URL when REDIS_SENTINELS is set (its "
                             "host is ignored; TLS through Sentinel is not supported)")
        return self

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Settings:
        # Browsers refuse `*` with credentials, and an open CORS policy on a keyed API is a leak.
        if self.enable_cors and "*" in self.cors_origins and self.sidecar_api_keys:
            raise ValueError("CORS_ORIGINS may not contain '*' when SIDECAR_API_KEYS is set")
        return self

    @property
    def model_id(self) -> str:
        """The default model's full id."""
        return models.resolve(self.claude_model, self.model_prices)

    @property
    def auth_off(self) -> bool:
        return self.sidecar_auth == "off"

    def api_keys(self) -> list[ApiKey]:
        """The service keys, each with its tenant."""
        return [parse_api_key(item) for item in self.sidecar_api_keys]

    @property
    def nightly_owner(self) -> str:
        """The tenant the nightly batches belong to."""
        if self.nightly_tenant:
            return self.nightly_tenant
        keys = self.api_keys()
        return keys[0].tenant if keys else "local"

    def require_auth(self) -> None:
        """Fail closed: an API with no keys starts only when an operator turned auth off."""
        if not self.sidecar_api_keys and not self.auth_off:
            raise SettingsError(
                "no API keys: set SIDECAR_API_KEYS=tenant:secret,... (secrets of at least "
                f"{MIN_SECRET_LENGTH} characters), or SIDECAR_AUTH=off to run with every route "
                "open (local development only)")

    def queue_deadline(self, priority: str) -> float:
        """How long a job of this priority may wait for capacity before failing rate_limited."""
        if priority == "batch":
            return self.queue_deadline_batch_seconds
        return self.queue_deadline_interactive_seconds

    @property
    def cache_ttl_seconds(self) -> int:
        return self.cache_ttl_minutes * 60

    @property
    def job_ttl_seconds(self) -> int:
        return int(self.job_ttl_hours * 3600)

    def api_key(self) -> str | None:
        """The Claude key, unwrapped only where a client is built."""
        return self.anthropic_api_key.get_secret_value() if self.anthropic_api_key else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's error into one naming the environment variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
