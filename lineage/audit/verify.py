"""Verify the ledger in the database: every record, every block, every link, every checkpoint.

Contract (:func:`verify`):

* **Blocks.**  Seqs run 1, 2, ... with no gap; each block's ``prev`` is the previous block's
  hash, its entries follow the previous block's, its stored hash is the hash of its header,
  and its Merkle root is the root of its entries' leaves, in order.
* **Records.**  For every ledgered table, every row is joined to its ledger entries by key:
  a sealed record whose latest entry's leaf is not the hash of the row as it stands is
  *altered*; a sealed record that is gone is *deleted* unless an ``erasures`` row names it
  (``what`` → table → keys); a row with no entry and no queue entry is *inserted*.  A record
  whose update is still queued is *pending*, not a problem.
* **Checkpoints.**  Each must be signed by the trusted public key, and its head block must
  exist with exactly the signed hash and entry count.  This is what catches an owner who
  rewrites records *and* recomputes every leaf, root and block hash: the chain is consistent
  again, but no longer the one that was signed.
* Reads only (SELECT on the ledger and ledgered tables): the reader role can run it.  Each
  table is streamed through a server-side cursor; memory grows with the number of blocks and
  problems, not records.
* **Speed** (a million events is the benchmark).  For ``raw_events`` the database computes
  each leaf itself (:func:`leaf_sql`: the payload's digest and the canonical record, in C)
  and compares it with the entry's; only records that do not match come back, and each is
  re-hashed here by the definition (:func:`lineage.audit.hashing.leaf_hash`) before it is
  reported, so the fast path can cost time, never a verdict.  With ``connect``, tables of
  one integer key and at least :data:`PARALLEL_MIN` keys are split into key ranges checked
  on separate connections that share this transaction's snapshot, one core each.
"""

from __future__ import annotations

import bisect
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator

import msgspec
import psycopg
from psycopg import sql

from lineage.audit import checkpoint as cp
from lineage.audit.hashing import DIGEST_SUFFIX, DIGESTED, LEAF_TAG, ZERO_HASH, block_hash, block_header, leaf_hash, merkle_root
from lineage.audit.report import Problem, Report
from lineage.audit.seal import key_columns, record_sql, rows_by_key

_FETCH = 5_000
#: A table with fewer keys than this is checked in one piece.
PARALLEL_MIN = 50_000


def _key(pk_text: str) -> tuple:
    return tuple(msgspec.json.decode(pk_text))


def named(columns: list[str], key: tuple) -> dict[str, Any]:
    return dict(zip(columns, key))


class Retained:
    """The ``raw_events`` ids that recorded retentions archived and dropped (``retentions.ids``)."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.lows = [lo for lo, _ in ranges]
        self.highs = [hi for _, hi in ranges]

    @classmethod
    def load(cls, conn: psycopg.Connection) -> "Retained | None":
        if conn.execute("SELECT to_regclass('retentions')").fetchone()[0] is None:
            return None
        return cls(conn.execute("SELECT lower(r), upper(r) FROM retentions, unnest(ids) AS r ORDER BY 1").fetchall())

    def holds(self, table: str, key: tuple) -> bool:
        if table != "raw_events" or len(key) != 1 or not isinstance(key[0], int):
            return False
        i = bisect.bisect_right(self.lows, key[0]) - 1
        return i >= 0 and key[0] < self.highs[i]


def erased_keys(rows: Iterable[Any]) -> set[tuple[str, tuple]]:
    """``{(table, key)}`` named by erasure records' ``what`` (``{"table": [id or [key...], ...]}``)."""
    out: set[tuple[str, tuple]] = set()
    for what in rows:
        if not isinstance(what, dict):
            continue
        for table, keys in what.items():
            if isinstance(keys, list):
                out.update((table, tuple(k) if isinstance(k, list) else (k,)) for k in keys)
    return out


