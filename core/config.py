"""The one settings object. Every environment variable agentmill reads is declared here."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "sqla+postgresql+psycopg")


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "agentmill"


class Settings(BaseSettings):
    """agentmill's configuration, read from `AGENTMILL_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="AGENTMILL_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses embedded, development-only defaults.",
    )
    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: the embedded Postgres lives in `home/pg`.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTMILL_DATABASE_URL", "DATABASE_URL"),
        description="Any Postgres with pgvector; unset means the embedded server in `home/pg`.",
    )
    broker_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTMILL_BROKER_URL", "REDIS_URL"),
        description="Celery broker; unset means the database (kombu's SQLAlchemy transport).",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the REST API binds to.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the REST API.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts (413 above)."
    )
    db_connect_timeout_s: int = Field(
        default=3, ge=1, le=60, description="Seconds to wait for a database connection."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in _POSTGRES_SCHEMES:
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://user:pass@host:5432/db "
                f"(got scheme {scheme!r})"
            )
        return value

    @field_validator("broker_url", mode="after")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in _BROKER_SCHEMES:
            raise ValueError(f"must use one of {', '.join(_BROKER_SCHEMES)} (got {scheme!r})")
        return value

    @model_validator(mode="after")
    def _production_needs_services(self) -> Settings:
        if self.environment == "production" and self.database_url is None:
            raise ValueError(
                "AGENTMILL_ENVIRONMENT=production needs AGENTMILL_DATABASE_URL: the embedded "
                "Postgres is a development default"
            )
        return self

    @cached_property
    def pg_dir(self) -> Path:
        """Data directory of the embedded Postgres."""
        return self.home / "pg"

    @cached_property
    def api_key_file(self) -> Path:
        """Where `agentmill up` writes the first key of a new installation (mode 0600)."""
        return self.home / "api-key"


def load_settings() -> Settings:
    """Read and validate the settings; raise `ConfigError` with one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            env = f"AGENTMILL_{name.upper()}" if error["loc"] else "settings"
            lines.append(f"{env}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
