"""Verify the archives of retained partitions (``lineage maintain retain``) against the ledger.

Contract of :func:`check_archives` (called by :func:`lineage.audit.verify.verify` when given
the archive directory): for every ``retentions`` row (a ledgered record, so an edited one is
reported *altered* by the ordinary check) the archive file must exist under the directory and
have exactly the SHA-256 recorded (else a *retention* problem: missing, or altered or
replaced); then every archived record is re-hashed by the ledger's definition
(:mod:`lineage.audit.hashing`, the payload carried as its text) and compared with the leaf of
its key's latest ledger entry in the database: a record that does not match is *altered*, one
the ledger never sealed is *inserted*, and a sealed id the retention names that the archive
lacks is *deleted*.  So the hash chain in the database, not the archive's own copies of the
leaves, is the authority.  Reads only.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import msgspec
import psycopg

from lineage.audit.hashing import digest_columns, leaf_hash
from lineage.audit.report import Problem, Report

TABLE = "raw_events"


def check_archives(conn: psycopg.Connection, directory: Path, report: Report) -> None:
    if conn.execute("SELECT to_regclass('retentions')").fetchone()[0] is None:
        return
    root = directory.resolve()
    for rid, name, relative, digest in conn.execute(
            "SELECT id, partition_name, archive, archive_sha256 FROM retentions WHERE tbl = %s ORDER BY id", (TABLE,)).fetchall():
        label = f"retention #{rid} ({name})"
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            report.problems.append(Problem("retention", f"{label}: archive {relative} is not in {directory}"))
            continue
        if sha256_file(path) != digest:
            report.problems.append(Problem("retention", f"{label}: archive {relative} does not have the SHA-256 the ledgered "
                                                        "retention recorded: it was altered or replaced"))
        _check_records(conn, rid, label, path, report)


def _check_records(conn: psycopg.Connection, rid: int, label: str, path: Path, report: Report) -> None:
    sealed: dict[int, tuple[int, int, bytes]] = {}
    for raw_id, seq, block, leaf in conn.execute(
            "SELECT (e.pk->>0)::bigint, e.seq, e.block, e.leaf FROM ledger_entries e"
            " WHERE e.tbl = %s AND CASE WHEN jsonb_typeof(e.pk) <> 'array' THEN false"
            "   WHEN jsonb_array_length(e.pk) = 1 AND (e.pk->>0) ~ '^-?[0-9]{1,18}$'"
            "   THEN (e.pk->>0)::bigint <@ (SELECT ids FROM retentions WHERE id = %s) ELSE false END ORDER BY e.seq", (TABLE, rid)):
        sealed[raw_id] = (seq, block, bytes(leaf))  # the latest entry wins
    seen: set[int] = set()
    try:
        with gzip.open(path, "rb") as lines:
            for n, line in enumerate(lines, start=1):
                try:
                    item = msgspec.json.decode(line)
                    raw_id = item["key"][0]
                    leaf = leaf_hash(TABLE, msgspec.json.encode(digest_columns(TABLE, dict(item["record"]))))
                except (msgspec.DecodeError, KeyError, IndexError, TypeError, ValueError):
                    report.problems.append(Problem("retention", f"{label}: line {n} of {path.name} is not an archived record"))
                    continue
                seen.add(raw_id)
                entry = sealed.get(raw_id)
                if entry is None:
                    report.problems.append(Problem("inserted", f"{label}: an archived record the ledger never sealed", TABLE, {"id": raw_id}))
                elif entry[2] != leaf:
                    report.problems.append(Problem("altered", f"{label}: the archived record does not hash to its sealed leaf",
                                                   TABLE, {"id": raw_id}, entry[0], entry[1]))
                else:
                    report.records += 1
    except (OSError, EOFError, gzip.BadGzipFile):
        report.problems.append(Problem("retention", f"{label}: {path.name} is not a readable gzip archive"))
        return
    for raw_id in sorted(set(sealed) - seen):
        seq, block, _ = sealed[raw_id]
        report.problems.append(Problem("deleted", f"{label}: a retained record is missing from its archive", TABLE, {"id": raw_id}, seq, block))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
