"""Schema migrations, managed by alembic and written as plain SQL (``migrations/versions``).

Migrations run as the **owner** role (:mod:`lineage.store.roles`): :func:`upgrade` takes the
owner's URL, or the URL of a member of the owner role (a superuser, say), in which case it
switches to the owner role for the migration so that everything created belongs to the owner.
A superuser's URL also creates the roles if they are missing and hands the database to the
owner role (benchmarks and scripts that create a database and migrate it).
The application role's URL cannot migrate: it has no DDL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from lineage.errors import ConfigError, StoreUnavailable
from lineage.store.roles import Roles

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(url: str, roles: Roles):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    from lineage.store.db import sqlalchemy_url

    sa_url = sqlalchemy_url(url)
    # ConfigParser interpolation treats % specially.
    cfg.set_main_option("sqlalchemy.url", sa_url.replace("%", "%%"))
    cfg.attributes["lineage_roles"] = roles
    return cfg


def _as_owner(url: str, roles: Roles) -> str:
    """``url``, made to act as the owner role: unchanged when it connects as the owner; with
    ``options=-c role=OWNER`` (a ``SET ROLE`` at connection start) when it connects as a member
    of the owner; refused otherwise.  A superuser creates missing roles first."""
    import psycopg

    from lineage.store.roles import ensure_roles

    with psycopg.connect(url, autocommit=True) as conn:
        user, superuser = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if user == roles.owner:
            return url
        if superuser:
            ensure_roles(conn, roles)
            _give_database_to_owner(conn, roles)
        member = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) AND pg_has_role(current_user, %s, 'MEMBER')",
            (roles.owner, roles.owner),
        ).fetchone()[0]
    if not member:
        raise ConfigError(
            f"migrations run as the owner database role `{roles.owner}`, not `{user}`: set "
            "LINEAGE_MIGRATION_DATABASE_URL to the owner's URL (deploy/README.md)"
        )
    return url + ("&" if "?" in url else "?") + "options=" + quote(f"-c role={roles.owner}", safe="")


def _give_database_to_owner(conn, roles: Roles) -> None:
    """A superuser migrating a database it created hands it to the owner role, which then owns
    its ``public`` schema (PostgreSQL 15+) and may create the tables.  The maintenance
    databases are never given away: migrating into them fails on privileges instead."""
    from psycopg import sql

    name, dba = conn.execute(
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    if dba != roles.owner and name not in ("postgres", "template0", "template1"):
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(roles.owner)))


def upgrade(url: str, revision: str = "head", roles: Roles | None = None) -> None:
    """Apply every pending migration up to ``revision``, as the owner role."""
    import psycopg
    from alembic import command
    from sqlalchemy.exc import ArgumentError, OperationalError

    roles = roles or Roles()
    try:
        owner_url = _as_owner(url, roles)
        command.upgrade(_alembic_config(owner_url, roles), revision)
        _ensure_partitions(owner_url)
    except ArgumentError:
        raise ConfigError(
            "LINEAGE_MIGRATION_DATABASE_URL: migrations need the URL form (postgresql://USER:PASSWORD@HOST:PORT/DB), "
            "not libpq's key=value form"
        ) from None
    except OperationalError as exc:
        from lineage.config import redact_text

        raise StoreUnavailable(f"cannot migrate the lineage store: {redact_text(str(exc.orig), url)}") from exc
    except psycopg.OperationalError as exc:
        from lineage.config import redact_text

        raise StoreUnavailable(f"cannot migrate the lineage store: {redact_text(str(exc), url)}") from exc


def _ensure_partitions(owner_url: str) -> None:
    """Months ahead at every migration (so at every server start): no deployment depends on a
    cron job.  Never fails the start: the DEFAULT partition catches events until it succeeds."""
    import logging

    import psycopg

    from lineage.maintain.partitions import ensure_partitions

    try:
        ensure_partitions(owner_url)
    except psycopg.errors.LockNotAvailable:
        logging.getLogger("lineage.store").warning(
            "raw_events partitions ahead not created: the table stayed busy; `lineage maintain partitions` will")


def head() -> str:
    """The revision this version of the code expects."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current(url: str) -> str | None:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return None
        r = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return r[0] if r else None