def check_blocks(blocks: list[tuple], leaves_of: Iterable[tuple[int, int, bytes]], report: Report) -> None:
    """Blocks (seq, first, last, prev, root, hash, sealed_at) in order, and every entry
    (seq, block, leaf) in seq order: links, header hashes and Merkle roots."""
    by_seq = {}
    prev_hash, prev_last = ZERO_HASH, 0
    for n, (seq, first, last, prev, root, digest, sealed_at) in enumerate(blocks, start=1):
        by_seq[seq] = (first, last, root)
        if seq != n:
            report.problems.append(Problem("block", f"block {n} is missing (next block found: {seq})", block=n))
        if prev != prev_hash or first != prev_last + 1:
            report.problems.append(Problem("block", "does not link to the previous block (hash or entry range)", block=seq, seq=first))
        if block_hash(block_header(seq, prev, root, first, last, sealed_at)) != digest:
            report.problems.append(Problem("block", "stored block hash is not the hash of its header", block=seq, seq=first))
        prev_hash, prev_last = digest, last
    current, leaves, expected_seq = None, [], 1

    def close(block: int | None, leaves: list[bytes]) -> None:
        if block is None:
            return
        if block not in by_seq:
            report.problems.append(Problem("block", f"{len(leaves)} ledger entries belong to no block", block=block))
            return
        first, last, root = by_seq[block]
        if len(leaves) != last - first + 1 or merkle_root(leaves) != root:
            report.problems.append(Problem("block", "Merkle root does not match its entries (an entry was altered, added or removed)",
                                           block=block, seq=first))
        else:
            report.blocks += 1

    for seq, block, leaf in leaves_of:
        report.entries += 1
        if seq != expected_seq:
            report.problems.append(Problem("block", f"ledger entry {expected_seq} is missing (next: {seq})", block=block, seq=expected_seq))
        expected_seq = seq + 1
        if block != current:
            close(current, leaves)
            current, leaves = block, []
        leaves.append(bytes(leaf))
    close(current, leaves)
    if prev_last and prev_last != expected_seq - 1:
        report.problems.append(Problem("block", f"the blocks end at entry {prev_last} but the entries at {expected_seq - 1}"))


def check_records(conn: psycopg.Connection, table: str, columns: list[str], erased: set, queued: set, report: Report,
                  part: tuple[int | None, int | None] | None = None, retained: Retained | None = None) -> None:
    """Every row of ``table`` (or of the key range ``part``: [low, high), None unbounded) against
    its ledger entries (see the module docstring); a gone record that ``retained`` names is
    counted as retained, not deleted."""
    fast = leaf_sql(conn, table)
    key_expr = sql.SQL("jsonb_build_array({})").format(sql.SQL(", ").join(sql.Identifier("t", c) for c in columns))
    rows_where, entries_where, params = _part(columns, part)
    entries = sql.SQL("SELECT seq, block, pk, leaf FROM ledger_entries WHERE tbl = %s{}").format(entries_where)
    if fast is None:
        query = sql.SQL(
            "SELECT e.seq, e.block, coalesce(e.pk, r.pk)::text, e.leaf, r.doc, false, false, 1 FROM ({entries}) e FULL JOIN"
            " (SELECT {key} AS pk, {record} AS doc FROM {table} t{rows_where}) r ON r.pk = e.pk"
        ).format(key=key_expr, record=record_sql(conn, table), table=sql.Identifier(table), entries=entries, rows_where=rows_where)
    else:
        # The database computes each leaf and compares it; every record that matches its
        # entry collapses into one counted group, so only the others come back to be looked
        # at (and re-hashed here, by the definition, before anything is reported).
        # Sealed records a retention archived and dropped collapse into one counted group too.
        query = sql.SQL(
            "SELECT CASE WHEN ok OR ret THEN NULL ELSE seq END, CASE WHEN ok OR ret THEN NULL ELSE block END,"
            " CASE WHEN ok OR ret THEN NULL ELSE pk::text END, CASE WHEN ok OR ret THEN NULL ELSE leaf END,"
            " CASE WHEN ok OR ret THEN NULL WHEN present THEN '' END, ok, ret, count(*) FROM"
            " (SELECT e.seq, e.block, coalesce(e.pk, r.pk) AS pk, e.leaf, r.pk IS NOT NULL AS present,"
            "  coalesce(e.leaf = r.lf, false) AS ok, (r.pk IS NULL AND e.seq IS NOT NULL AND {retained}) AS ret"
            "  FROM ({entries}) e FULL JOIN"
            "  (SELECT {key} AS pk, {fast} AS lf FROM {table} t{rows_where}) r ON r.pk = e.pk) j"
            " GROUP BY 1, 2, 3, 4, 5, 6, 7"
        ).format(key=key_expr, fast=fast, table=sql.Identifier(table), entries=entries, rows_where=rows_where,
                 retained=_retained_sql(table) if retained is not None else sql.SQL("false"))
    bad: dict[tuple, tuple[int, int]] = {}
    gone: dict[tuple, tuple[int, int]] = {}  # one problem per deleted record, at its first entry
    recheck: list[tuple[int, int, str, bytes]] = []
    suffix = "" if part is None else f"_{part[0] if part[0] is not None else 'min'}"
    with conn.cursor(name=f"ledger_verify_{table}{suffix}") as cur:
        cur.execute(query, (table, *params))
        for seq, block, pk, leaf, doc, ok, ret, n in _prefetched(cur):
            if ok:
                report.records += n
                continue
            if ret:
                report.retained += n
                continue
            key = _key(pk)
            if seq is None:
                if (table, key) not in queued:
                    report.problems.append(Problem("inserted", "a record the ledger never sealed (no entry, nothing queued)",
                                                   table, named(columns, key)))
                else:
                    report.pending += 1
            elif doc is None:
                if (table, key) in erased:
                    report.erased += 1
                elif retained is not None and retained.holds(table, key):
                    report.retained += 1
                elif seq < gone.get(key, (seq + 1, 0))[0]:
                    gone[key] = (seq, block)
            elif doc == "":
                recheck.append((seq, block, pk, bytes(leaf)))
            elif leaf_hash(table, doc) == bytes(leaf):
                report.records += 1
            elif seq > bad.get(key, (0, 0))[0]:
                bad[key] = (seq, block)
    if recheck:  # the fast path's misses, decided by the definition (lineage.audit.hashing)
        docs = rows_by_key(conn, table, columns, [pk for _, _, pk, _ in recheck])
        for seq, block, pk, leaf in recheck:
            key = _key(pk)
            if leaf_hash(table, docs[pk]) == leaf:
                report.records += 1
            elif seq > bad.get(key, (0, 0))[0]:
                bad[key] = (seq, block)
    for key, (seq, block) in gone.items():
        report.problems.append(Problem("deleted", "a sealed record is gone and no erasure names it",
                                       table, named(columns, key), seq, block))
    for key, (seq, block) in bad.items():
        # An earlier version of an updated record (a revoked token) need not match: only the latest entry must.
        latest = conn.execute("SELECT max(seq) FROM ledger_entries WHERE tbl = %s AND pk = %s::jsonb",
                              (table, msgspec.json.encode(list(key)).decode())).fetchone()[0]
        if seq != latest:
            continue
        if (table, key) in queued:
            report.pending += 1
            continue
        report.problems.append(Problem("altered", "the record does not hash to its sealed leaf", table, named(columns, key), seq, block))



