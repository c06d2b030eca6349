"""One typed settings object for the whole application.

Precedence, highest first:

1. arguments passed explicitly to :class:`Settings` (the CLI passes its flags this way);
2. ``LINEAGE_*`` environment variables (``LINEAGE_DATABASE_URL``, ``LINEAGE_HOME``, ...);
3. a ``.env`` file in the working directory;
4. the defaults below.

Settings are built by the caller (``Settings()``) and passed in; nothing in the package
builds them at import time.

:func:`redact_url` and :func:`redact_text` are the one place database passwords are masked:
every message or log line that may carry a connection string or a driver's error text goes
through them before it reaches a user, a log or the decision log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MASK = "***"
DEFAULT_MAX_CONTRACT_BYTES = 1024 * 1024
# A database role name: a plain, unquoted PostgreSQL identifier, as a DBA would type it.
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


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
    migration_database_url: SecretStr | None = Field(
        default=None,
        description="The owner role's PostgreSQL URL, for `lineage db upgrade` and serve's migrate-on-start. "
        "Unset with LINEAGE_DATABASE_URL set: nothing migrates. Ignored on the embedded server.",
    )
    db_owner_role: str = Field(default="lineage_owner", description="Database role that owns the schema and runs migrations.")
    db_app_role: str = Field(default="lineage_app", description="Database role the server and CLI connect as.")
    db_reader_role: str = Field(default="lineage_reader", description="Read-only database role for dashboards and auditors.")
    database_prepare_threshold: int | None = Field(
        default=5, ge=0,
        description="Executions of a query on one connection before psycopg prepares it on the server (psycopg's "
        "default, 5). `none` never prepares: needed behind a transaction-mode pooler that does not track prepared "
        "statements (PgBouncer before 1.21, or with max_prepared_statements = 0).",
    )
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=8, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="Largest accepted request body (after gunzip).")
    derive_workers: int = Field(
        default=1, ge=0, le=64,
        description="Derivation threads inside `lineage serve` (0: leave derivation to `lineage derive` processes).",
    )
    read_wait: float = Field(
        default=5.0, ge=0, le=300,
        description="Seconds a read waits for the events acknowledged before it to be derived (the staleness bound).",
    )
    max_derivation_lag: float = Field(default=30.0, gt=0, description="`/readyz` fails while the oldest underived event is older than this (seconds).")
    metrics_public: bool = Field(
        default=True,
        description="Serve /metrics without a credential (its labels hold fixed values only, no names). False: any valid credential.",
    )
    max_batch_events: int = Field(default=50_000, ge=1)
    max_contract_bytes: int = Field(
        default=DEFAULT_MAX_CONTRACT_BYTES, ge=1024, description="Largest accepted contract document (YAML or JSON).",
    )
    default_depth: int = Field(default=20, ge=0, le=100)
    url: str | None = Field(default=None, description="Base URL of a running `lineage serve`, for clients and the Airflow transport.")
    special_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Fides data-category keys that need two stewards' approval, in addition to the built-in special "
        "categories (biometric, race/ethnicity, religious belief, health, precise location). Comma-separated or a JSON list.",
    )

    # -- authentication (see lineage/auth and the README's "Authentication") ---------------------
    token: SecretStr | None = Field(
        default=None,
        description="API token the CLI and clients send (`lin_...`). Unset: LINEAGE_HOME/admin-token when it exists.",
    )
    oidc_issuer: str | None = Field(default=None, description="Expected `iss` of OIDC bearer tokens; setting it turns OIDC on.")
    oidc_audience: str | None = Field(default=None, description="Expected `aud` of OIDC bearer tokens (required with the issuer).")
    oidc_jwks_url: str | None = Field(default=None, description="The identity provider's JWKS URL (signing keys, fetched and cached).")
    oidc_jwks_file: Path | None = Field(default=None, description="A local JWKS JSON file instead of a URL (air-gapped sites, tests).")
    oidc_name_claim: str = Field(default="email", min_length=1, description="The claim that names the person (normalised before any comparison).")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="IPs or CIDRs of authenticating proxies whose identity header is believed (comma-separated).",
    )
    proxy_user_header: str = Field(default="X-Forwarded-User", min_length=1, description="The header a trusted proxy names the user in.")
    anonymous_viewer: bool = Field(
        default=False,
        description="Let requests without any credential read (GET) with the `viewer` role, for a Marquez UI that sends "
                    "none. Never any write. Off by default; see the README's Marquez section before turning it on.",
    )

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @field_validator("database_prepare_threshold", mode="before")
    @classmethod
    def _never_prepare(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in ("none", "off", "never"):
            return None
        return v

    @field_validator("special_categories", mode="before")
    @classmethod
    def _category_list(cls, v: object) -> object:
        if isinstance(v, str):
            import json

            text = v.strip()
            return json.loads(text) if text.startswith("[") else [k.strip() for k in text.split(",") if k.strip()]
        return v

    @field_validator("special_categories")
    @classmethod
    def _known_categories(cls, v: list[str]) -> list[str]:
        if v:
            from lineage.contracts.taxonomy import UnknownKey, check_key

            for key in v:
                try:
                    check_key("data_category", key)
                except UnknownKey as exc:
                    raise ValueError(str(exc)) from None
        return v

    @field_validator("db_owner_role", "db_app_role", "db_reader_role")
    @classmethod
    def _role_name(cls, v: str) -> str:
        if not ROLE_NAME.match(v):
            raise ValueError(f"a database role name must match {ROLE_NAME.pattern}")
        return v

    @field_validator("database_url", "migration_database_url", "token")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and "CHANGE_ME" in v.get_secret_value():
            raise ValueError("still holds the CHANGE_ME placeholder from lineage.env.example; set the real value")
        return v

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, v: object) -> object:
        if isinstance(v, str):  # LINEAGE_TRUSTED_PROXIES=10.0.0.5,10.1.0.0/16 (or a JSON list)
            text = v.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"`{entry}` is not an IP address or CIDR network") from None
        return v

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

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


# -- masking credentials ------------------------------------------------------------------------
# Each pattern captures what precedes the password (`pre`) and the password itself (`pw`).
_PATTERNS = (
    # `scheme://user:PASSWORD@`: a correctly encoded URL password holds no raw `@` nor blank.
    re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?P<pw>[^\s@]+)(?=@)"),
    # `?password=...` / `&password=...` in a URL's query.
    re.compile(r"(?P<pre>[?&]password=)(?P<pw>[^&#\s'\"]+)", re.IGNORECASE),
    # libpq's key=value form: `password=secret` or `password='it\'s quoted'`.
    re.compile(r"(?<![?&\w])(?P<pre>password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE),
)


def redact_url(url: str) -> str:
    """A database URL or libpq ``key=value`` string with its password replaced by ``***``.

    Handles ``postgresql://user:pw@host/db``, ``...?password=pw`` and ``host=h password=pw``;
    a string without a password comes back unchanged.
    """
    return redact_text(url, url)


def redact_text(text: str, *urls: str | None) -> str:
    """``text`` with every credential masked: anything shaped like a password in a URL or a
    ``key=value`` connection string, and every literal occurrence (raw, percent-encoded or
    decoded) of the passwords held by ``urls``, since a driver's error may quote them bare."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    for secret in sorted({s for u in urls if u for s in _passwords(u)}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _passwords(url: str) -> set[str]:
    """Every form in which ``url``'s password could appear in a message."""
    found = {m.group("pw") for pattern in _PATTERNS for m in pattern.finditer(url)}
    found |= {re.sub(r"\\(.)", r"\1", pw[1:-1]) for pw in found if len(pw) > 1 and pw[0] == pw[-1] == "'"}
    try:
        from psycopg.conninfo import conninfo_to_dict

        found.add(str(conninfo_to_dict(url).get("password") or ""))
    except Exception:  # not a valid connection string: the patterns above are all we have
        pass
    return {form for pw in found if pw and pw != MASK for form in (pw, unquote(pw), quote(pw, safe=""))}
