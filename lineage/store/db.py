"""Connections to the store: a psycopg 3 pool over the embedded or a configured PostgreSQL.

:func:`open_database` is the one entry point.  It resolves the URL from settings (starting the
embedded server when needed), optionally applies migrations, and returns a :class:`Database`
whose ``connection()`` hands out pooled connections.  Connection failures surface as
:class:`~lineage.errors.StoreUnavailable`, which the gate treats as a reason to block; its
message is built from masked text (:func:`lineage.config.redact_text`), since psycopg's error
text can quote the connection string.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from lineage.config import Settings, redact_text, redact_url
from lineage.errors import StoreUnavailable


def resolve_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from lineage.store.embedded import embedded_url

    return embedded_url(settings.pg_data_dir)


class Database:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": False},
            configure=_configure,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to the lineage store at {redact_url(url)}: {redact_text(str(exc), url)}") from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed on success, rolled back on error."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"the lineage store is unreachable: {redact_text(str(exc), self.url)}") from exc

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


def open_database(settings: Settings, *, migrate: bool = False) -> Database:
    """Open the configured store; with ``migrate`` apply pending migrations first."""
    url = resolve_url(settings)
    if migrate:
        from lineage.store.migrate import upgrade

        upgrade(url)
    return Database(url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)


def sqlalchemy_url(url: str) -> str:
    """The one rewrite of a libpq URL (``postgresql://``, ``postgres://``) into SQLAlchemy's
    psycopg 3 form (``postgresql+psycopg://``), for alembic and Great Expectations; any other
    URL is returned unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