def _retained_sql(table: str) -> sql.Composable:
    """Is the entry key ``e.pk`` (a gone record's) one a retention of ``table`` archived?  The
    union of the retentions' ids is computed once per query; a key that is not one integer
    (only a forger writes one) is never retained."""
    return sql.SQL(
        "CASE WHEN jsonb_typeof(e.pk) <> 'array' THEN false"
        " WHEN jsonb_array_length(e.pk) = 1 AND (e.pk->>0) ~ '^-?[0-9]{{1,18}}$'"
        " THEN coalesce((e.pk->>0)::bigint <@ (SELECT range_agg(x.r) FROM retentions, unnest(ids) AS x(r) WHERE tbl = {}), false)"
        " ELSE false END").format(sql.Literal(table))


#: Column types whose ``to_json`` text is already their RFC 8785 form (strings escaped as the
#: RFC does, integers as digits, compact arrays of text); a table with any other type has no fast path.
_SQL_JSON_TYPES = {"bigint", "integer", "smallint", "boolean", "text", "uuid", "timestamp with time zone", "text[]"}


def leaf_sql(conn: psycopg.Connection, table: str) -> sql.Composable | None:
    """SQL for the leaf of a row of a table with digested columns, computed in the database:
    the RFC 8785 record built member by member in key order, null members left out.  A fast
    path only: a leaf it does not match is re-hashed by :func:`leaf_hash` before anything is
    reported, so where it could differ from the definition it costs time, never a verdict."""
    digested = DIGESTED.get(table)
    if not digested:
        return None
    members = []
    for name, kind in conn.execute(
            "SELECT attname::text, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attnum > 0 AND NOT attisdropped", (table,)):
        column = sql.Identifier("t", name)
        if name in digested:
            name += DIGEST_SUFFIX
            value = sql.SQL("'\"' || encode(sha256(convert_to({}::text, 'UTF8')), 'hex') || '\"'").format(column)
        elif kind in _SQL_JSON_TYPES:
            value = sql.SQL("to_json({})::text").format(column)
        else:
            return None
        member = sql.SQL("CASE WHEN {} IS NOT NULL THEN {} || {} END").format(
            column, sql.Literal(msgspec.json.encode(name).decode() + ":"), value)
        members.append((name.encode("utf-16-be"), member))
    members.sort(key=lambda m: m[0])  # RFC 8785: members sorted by their names' UTF-16 code units
    record = sql.SQL("'{{' || concat_ws(',', {}) || '}}'").format(sql.SQL(", ").join(m for _, m in members))
    return sql.SQL("sha256({} || convert_to({}, 'UTF8'))").format(sql.Literal(LEAF_TAG + table.encode() + b"\x00"), record)


