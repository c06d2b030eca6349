"""One typed settings object for the whole application.

Precedence, highest first:

1. arguments passed explicitly to :class:`Settings` (the CLI passes its flags this way);
2. ``LINEAGE_*`` environment variables (``LINEAGE_DATABASE_URL``, ``LINEAGE_HOME``, ...);
3. a ``.env`` file in the working directory;
4. the defaults below.

Settings are built by the caller (``Settings()``) and passed in; nothing in the package
builds them at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. See the module docstring for precedence."""

    model_config = SettingsConfigDict(env_prefix="LINEAGE_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("~/.lineage"),
        description="Where local state lives: the embedded PostgreSQL data directory, spools, Airflow home.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="A PostgreSQL URL. When unset, an embedded PostgreSQL runs under LINEAGE_HOME/pg.",
    )
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=8, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="Largest accepted request body (after gunzip).")
    max_batch_events: int = Field(default=50_000, ge=1)
    default_depth: int = Field(default=20, ge=0, le=100)
    url: str | None = Field(default=None, description="Base URL of a running `lineage serve`, for clients and the Airflow transport.")

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @field_validator("database_url")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and "CHANGE_ME" in v.get_secret_value():
            raise ValueError("still holds the CHANGE_ME placeholder from lineage.env.example; set the real password")
        return v

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pg_data_dir(self) -> Path:
        return self.home / "pg"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def server_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


def api_url(base: str, path: str) -> str:
    """The one way to join a server's base URL and an API path: exactly one ``/`` between them."""
    return base.rstrip("/") + "/" + path.lstrip("/")
