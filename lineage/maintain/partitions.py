"""Monthly partitions of ``raw_events``, created ahead (migration 0014's ``lineage_ensure_partitions``).

Contract of :func:`ensure_partitions`: connects with the given URL, which must act as the
owner role (``lineage.store.migrate.upgrade`` passes its own; ``lineage maintain`` resolves it
like ``lineage db upgrade``), and makes sure the DEFAULT partition, this month's and the next
``ahead`` months' exist, moving rows the DEFAULT partition caught into their months.  Safe to
run concurrently (an advisory lock: a second run while one holds it returns at once, leaving
the work to it) and any number of times.  On a store older than 0014 it does nothing.
"""

from __future__ import annotations

import psycopg

#: pg_advisory lock of partition maintenance and retention ("partit" in ASCII); migration 0014 uses it too.
MAINTENANCE_LOCK = 0x706172746974
#: Months created ahead of the current one by default (the server does it at every start).
DEFAULT_AHEAD = 3
#: What :func:`ensure_partitions` returns when another maintenance run holds the lock.
BUSY = -1


def ensure_partitions(owner_url: str, ahead: int = DEFAULT_AHEAD, lock_timeout: str = "5s") -> int | None:
    """Create the partitions that are missing; return how many, :data:`BUSY` if another
    maintenance run holds the lock (it does the work), None if the store has no partitions.

    Creating a partition locks ``raw_events`` for an instant; ``lock_timeout`` bounds the wait
    behind long reads (ingest would queue behind the waiting lock), raising
    ``psycopg.errors.LockNotAvailable`` when it runs out: the DEFAULT partition catches
    events meanwhile, so the caller may simply try again later.
    """
    with psycopg.connect(owner_url) as conn:
        if conn.execute("SELECT to_regprocedure('lineage_ensure_partitions(integer, timestamp with time zone)')").fetchone()[0] is None:
            return None
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
        return conn.execute("SELECT lineage_ensure_partitions(%s)", (ahead,)).fetchone()[0]


def list_partitions(conn: psycopg.Connection) -> list[tuple[str, object, object, int]]:
    """``(name, from, to, estimated rows)`` of every partition of ``raw_events`` (from/to None:
    unbounded; both None: the DEFAULT partition), oldest first."""
    return conn.execute(
        "SELECT c.relname::text, b.range_from, b.range_to, greatest(c.reltuples, 0)::bigint"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid CROSS JOIN LATERAL lineage_partition_bounds(c.oid) b"
        " WHERE i.inhparent = 'raw_events'::regclass"
        " ORDER BY c.relname = 'raw_events_default', b.range_to NULLS FIRST").fetchall()
