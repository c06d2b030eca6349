"""The store's three database roles, and the URLs that connect as each.

* the **owner** owns the schema and runs the migrations; it is the only role that may delete
  from an append-only table, and only inside :sql:`lineage_erase(...)`, which records who and
  why (migration ``0006``);
* the **application** role is what ``lineage serve`` and the CLI connect as: SELECT and INSERT
  on what they need, UPDATE and DELETE on the derived tables only, no DDL, no TRUNCATE, no
  trigger control, never a superuser;
* the **reader** may SELECT, for dashboards and auditors.

On a shared PostgreSQL a DBA creates the roles (``deploy/README.md``).  On the embedded server,
and in tests, :func:`ensure_roles` creates them as the superuser when they are missing.  The
embedded server authenticates local socket connections by trust, so its roles have no password:
the embedded default separates what the application's own statements may do, not the people
who can reach its socket (``LINEAGE_HOME`` is the boundary there).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from lineage.config import ROLE_NAME

# What a role created here may never be: these attributes bypass privileges or triggers.
_SAFE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


@dataclass(frozen=True)
class Roles:
    owner: str = "lineage_owner"
    app: str = "lineage_app"
    reader: str = "lineage_reader"

    def __post_init__(self) -> None:
        for field, name in (("owner", self.owner), ("app", self.app), ("reader", self.reader)):
            if not ROLE_NAME.match(name):
                raise ValueError(f"database role name for {field} `{name}` must match {ROLE_NAME.pattern}")
        if len({self.owner, self.app, self.reader}) != 3:
            raise ValueError("the owner, application and reader database roles must be three different roles")

    @classmethod
    def from_settings(cls, settings) -> "Roles":
        return cls(settings.db_owner_role, settings.db_app_role, settings.db_reader_role)


def migration_roles() -> Roles:
    """The roles a running migration grants to: those :func:`lineage.store.migrate.upgrade`
    passed in, or, when run through alembic's own command line, those the settings name."""
    from alembic import context

    roles = context.config.attributes.get("lineage_roles")
    if roles is None:
        from lineage.config import Settings

        roles = Roles.from_settings(Settings())
    return roles


def quoted(name: str) -> str:
    """A role or schema name as a quoted identifier (names are validated plain identifiers)."""
    return '"' + name.replace('"', '""') + '"'


def ensure_roles(conn: psycopg.Connection, roles: Roles) -> list[str]:
    """Create whichever of ``roles`` are missing (``conn`` is a superuser's, in autocommit);
    return the names created.  A concurrent creator is tolerated.  An application or reader
    role that exists with superuser or bypass rights is refused: the whole point is lost."""
    created = []
    for name in (roles.owner, roles.app, roles.reader):
        row = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if row is None:
            try:
                conn.execute(sql.SQL("CREATE ROLE {} " + _SAFE_ATTRIBUTES).format(sql.Identifier(name)))
                created.append(name)
            except psycopg.errors.DuplicateObject:
                pass
            except psycopg.errors.UniqueViolation:  # two first starts racing on the catalog
                pass
        elif row[0] and name != roles.owner:
            raise PermissionError(f"database role `{name}` is a superuser or bypasses row security: it must not be")
    return created


def role_url(url: str, user: str, dbname: str | None = None, password: str | None = None) -> str:
    """``url`` (``postgresql://user:pw@host/db?query``) connecting as ``user`` (with
    ``password``, or none), to ``dbname`` if given; host, port and query are kept."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@" + host
    if parts.port:
        netloc += f":{parts.port}"
    path = "/" + quote(dbname, safe="") if dbname is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))
