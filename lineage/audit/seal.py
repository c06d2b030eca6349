"""Sealing: move finished queue entries into the ledger, one block at a time.

Contract:

* :func:`seal` takes the queue entries whose transactions have *finished* (``xact`` below
  ``pg_snapshot_xmin`` of the current snapshot: no transaction still running can commit an
  entry that sorts before them), orders them by (transaction id, queue id), hashes each record
  as it now stands, and appends them as one block chained to the previous one, in one
  transaction.  So a sealed block is never followed by an entry that sorts before it, and
  ingest never waits for a sealer (the sealer only reads rows and deletes its own queue rows).
* One sealer at a time: a transaction-scoped advisory lock; a second caller returns at once.
* The ledger order is transaction-id order among finished transactions, which is the order
  in which they started writing; with the horizon above it never changes once sealed.
* The server calls :func:`seal_all` from a background thread (:mod:`lineage.audit.service`);
  ``lineage audit seal`` and ``lineage audit checkpoint`` call it too.  Sealing late never
  loses a record: the queue keeps it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from lineage.audit.hashing import DIGEST_SUFFIX, DIGESTED, ZERO_HASH, block_hash, block_header, leaf_hash, merkle_root

log = logging.getLogger("lineage.audit.seal")

#: pg_advisory lock key of the sealer ("ledger" in ASCII).
SEAL_LOCK = 0x6C6564676572
#: Most entries per block: bounds one sealing transaction and one verification step.
BLOCK_SIZE = 20_000


@dataclass
class Block:
    seq: int
    first: int
    last: int
    block_hash: bytes


def key_columns(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every ledgered table and its primary-key columns (``ledger_tables``)."""
    return {name: list(cols) for name, cols in conn.execute("SELECT name, key_columns FROM ledger_tables ORDER BY name")}


def key_join(conn: psycopg.Connection, table: str, columns: list[str], alias: str = "t", pk: str = "q.pk") -> sql.Composable:
    """``t.c1 = (q.pk->>0)::type1 AND ...``: a join on the table's key that its primary-key
    index can serve (``jsonb_build_array(t.c1, ...) = q.pk`` would scan the whole table)."""
    types = dict(conn.execute(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (table,)).fetchall())
    return sql.SQL(" AND ").join(
        sql.SQL("{} = ({}->>{})::{}").format(sql.Identifier(alias, c), sql.SQL(pk), sql.Literal(i), sql.SQL(types[c]))
        for i, c in enumerate(columns))


def record_sql(conn: psycopg.Connection, table: str, alias: str = "t", export: bool = False) -> sql.Composable:
    """The SQL expression (JSON text) of a row of ``table`` as the ledger hashes it.

    ``to_jsonb(t)`` for most tables.  A table with digested columns (:data:`DIGESTED`) is
    built member by member, the digested ones as ``C#sha256`` computed by the database from
    the value itself (``export``: as the value's text, for a bundle to hash offline); building
    it so, rather than ``to_jsonb(t) - 'payload'``, never converts the 3 KB payload to jsonb
    members only to drop them.
    """
    digested = DIGESTED.get(table)
    if not digested:
        return sql.SQL("to_jsonb({})::text").format(sql.Identifier(alias))
    columns = [r[0] for r in conn.execute(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum", (table,))]
    members = []
    for c in columns:
        value = sql.Identifier(alias, c)
        if c not in digested:
            members.append(sql.SQL("{}, {}").format(sql.Literal(c), value))
        elif export:
            members.append(sql.SQL("{}, {}::text").format(sql.Literal(c), value))
        else:
            members.append(sql.SQL("{}, encode(sha256(convert_to({}::text, 'UTF8')), 'hex')").format(
                sql.Literal(c + DIGEST_SUFFIX), value))
    # json (not jsonb): built as text directly.  For the column types a digested table may have
    # (no float or numeric: see lineage.audit.verify._SQL_JSON_TYPES) the values are the same.
    return sql.SQL("json_build_object({})::text").format(sql.SQL(", ").join(members))


def rows_by_key(conn: psycopg.Connection, table: str, columns: list[str], keys: list[str]) -> dict[str, str | None]:
    """``{key JSON text: record JSON text}`` for the given keys of ``table`` (missing: absent)."""
    query = sql.SQL(
        "SELECT q.pk::text, {record} FROM (SELECT DISTINCT unnest(%s::jsonb[]) AS pk) q"
        " JOIN {table} t ON {join}"
    ).format(record=record_sql(conn, table), table=sql.Identifier(table), join=key_join(conn, table, columns))
    found = dict(conn.execute(query, (keys,)).fetchall())
    return {k: found.get(k) for k in keys}


def seal(conn: psycopg.Connection, limit: int = BLOCK_SIZE) -> Block | None:
    """Seal one block of finished entries (at most ``limit``); None if nothing was ready or
    another sealer holds the lock.  Runs in its own transaction on ``conn``."""
    with conn.transaction():
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (SEAL_LOCK,)).fetchone()[0]:
            return None
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        conn.execute("SET LOCAL bytea_output = 'hex'")
        horizon = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()[0]
        queued = conn.execute(
            "SELECT id, tbl, pk::text, xact::text FROM ledger_queue WHERE xact < %s::xid8 ORDER BY xact, id LIMIT %s",
            (horizon, limit),
        ).fetchall()
        if not queued:
            return None
        columns = key_columns(conn)
        wanted: dict[str, list[str]] = {}
        for _, table, pk, _ in queued:
            wanted.setdefault(table, []).append(pk)
        rows = {t: rows_by_key(conn, t, columns[t], keys) for t, keys in wanted.items()}
        last = conn.execute("SELECT seq, last_entry, block_hash FROM ledger_blocks ORDER BY seq DESC LIMIT 1").fetchone()
        block_seq, prev_last, prev_hash = (last[0] + 1, last[1], bytes(last[2])) if last else (1, 0, ZERO_HASH)
        leaves = []
        for n, (_, table, pk, _) in enumerate(queued):
            leaves.append(leaf_hash(table, rows[table][pk]))
            if n % 16 == 15:
                time.sleep(0)  # let a server's request threads have the GIL: no 5 ms convoys behind the hashing
        first = prev_last + 1
        with conn.cursor().copy("COPY ledger_entries (seq, block, tbl, pk, leaf, xact) FROM STDIN") as copy:
            for n, ((_, table, pk, xact), leaf) in enumerate(zip(queued, leaves)):
                copy.write_row((first + n, block_seq, table, pk, leaf, xact))
        sealed_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        root = merkle_root(leaves)
        header = block_header(block_seq, prev_hash, root, first, first + len(leaves) - 1, sealed_at)
        digest = block_hash(header)
        conn.execute(
            "INSERT INTO ledger_blocks (seq, first_entry, last_entry, prev_hash, merkle_root, block_hash, sealed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (block_seq, first, header["last"], prev_hash, root, digest, sealed_at),
        )
        conn.execute("DELETE FROM ledger_queue WHERE id = ANY(%s)", ([q[0] for q in queued],))
    return Block(block_seq, first, header["last"], digest)


def seal_all(conn: psycopg.Connection, limit: int = BLOCK_SIZE) -> list[Block]:
    """Seal until no finished entry is left (or another sealer holds the lock)."""
    blocks = []
    while (block := seal(conn, limit)) is not None:
        blocks.append(block)
    return blocks
