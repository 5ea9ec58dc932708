"""Settings, read once from the environment (prefix ``AKENER_``) and a local ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./akener.db"

# Values people paste from examples; refused as a production secret.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "please-change-me", "your-secret-key", "test", "dev"}
)
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Every setting akener reads; see docs/configuration.md for each one."""

    model_config = SettingsConfigDict(
        env_prefix="AKENER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
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

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, value: str) -> str:
        """Accept plain postgresql:// and sqlite:// URLs and pick the async driver."""
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        return value

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


def secret_problem(settings: Settings) -> str | None:
    """Why the configured secret cannot be used, or None when it is fine."""
    if settings.secret_key is None:
        return "AKENER_SECRET_KEY is not set"
    value = settings.secret_key.get_secret_value()
    if value.strip().lower() in PLACEHOLDER_SECRETS:
        return "AKENER_SECRET_KEY is a placeholder value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"AKENER_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters"
    return None


def write_local_secret(env_file: Path, secret: str) -> None:
    """Append a generated AKENER_SECRET_KEY to a local .env file (readable by the owner only)."""
    existing = env_file.read_text() if env_file.exists() else ""
    sep = "" if not existing or existing.endswith("\n") else "\n"
    env_file.write_text(f"{existing}{sep}AKENER_SECRET_KEY={secret}\n")
    env_file.chmod(0o600)
