"""The PostgreSQL store: connection pool, embedded server, migrations, ingest and graph queries.

Raw OpenLineage events are append-only; every other table is derived from them and could be
rebuilt by replaying them (see :func:`lineage.store.ingest.rebuild`).
"""

from lineage.store.db import Database, open_database

__all__ = ["Database", "open_database"]
