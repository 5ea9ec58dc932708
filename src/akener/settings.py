"""Settings, read once from the environment (prefix ``AKENER_``) and a local ``.env`` file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from akener.durations import parse_duration
from akener.verify.throttle import parse_networks

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./akener.db"

# Values people paste from examples (the docs' own example included); never a server secret.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "secret",
        "secretkey",
        "secret-key",
        "secret_key",
        "mysecret",
        "supersecret",
        "password",
        "please-change-me",
        "replace-me",
        "your-secret-key",
        "your_secret_key",
        "your-secret-here",
        "insecure",
        "example",
        "test",
        "dev",
        "akener",
        "akener-secret-key",
        "<a long random secret>",
    }
)
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Every setting akener reads; see docs/configuration.md for each one."""

    model_config = SettingsConfigDict(
        env_prefix="AKENER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL: where the change listener connects (LISTEN needs a session of its own, so not
    # through a transaction-pooling PgBouncer); None: the main URL (docs/scaling.md).
    listen_database_url: str | None = None
    secret_key: SecretStr | None = None
    secret_key_version: int = Field(default=1, ge=1)
    # Earlier secrets, "version:secret" comma separated, so keys digested with them still verify.
    old_secret_keys: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    server: str = "granian"  # or "uvicorn"; see bench/README.md for why granian is the default
    log_level: str = "info"
    # The address people reach akener at (https://keys.example.com); redirects are built from it,
    # never from the request's Host header. Unset: redirects are relative paths.
    public_url: str | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Dashboard sign-in (docs/dashboard.md).
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_lockout_minutes: float = Field(default=15, gt=0)
    # None: Secure cookies whenever the dashboard is reached over https. True behind a TLS proxy.
    secure_cookies: bool | None = None
    # Verification (docs/verification.md): cache bounds, usage flushing, listener health checks.
    cache_max_keys: int = Field(default=100_000, ge=1)
    cache_max_unknown: int = Field(default=65_536, ge=1)
    usage_flush_seconds: float = Field(default=10.0, gt=0, le=3600)
    listener_check_seconds: float = Field(default=5.0, gt=0, le=300)
    # Database timeouts, enforced by the client (driver and pool), so they hold through
    # PgBouncer and against a server that stops answering (docs/operations.md).
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_query_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # PostgreSQL: pooled connections per process, never exceeded (the listener is one more).
    db_pool_size: int = Field(default=2, ge=1, le=100)
    # PostgreSQL: keep prepared statements on each connection. False behind a PgBouncer in
    # transaction mode that does not track them (before 1.21, or max_prepared_statements = 0).
    db_statement_cache: bool = True
    # PostgreSQL: how long ``akener serve`` waits for the database to answer at start-up.
    db_startup_wait_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Retention (docs/configuration.md): a duration such as 365d; 0 or "none" keeps forever.
    retention_audit: timedelta | None = timedelta(days=365)
    retention_usage: timedelta | None = timedelta(days=400)
    retention_sessions: timedelta | None = timedelta(days=1)
    # Delivered (or given-up) events, kept as a change log this long (docs/events.md).
    retention_events: timedelta | None = timedelta(days=30)
    # How often each server process prunes; 0 turns the job off (then run `akener db prune`).
    prune_interval: timedelta | None = timedelta(hours=1)

    @field_validator(
        "retention_audit",
        "retention_usage",
        "retention_sessions",
        "retention_events",
        "prune_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any, info: Any) -> Any:
        """Durations go through the one parser: a unit is required; 0 or none means none."""
        if not isinstance(value, str):
            return value
        if value.strip().lower() == "none":
            return None
        name = f"AKENER_{info.field_name.upper()}"
        found = parse_duration(value, name, allow_zero=True, minimum=None)
        return found or None

    # Failed key checks that needed the database, per client address and window (0: no limit).
    verify_max_failures: int = Field(default=100, ge=0)
    verify_failure_window: float = Field(default=10.0, gt=0, le=3600)
    # Addresses (or networks) whose forwarding headers are believed, comma separated.
    trusted_proxies: str = "127.0.0.0/8, ::1"
    # Redis for rate-limit windows shared by every process (docs/limits.md); None: per process.
    redis_url: str | None = None
    # Redis unreachable: admit rate-limited keys ("allow") or answer 503 ("deny").
    rate_limits_on_store_error: Literal["allow", "deny"] = "allow"
    # Credits are spent in the database, never in Redis. When that write fails or waits past
    # the query timeout: answer 503 ("deny") or admit without spending ("allow"; docs/limits.md).
    credits_on_store_error: Literal["allow", "deny"] = "deny"
    # PostgreSQL: where the per-host key change counter lives (None: /dev/shm, else the temp dir).
    change_counter_dir: str | None = None

    # The change stream (docs/verification.md): heartbeat interval, and how often each process
    # reads the change log when nothing woke it (PostgreSQL NOTIFY and this host's commits do).
    changes_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    changes_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    # Metrics and health (docs/metrics.md). Off: /metrics answers 404 and nothing is recorded.
    metrics_enabled: bool = True
    # Socket addresses (or networks) that may read /metrics without a key; never forwarded ones.
    metrics_allowed_ips: str = ""
    # Where a server's processes leave their numbers for each other (set by `akener serve`).
    metrics_dir: str | None = None

    # Webhooks (docs/events.md).
    webhooks_allow_private: bool = False  # loopback/private receivers (tests, closed networks)
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_max_endpoints: int = Field(default=50, ge=1, le=10_000)
    webhooks_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long the sender's lease lasts: a sender that dies is replaced within this long.
    webhooks_lease_seconds: float = Field(default=30.0, ge=1, le=600)
    # Leaked keys (docs/leaks.md): "deactivate" a reported key, or only "notify".
    on_leak: Literal["deactivate", "notify"] = "deactivate"
    github_scanning_keys_url: str = "https://api.github.com/meta/public_keys/secret_scanning"
    github_scanning_keys_file: str | None = None

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, value: str) -> str:
        """Accept plain postgresql:// and sqlite:// URLs and pick the async driver."""
        return _async_driver(value)

    @field_validator("listen_database_url")
    @classmethod
    def _check_listen_url(cls, value: str | None) -> str | None:
        """A PostgreSQL URL, or unset (empty counts as unset)."""
        if not value:
            return None
        if not value.startswith(("postgres://", "postgresql://", "postgresql+asyncpg://")):
            raise ValueError("AKENER_LISTEN_DATABASE_URL must be a postgresql:// URL")
        return _async_driver(value)

    @property
    def listen_url(self) -> str:
        """The URL the PostgreSQL change listener connects to."""
        return self.listen_database_url or self.database_url

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        """An http(s) origin, optionally with a path prefix; no query, no fragment."""
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "AKENER_PUBLIC_URL must be an http(s) URL, e.g. https://keys.example.com"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("AKENER_PUBLIC_URL must not have a query, a fragment or credentials")
        return value.rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")

    @field_validator("trusted_proxies", "metrics_allowed_ips")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        """Refuse anything but addresses and networks."""
        parse_networks(value)
        return value

    def peppers(self) -> dict[int, bytes]:
        """Secret per pepper version, current version included."""
        found: dict[int, bytes] = {}
        for item in filter(None, (p.strip() for p in self.old_secret_keys.split(","))):
            version, sep, secret = item.partition(":")
            if not sep or not version.isdigit() or not secret:
                raise ValueError("AKENER_OLD_SECRET_KEYS entries look like '1:<secret>'")
            found[int(version)] = secret.encode()
        if self.secret_key is not None:
            found[self.secret_key_version] = self.secret_key.get_secret_value().encode()
        return found


def _async_driver(value: str) -> str:
    """The URL with the async driver: plain postgresql:// and sqlite:// are accepted."""
    if value.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + value.split("://", 1)[1]
    if value.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + value.split("://", 1)[1]
    return value


GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _is_placeholder(value: str) -> bool:
    folded = value.strip().lower()
    if folded in PLACEHOLDER_SECRETS or len(set(folded)) <= 1:
        return True
    # "changemechangeme…" padded to the minimum length is still a placeholder.
    return any(
        word and len(folded) % len(word) == 0 and folded == word * (len(folded) // len(word))
        for word in PLACEHOLDER_SECRETS
    )


def secret_problem(settings: Settings) -> str | None:
    """Why the configured current secret cannot be used (one line with what to do), or None."""
    if settings.secret_key is None:
        return "AKENER_SECRET_KEY is not set"
    value = settings.secret_key.get_secret_value()
    if _is_placeholder(value):
        why = "is a well-known placeholder"
    elif len(value) < MIN_SECRET_LENGTH:
        why = f"is shorter than {MIN_SECRET_LENGTH} characters"
    else:
        return None
    return (
        f"AKENER_SECRET_KEY {why}; set a long random one ({GENERATE_HINT}). Keys made with the"
        " weak secret keep working if it stays as an old version: move it to"
        f" AKENER_OLD_SECRET_KEYS={settings.secret_key_version}:<weak secret> and set"
        f" AKENER_SECRET_KEY_VERSION={settings.secret_key_version + 1} with the new secret"
    )
