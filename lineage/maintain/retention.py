"""Retention: archive whole ``raw_events`` partitions recorded before a date, then drop them.

Contract of :func:`retain` (run as the owner role, like the migrations):

* Only whole partitions go, and only those whose upper bound is at or before ``before``
  (which may not be later than the start of the current month): a partition is the unit
  PostgreSQL drops without touching a row, so retention costs no ``DELETE`` and leaves no bloat.
* The ledger is sealed first; a partition with a record still waiting to be sealed is refused
  (its leaf must exist before its row goes, or the archive could not be verified against it),
  and so is one with an event still waiting for derivation (``derive_queue``, when present).
* Per partition, in **one transaction**: take the maintenance advisory lock and a SHARE lock
  on the partition (no writer can add to it meanwhile), write the archive file (to a temporary
  name, fsynced, then renamed into place), record a ``retentions`` row (its range, the ids as
  an ``int8multirange``, the row count, the file and its SHA-256; append-only and ledgered),
  and drop the partition.  A crash before the commit leaves the partition and no retention
  row (at most an archive file that the re-run writes again); after it, the work is done.
  Re-running is always safe: what is already retained is gone from the partition list.
* The archive (``raw_events/<partition>.jsonl.gz`` under the archive directory) holds one line
  per row, in id order: ``{"key": [id], "record": {...}, "seq", "block", "leaf"}``, the record
  as the ledger hashes it with ``payload`` as its exact text (as evidence bundles carry it,
  :mod:`lineage.audit.bundle`), and its latest ledger entry.  ``lineage audit verify
  --archive DIR`` checks each file's SHA-256 against its ledgered retention and re-hashes
  every record against the leaf in the ledger (:func:`lineage.audit.verify.check_archives`).
* ``event_keys`` rows stay (a late retry of an archived event is still a duplicate), and so
  do the derived rows the archived events produced.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import msgspec
import psycopg
from psycopg import sql

from lineage.audit.archive import sha256_file
from lineage.audit.seal import record_sql, seal_all
from lineage.errors import ConfigError, StoreBusy
from lineage.maintain.partitions import MAINTENANCE_LOCK, list_partitions

TABLE = "raw_events"
#: How long the drop waits for the table lock behind running reads before giving up (retried by running again).
DROP_LOCK_TIMEOUT = "5s"


@dataclass
class Retained:
    partition: str
    rows: int
    archive: str
    sha256: str


def _cutoff(before: date) -> datetime:
    cutoff = datetime(before.year, before.month, before.day, tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    if cutoff > datetime(now.year, now.month, 1, tzinfo=timezone.utc):
        raise ConfigError(f"--before {before.isoformat()} is later than the start of this month: retention keeps "
                          "the current month whole; pass an earlier date")
    return cutoff


def retain(owner_url: str, before: date, archive_dir: Path,
           after_archive: Callable[[str, Path], None] | None = None) -> list[Retained]:
    """Archive and drop every partition recorded entirely before ``before``; see the module
    docstring.  ``after_archive(partition, file)`` runs between writing an archive and
    dropping its partition (tests make it fail to show a crash there is recovered)."""
    cutoff = _cutoff(before)
    archive_dir = Path(archive_dir)
    (archive_dir / TABLE).mkdir(parents=True, exist_ok=True)
    done = []
    # Settings are transaction-local (SET LOCAL): behind a transaction-mode pooler a session
    # setting would outlive this connection's use of the server session.
    with psycopg.connect(owner_url) as conn:
        # Rows the DEFAULT partition caught go to their months first, so they can be retained too
        # (if the table stays busy they wait for the next run; nothing else depends on it).
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (DROP_LOCK_TIMEOUT,))
            conn.execute("SELECT lineage_ensure_partitions(0)")
            conn.commit()
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
        seal_all(conn)
        for name, _, upper, _ in list_partitions(conn):
            conn.rollback()
            if upper is None or upper > cutoff:
                continue
            try:
                result = _retain_one(conn, name, archive_dir, after_archive)
            except psycopg.errors.LockNotAvailable:
                raise StoreBusy(f"raw_events stayed busy (long reads) for {DROP_LOCK_TIMEOUT}: partition {name} was not "
                                "retained (nothing changed in the store); run the retention again") from None
            if result is not None:
                done.append(result)
    return done


def _retain_one(conn: psycopg.Connection, name: str, archive_dir: Path,
                after_archive: Callable[[str, Path], None] | None) -> Retained | None:
    part = sql.Identifier(name)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MAINTENANCE_LOCK,))  # waits for another run: no lock_timeout yet
        # Records are exported as the sealer hashed them: times in UTC, bytea as hex.
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        conn.execute("SET LOCAL bytea_output = 'hex'")
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (DROP_LOCK_TIMEOUT,))
        bounds = conn.execute(
            "SELECT b.range_from, b.range_to FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " CROSS JOIN LATERAL lineage_partition_bounds(c.oid) b"
            " WHERE i.inhparent = 'raw_events'::regclass AND c.relname = %s", (name,)).fetchone()
        if bounds is None:  # a concurrent run retained it first
            return None
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(part))
        unsealed = conn.execute(sql.SQL(
            "SELECT count(*) FROM ledger_queue q JOIN {} t"
            " ON t.id = CASE WHEN (q.pk->>0) ~ '^-?[0-9]{{1,18}}$' THEN (q.pk->>0)::bigint END"
            " WHERE q.tbl = 'raw_events'").format(part)).fetchone()[0]
        if unsealed:
            raise ConfigError(f"partition {name} has {unsealed} record(s) the ledger has not sealed yet: "
                              "run `lineage audit seal`, then retain again")
        # Events still waiting for derivation (raw-first ingest's queue, when the store has one)
        # must be derived before their rows go.
        underived = 0
        if conn.execute("SELECT to_regclass('derive_queue') IS NOT NULL").fetchone()[0]:
            underived = conn.execute(sql.SQL(
                "SELECT count(*) FROM {} t WHERE t.id IN (SELECT unnest(q.raw_ids) FROM derive_queue q)").format(part)).fetchone()[0]
        if underived:
            raise ConfigError(f"partition {name} has {underived} event(s) not derived yet: let derivation catch up, then retain again")
        relative = f"{TABLE}/{name}.jsonl.gz"
        digest, rows = _write_archive(conn, name, archive_dir / relative)
        if after_archive is not None:
            after_archive(name, archive_dir / relative)
        conn.execute(sql.SQL(
            "INSERT INTO retentions (tbl, partition_name, range_from, range_to, ids, row_count, archive, archive_sha256)"
            " SELECT 'raw_events', %s, %s, %s, coalesce(range_agg(int8range(id, id + 1)), '{{}}'::int8multirange), count(*), %s, %s"
            " FROM {}").format(part), (name, bounds[0], bounds[1], relative, digest))
        # Dropping locks raw_events for an instant; the wait behind long reads is bounded
        # (lock_timeout) so ingest does not queue behind it.  Running out rolls all of this
        # back: run again.
        conn.execute(sql.SQL("DROP TABLE {}").format(part))
    return Retained(name, rows, relative, digest)


def _write_archive(conn: psycopg.Connection, name: str, path: Path) -> tuple[str, int]:
    """Write the partition's rows with their latest ledger entries; return (SHA-256 hex, rows)."""
    record = record_sql(conn, TABLE, export=True)
    query = sql.SQL(
        "SELECT t.id, {record}, e.seq, e.block, encode(e.leaf, 'hex') FROM {part} t"
        " LEFT JOIN (SELECT DISTINCT ON (pk) pk, seq, block, leaf FROM ledger_entries"
        "            WHERE tbl = 'raw_events' AND pk->0 >= to_jsonb((SELECT min(id) FROM {part}))"
        "              AND pk->0 <= to_jsonb((SELECT max(id) FROM {part}))"
        "            ORDER BY pk, seq DESC) e ON e.pk = jsonb_build_array(t.id)"
        " ORDER BY t.id").format(record=record, part=sql.Identifier(name))
    tmp = path.with_name(path.name + ".tmp")
    rows = 0
    encoder = msgspec.json.Encoder()
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        with conn.cursor(name=f"retain_{name}") as cur:
            cur.itersize = 2000
            cur.execute(query)
            for raw_id, doc, seq, block, leaf in cur:
                line = {"key": [raw_id], "record": msgspec.Raw(doc.encode()), "seq": seq, "block": block, "leaf": leaf}
                out.write(encoder.encode(line) + b"\n")
                rows += 1
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return sha256_file(path), rows




def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
