"""Schema migrations, managed by alembic and written as plain SQL (``migrations/versions``)."""

from __future__ import annotations

from pathlib import Path

from lineage.errors import ConfigError, StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    from lineage.store.db import sqlalchemy_url

    sa_url = sqlalchemy_url(url)
    # ConfigParser interpolation treats % specially.
    cfg.set_main_option("sqlalchemy.url", sa_url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every pending migration up to ``revision``."""
    from alembic import command
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        command.upgrade(_alembic_config(url), revision)
    except ArgumentError:
        raise ConfigError(
            "LINEAGE_DATABASE_URL: migrations need the URL form (postgresql://USER:PASSWORD@HOST:PORT/DB), "
            "not libpq's key=value form"
        ) from None
    except OperationalError as exc:
        from lineage.config import redact_text

        raise StoreUnavailable(f"cannot migrate the lineage store: {redact_text(str(exc.orig), url)}") from exc


def current(url: str) -> str | None:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return None
        r = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return r[0] if r else None