def _part(columns: list[str], part) -> tuple[sql.Composable, sql.Composable, list]:
    """WHERE clauses restricting rows and entries to a key range; together the ranges of a
    table cover every possible entry key (a non-numeric key, which only a forger could write,
    sorts below every number in jsonb order and falls in the first range)."""
    if part is None:
        return sql.SQL(""), sql.SQL(""), []
    low, high = part
    rows, entries, params = [], [], []
    key = sql.Identifier("t", columns[0])
    if low is not None:
        entries.append(sql.SQL("coalesce(pk->0, 'null') >= to_jsonb(%s::bigint)"))
        params.append(low)
    if high is not None:
        entries.append(sql.SQL("coalesce(pk->0, 'null') < to_jsonb(%s::bigint)"))
        params.append(high)
    if low is not None:
        rows.append(sql.SQL("{} >= %s").format(key))
        params.append(low)
    if high is not None:
        rows.append(sql.SQL("{} < %s").format(key))
        params.append(high)
    return (sql.SQL(" WHERE ") + sql.SQL(" AND ").join(rows), sql.SQL(" AND ") + sql.SQL(" AND ").join(entries), params)


def _parts(conn: psycopg.Connection, table: str, columns: list[str], n: int) -> list[tuple[int | None, int | None] | None]:
    """Split a big table with one integer key into ``n`` key ranges (else: the whole table)."""
    if n < 2 or len(columns) != 1:
        return [None]
    kind = conn.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s",
                        (table, columns[0])).fetchone()
    if not kind or kind[0] not in ("bigint", "integer", "smallint"):
        return [None]
    low, high = conn.execute(sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(
        c=sql.Identifier(columns[0]), t=sql.Identifier(table))).fetchone()
    if low is None or high - low < PARALLEL_MIN:
        return [None]
    cuts = [low + (high - low + 1) * i // n for i in range(1, n)]
    return list(zip([None, *cuts], [*cuts, None]))


def _prefetched(cur) -> Iterator[tuple]:
    """The cursor's rows, the next chunk fetched in a thread while this one is hashed, so the
    server computes rows while Python hashes them (libpq waits without the GIL)."""
    with ThreadPoolExecutor(1, thread_name_prefix="ledger-fetch") as pool:
        pending = pool.submit(cur.fetchmany, _FETCH)
        while True:
            rows = pending.result()
            if not rows:
                return
            pending = pool.submit(cur.fetchmany, _FETCH)
            yield from rows


def check_checkpoints(conn: psycopg.Connection, checkpoints: list[tuple[str, dict | None]], public, report: Report) -> None:
    heads = {}
    for name, body in checkpoints:
        if body is None:
            report.problems.append(Problem("checkpoint", f"{name}: not a readable checkpoint"))
            continue
        wrong = cp.check(body, public)
        if wrong:
            report.problems.append(Problem("checkpoint", f"{name}: {wrong}", block=body.get("block") if isinstance(body.get("block"), int) else None))
            continue
        block = int(body["block"])
        if block not in heads:
            row = conn.execute("SELECT block_hash, last_entry FROM ledger_blocks WHERE seq = %s", (block,)).fetchone()
            heads[block] = (bytes(row[0]).hex(), row[1]) if row else None
        if heads[block] is None:
            report.problems.append(Problem("checkpoint", f"{name}: signed block {block} is not in the ledger: blocks were removed or the ledger was rewritten", block=block))
        elif heads[block] != (body["blockHash"], int(body["entries"])):
            report.problems.append(Problem(
                "checkpoint", f"{name}: block {block} no longer has the hash signed at {body.get('at')}: "
                f"the ledger up to block {block} was rewritten", block=block))
        else:
            report.checkpoints += 1


def verify(conn: psycopg.Connection, checkpoints: list[tuple[str, dict | None]] = (), public=None,
           connect: Callable[[], ContextManager[psycopg.Connection]] | None = None, workers: int | None = None,
           archive: Path | str | None = None) -> Report:
    """Verify everything in one REPEATABLE READ snapshot; see the module docstring.

    With ``connect`` (a factory of further connections, e.g. ``Database.connection``), big
    tables are split by key range over ``workers`` connections (default: the CPU count, at
    most 4) that share this transaction's snapshot (``pg_export_snapshot``), so the database
    re-reads and digests rows on every core while this process hashes them.

    With ``archive`` (the directory ``lineage maintain retain`` wrote), every retention's
    archive is checked too (:func:`lineage.audit.archive.check_archives`).
    """
    report = Report()
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:  # else: the caller's transaction
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    _session(conn)
    blocks = conn.execute(
        "SELECT seq, first_entry, last_entry, prev_hash, merkle_root, block_hash, sealed_at FROM ledger_blocks ORDER BY seq"
    ).fetchall()
    blocks = [(s, f, la, bytes(p), bytes(r), bytes(h), at) for s, f, la, p, r, h, at in blocks]
    tables = key_columns(conn)
    tables.update({t: _guess_columns(conn, t) for (t,) in conn.execute("SELECT DISTINCT tbl FROM ledger_entries") if t not in tables})
    erased = erased_keys(r[0] for r in conn.execute("SELECT what FROM erasures"))
    queued = {(t, _key(pk)) for t, pk in conn.execute("SELECT tbl, pk::text FROM ledger_queue")}
    retained = Retained.load(conn)
    workers = max(1, min(4, os.cpu_count() or 1) if workers is None else workers) if connect is not None else 1
    jobs = []
    for table, columns in tables.items():
        if columns is None:
            report.problems.append(Problem("block", f"ledger entries name table `{table}`, which no longer exists or has no key"))
            continue
        jobs.extend((table, columns, part) for part in _parts(conn, table, columns, workers))
    if workers > 1 and len(jobs) > 1:
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]

        def run(job) -> Report:
            part_report = Report()
            with connect() as other:
                other.execute(sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
                other.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                _session(other)
                check_records(other, *job[:2], erased, queued, part_report, job[2], retained)
                other.rollback()
            return part_report

        with ThreadPoolExecutor(workers, thread_name_prefix="ledger-verify") as pool:
            futures = [pool.submit(run, job) for job in jobs]
            with conn.cursor(name="ledger_verify_entries") as cur:  # the chain, meanwhile, on this connection
                cur.itersize = 50_000
                cur.execute("SELECT seq, block, leaf FROM ledger_entries ORDER BY seq")
                check_blocks(blocks, cur, report)
            parts = [f.result() for f in futures]
    else:
        with conn.cursor(name="ledger_verify_entries") as cur:
            cur.itersize = 50_000
            cur.execute("SELECT seq, block, leaf FROM ledger_entries ORDER BY seq")
            check_blocks(blocks, cur, report)
        parts = []
        for table, columns, part in jobs:
            check_records(conn, table, columns, erased, queued, report, part, retained)
    for part_report in parts:  # in job order: the same report whatever the threads' timing
        report.records += part_report.records
        report.pending += part_report.pending
        report.erased += part_report.erased
        report.retained += part_report.retained
        report.problems.extend(part_report.problems)
    if archive is not None:
        from lineage.audit.archive import check_archives

        check_archives(conn, Path(archive), report)
    if public is not None:
        check_checkpoints(conn, list(checkpoints), public, report)
    return report


def _session(conn: psycopg.Connection) -> None:
    conn.execute("SET LOCAL TIME ZONE 'UTC'")
    conn.execute("SET LOCAL bytea_output = 'hex'")
    # The fast path hashes in SQL: the built-ins must be the ones called.  pg_catalog named
    # first means a `sha256` or `||` the owner planted in a schema it placed ahead cannot answer.
    conn.execute("SELECT set_config('search_path', 'pg_catalog, ' || current_setting('search_path'), true)")


def _guess_columns(conn: psycopg.Connection, table: str) -> list[str] | None:
    """A table the ledger has entries for but ``ledger_tables`` lost: its primary key now."""
    row = conn.execute(
        "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i"
        " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary", (table,)).fetchone()
    return row[0] if row else None
