"""Connections to the store: a psycopg 3 pool over the embedded or a configured PostgreSQL.

:func:`open_database` is the one entry point.  It resolves the URL from settings (starting the
embedded server when needed), optionally applies migrations, and returns a :class:`Database`
whose ``connection()`` hands out pooled connections.

Database errors are classified by SQLSTATE, never by message, and no message carries SQL
text or PostgreSQL's own wording (which can quote values and statements):

* the store cannot be reached (lost connection, pool timeout, too many connections, shutdown,
  statement cancelled): :class:`~lineage.errors.StoreUnavailable`, 503, which the gate treats
  as a reason to block;
* the store refused a value (data exception, constraint, program limit such as an index row
  too large): :class:`~lineage.errors.StoreRefused`, 400;
* a serialization failure or deadlock: :class:`~lineage.errors.StoreBusy` (503);
  :meth:`Database.run` retries the whole transaction a bounded number of times first;
* a named prepared statement missing or duplicated (a transaction-mode pooler that moved the
  session; ``LINEAGE_DATABASE_PREPARE_THRESHOLD=none`` is the cure, which the message names):
  :class:`~lineage.errors.StoreUnavailable` (503);
* anything else propagates unchanged (the API answers a bare 500 and logs it).

The driver's own text for an unreachable store goes to the server log only, masked with
:func:`lineage.config.redact_text` (libpq's messages can quote the connection string).
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from lineage.config import Settings, redact_text, redact_url
from lineage.errors import LineageError, StoreBusy, StoreRefused, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("lineage.store")

# SQLSTATE classes: 22 data exception, 23 integrity constraint, 54 program limit exceeded.
_REFUSED = ("22", "23", "54")
_RETRY = ("40001", "40P01")  # serialization failure, deadlock detected
_LOCK_TIMEOUT = "55P03"  # lock_not_available: lock_timeout (set on the role or the server) ran out
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown,
# statement cancelled), 58 system error (I/O).
_UNAVAILABLE = ("08", "53", "57", "58")
# A named prepared statement missing, or already there under another client's name: the
# session moved under us, i.e. a transaction-mode pooler that does not track them.
_POOLER = ("26000", "42P05")


def _sqlstate(exc: BaseException) -> str:
    return getattr(exc, "sqlstate", None) or ""


def refused_input(exc: BaseException) -> bool:
    """Did the store refuse a *value* (the request's fault) rather than fail?"""
    return _sqlstate(exc)[:2] in _REFUSED


def refusal(exc: BaseException) -> str:
    """A safe description of a database error: its class and SQLSTATE, no SQL, no values."""
    state = _sqlstate(exc)
    return f"{type(exc).__name__}, SQLSTATE {state}" if state else type(exc).__name__


def classify(exc: BaseException) -> LineageError | None:
    """The deliberate error a database failure stands for, or None to let it propagate."""
    if isinstance(exc, PoolTimeout):
        return StoreUnavailable("no connection to the lineage store came free in time (PoolTimeout); retry shortly")
    state = _sqlstate(exc)
    if refused_input(exc):
        return StoreRefused(f"the store refused a value of this request ({refusal(exc)}); check its text, numbers and times")
    if state in _RETRY:
        return StoreBusy(f"concurrent writes kept conflicting ({refusal(exc)}); retry")
    if state == _LOCK_TIMEOUT:  # another writer held what this one needed for longer than lock_timeout
        return StoreBusy(f"waited too long for another writer ({refusal(exc)}: lock_timeout); retry")
    if state in _POOLER:
        return StoreUnavailable(
            f"the store's session lost this connection's prepared statements ({refusal(exc)}): behind a "
            "transaction-mode pooler (PgBouncer before 1.21, or max_prepared_statements = 0) set "
            "LINEAGE_DATABASE_PREPARE_THRESHOLD=none"
        )
    if isinstance(exc, psycopg.OperationalError) and (not state or state[:2] in _UNAVAILABLE):
        return StoreUnavailable(f"the lineage store is unreachable ({refusal(exc)}); retry when it is back")
    return None


def resolve_url(settings: Settings) -> str:
    """The application role's URL: ``LINEAGE_DATABASE_URL``, or the embedded server's
    application role (created on first start)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return _embedded(settings)["app"]


def resolve_migration_url(settings: Settings) -> str | None:
    """The owner role's URL, for migrations: ``LINEAGE_MIGRATION_DATABASE_URL`` when
    ``LINEAGE_DATABASE_URL`` is set (None if it is not), else the embedded owner role's."""
    if settings.database_url is not None:
        url = settings.migration_database_url
        return url.get_secret_value() if url is not None else None
    return _embedded(settings)["owner"]


def _embedded(settings: Settings) -> dict[str, str]:
    from lineage.store.embedded import embedded_role_urls
    from lineage.store.roles import Roles

    return embedded_role_urls(settings.pg_data_dir, Roles.from_settings(settings))


class Database:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0,
                 prepare_threshold: int | None = 5) -> None:
        self.url = url
        # None: never a named server-side prepared statement, which a transaction-mode pooler
        # would hand to another client's session (LINEAGE_DATABASE_PREPARE_THRESHOLD).
        self.prepare_threshold = prepare_threshold
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": False, "prepare_threshold": prepare_threshold},
            configure=_configure,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to the lineage store at {redact_url(url)}: {redact_text(str(exc), url)}") from exc

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed on success, rolled back on error.
        ``timeout``: seconds to wait for a free connection (default: the pool's)."""
        try:
            with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            mapped = classify(exc)
            if mapped is None:
                raise
            if isinstance(mapped, StoreUnavailable):
                log.warning("lineage store unreachable: %s", redact_text(str(exc), self.url))
            raise mapped from exc

    def run(self, fn: Callable[[psycopg.Connection], T], *, attempts: int = 6) -> T:
        """``fn(conn)`` in its own transaction, retried (with jittered back-off) when it ends
        in a serialization failure or deadlock; :class:`StoreBusy` after ``attempts``."""
        for attempt in range(attempts):
            try:
                with self.connection() as conn:
                    return fn(conn)
            except StoreBusy:
                if attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

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
    """Open the configured store as the application role.

    With ``migrate``, pending migrations are applied first as the owner role
    (:func:`resolve_migration_url`); without an owner URL (``LINEAGE_DATABASE_URL`` set,
    ``LINEAGE_MIGRATION_DATABASE_URL`` not) nothing migrates, and a store that is not at this
    version's revision is refused with the command that fixes it.
    """
    url = resolve_url(settings)
    if migrate:
        from lineage.store.migrate import upgrade
        from lineage.store.roles import Roles

        owner_url = resolve_migration_url(settings)
        if owner_url is not None:
            upgrade(owner_url, roles=Roles.from_settings(settings))
        else:
            check_revision(url)
    return Database(url, min_size=settings.pool_min_size, max_size=settings.pool_max_size,
                    prepare_threshold=settings.database_prepare_threshold)


def check_revision(url: str) -> None:
    """Refuse a store whose schema is not at the revision this version expects."""
    from lineage.errors import ConfigError
    from lineage.store.migrate import current, head

    try:
        at = current(url)
    except psycopg.errors.InsufficientPrivilege:
        at = None  # migrated before the roles existed: the application cannot even read it
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach the lineage store: {redact_text(str(exc), url)}") from exc
    want = head()
    if at != want:
        raise ConfigError(
            f"the lineage store is at schema revision {at or 'none'}, this version needs {want}; "
            "LINEAGE_MIGRATION_DATABASE_URL is unset, so nothing was migrated: run `lineage db upgrade` "
            "with it set to the owner role's URL (deploy/README.md)"
        )
    log.debug("store at revision %s; not migrating (LINEAGE_MIGRATION_DATABASE_URL unset)", at)


def sqlalchemy_url(url: str) -> str:
    """The one rewrite of a libpq URL (``postgresql://``, ``postgres://``) into SQLAlchemy's
    psycopg 3 form (``postgresql+psycopg://``), for alembic and Great Expectations; any other
    URL is returned unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
