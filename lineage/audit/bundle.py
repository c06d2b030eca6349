"""Evidence bundles: export a range of the ledger with its records, verify it with no database.

Layout of a bundle directory (format ``lineage-evidence/v2``)::

    README.md            how a third party verifies it, and the formats (lineage.audit.hashing)
    manifest.json        range, tables and their key columns, withheld entries and why
    blocks.jsonl         one block header per line (seq, prev, root, first, last, sealedAt, hash):
                         the blocks of the range, then every later block up to the newest, so
                         the range links to a signed checkpoint
    entries.jsonl        one ledger entry per line (seq, block, table, key, leaf) for the range
    records/TABLE.jsonl  each record of the range as hashed (``to_jsonb(row)``), one a line; a
                         digested column (``raw_events.payload``) as its exact text, a JSON
                         string, which the verifier hashes (lineage.audit.hashing)
    checkpoints/*.json   every signed checkpoint
    public-key.pem       the Ed25519 key the checkpoints are signed with (get it independently too)

Contract of :func:`verify_bundle`: the block chain links and each header hashes to its hash;
each block of the range has exactly its entries, whose Merkle root is the block's; every record
hashes to the leaf of its key's latest entry (else *altered*, named); a record with no entry is
*inserted*; an entry with no record must be withheld for a stated reason (erased: checked
against the bundle's erasure records when they are in it; superseded: a later entry for the
same key is in the bundle; updated after the range; retained: archived and dropped by a
recorded retention, its proof in the retention's archive) or it is *deleted*; at least one
checkpoint signed by the trusted key must match a block of the bundle, and every checkpoint
that names a block of the bundle must match it.  Nothing here opens a database.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from lineage.audit import checkpoint as cp
from lineage.audit.readme import TEXT as README
from lineage.audit.hashing import block_hash, digest_columns, leaf_hash, merkle_root, when
from lineage.audit.report import Problem, Report
from lineage.audit.seal import key_columns, key_join, record_sql
from lineage.audit.verify import Retained, _key, erased_keys, named
from lineage.errors import ConfigError

# v2: digested columns are carried as their text (v1 bundles predate them).
FORMAT = "lineage-evidence/v2"


def _range(conn: psycopg.Connection, start: datetime | None, end: datetime | None) -> tuple[int, int, int]:
    """(first block, last block, newest block) of the time range.  A block holds what was
    committed before its ``sealed_at`` and after the previous one's, so the range runs from
    the first block sealed at or after ``start`` to the first sealed at or after ``end``."""
    newest = conn.execute("SELECT max(seq) FROM ledger_blocks").fetchone()[0]
    if newest is None:
        raise ConfigError("the ledger has no sealed block yet: run `lineage audit seal` first")
    first = 1 if start is None else conn.execute(
        "SELECT min(seq) FROM ledger_blocks WHERE sealed_at >= %s", (start,)).fetchone()[0]
    last = newest if end is None else (conn.execute(
        "SELECT min(seq) FROM ledger_blocks WHERE sealed_at >= %s", (end,)).fetchone()[0] or newest)
    if first is None or first > last:
        raise ConfigError("no block of the ledger was sealed in that time range")
    return first, last, newest


def export(conn: psycopg.Connection, folder: Path, checkpoints_dir: Path, public_pem: bytes | None,
           start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Write a bundle of the blocks sealed in [start, end] into ``folder`` (must be empty or new)."""
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"`{folder}` is not empty: export into a new directory")
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    conn.execute("SET LOCAL TIME ZONE 'UTC'")
    conn.execute("SET LOCAL bytea_output = 'hex'")
    first, last, newest = _range(conn, start, end)
    (folder / "records").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    with (folder / "blocks.jsonl").open("w") as out:
        for seq, f, la, prev, root, digest, at in conn.execute(
                "SELECT seq, first_entry, last_entry, prev_hash, merkle_root, block_hash, sealed_at FROM ledger_blocks"
                " WHERE seq >= %s ORDER BY seq", (first,)):
            out.write(json.dumps({"seq": seq, "prev": bytes(prev).hex(), "root": bytes(root).hex(), "first": f, "last": la,
                                  "sealedAt": when(at), "hash": bytes(digest).hex()}) + "\n")
    # Keys sealed more than once (updated records): only the latest version can be exported.
    latest = {(t, pk): s for t, pk, s in conn.execute(
        "SELECT tbl, pk::text, max(seq) FROM ledger_entries GROUP BY 1, 2 HAVING count(*) > 1")}
    withheld: dict[int, str] = {}
    tables = key_columns(conn)
    range_end = _last_entry(conn, last)
    with (folder / "entries.jsonl").open("w") as out, conn.cursor(name="bundle_entries") as cur:
        cur.itersize = 20_000
        cur.execute("SELECT seq, block, tbl, pk::text, leaf FROM ledger_entries WHERE block BETWEEN %s AND %s ORDER BY seq",
                    (first, last))
        for seq, block, table, pk, leaf in cur:
            out.write(f'{{"seq":{seq},"block":{block},"table":{json.dumps(table)},"key":{pk},"leaf":"{bytes(leaf).hex()}"}}\n')
            newer = latest.get((table, pk))
            if newer is not None and newer > seq:
                withheld[seq] = "superseded" if newer <= range_end else f"updated after the range (entry {newer})"
    retained = Retained.load(conn)
    for table, columns in tables.items():
        query = sql.SQL(
            "SELECT e.seq, e.pk::text, CASE WHEN {found} IS NOT NULL THEN {record} END FROM ledger_entries e LEFT JOIN {table} t ON {join}"
            " WHERE e.tbl = %s AND e.block BETWEEN %s AND %s ORDER BY e.seq").format(
                found=sql.Identifier("t", columns[0]), record=record_sql(conn, table, export=True), table=sql.Identifier(table),
                join=key_join(conn, table, columns, pk="e.pk"))
        with (folder / "records" / f"{table}.jsonl").open("w") as out, conn.cursor(name=f"bundle_{table}") as cur:
            cur.itersize = 5_000
            cur.execute(query, (table, first, last))
            for seq, pk, doc in cur:
                if seq in withheld:
                    continue
                if doc is None:
                    # A record a retention archived (lineage maintain retain) is named so; else it was erased.
                    withheld[seq] = "retained" if retained is not None and retained.holds(table, _key(pk)) else "erased"
                else:
                    out.write(doc + "\n")
    copied = 0
    for path in sorted(checkpoints_dir.glob("*.json")) if checkpoints_dir.is_dir() else []:
        shutil.copy2(path, folder / "checkpoints" / path.name)
        copied += 1
    if public_pem:
        (folder / "public-key.pem").write_bytes(public_pem)
    manifest = {"format": FORMAT, "from": when(start) if start else None, "to": when(end) if end else None,
                "blocks": [first, last], "newestBlock": newest, "tables": tables,
                "withheld": {str(k): v for k, v in sorted(withheld.items())}, "checkpoints": copied}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "README.md").write_text(README)
    return manifest


def _last_entry(conn: psycopg.Connection, block: int) -> int:
    return conn.execute("SELECT last_entry FROM ledger_blocks WHERE seq = %s", (block,)).fetchone()[0]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def verify_bundle(folder: Path, public_pem: bytes | None = None) -> Report:
    """Check a bundle offline; ``public_pem`` is the trusted key (default: the bundle's own)."""
    report = Report()
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        blocks = _lines(folder / "blocks.jsonl")
        entries = _lines(folder / "entries.jsonl")
    except (OSError, ValueError, msgspec.DecodeError) as exc:
        raise ConfigError(f"`{folder}` is not a readable evidence bundle: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"`{folder}`: unknown bundle format {manifest.get('format')!r} (expected {FORMAT})")
    first, last = manifest["blocks"]
    tables: dict[str, list[str]] = manifest["tables"]
    # The chain: links and header hashes, from the range's first block to the newest.
    by_seq: dict[int, dict] = {}
    prev = None
    for b in blocks:
        header = {k: b[k] for k in ("seq", "prev", "root", "first", "last", "sealedAt")}
        if block_hash(header).hex() != b["hash"]:
            report.problems.append(Problem("block", "block header does not hash to its hash", block=b["seq"], seq=b["first"]))
        if prev is not None and (b["seq"] != prev["seq"] + 1 or b["prev"] != prev["hash"] or b["first"] != prev["last"] + 1):
            report.problems.append(Problem("block", "does not link to the previous block", block=b["seq"], seq=b["first"]))
        by_seq[b["seq"]] = b
        prev = b
    # Entries of the range: per block, exactly its entries, with its Merkle root.
    per_block: dict[int, list[dict]] = {}
    for e in entries:
        per_block.setdefault(e["block"], []).append(e)
    for seq in range(first, last + 1):
        b, es = by_seq.get(seq), per_block.get(seq, [])
        if b is None:
            report.problems.append(Problem("block", "block of the range is missing from blocks.jsonl", block=seq))
            continue
        if [e["seq"] for e in es] != list(range(b["first"], b["last"] + 1)) or \
                merkle_root([bytes.fromhex(e["leaf"]) for e in es]).hex() != b["root"]:
            report.problems.append(Problem("block", "Merkle root does not match its entries (an entry was altered, added or removed)",
                                           block=seq, seq=b["first"]))
        else:
            report.blocks += 1
    report.entries = len(entries)
    # Records against the latest entry of their key.
    latest: dict[tuple[str, tuple], dict] = {}
    for e in entries:
        latest[(e["table"], tuple(e["key"]))] = e
    covered: set[int] = set()
    erasure_rows = []
    for table, columns in tables.items():
        path = folder / "records" / f"{table}.jsonl"
        for line in (path.read_bytes().splitlines() if path.exists() else []):
            if not line.strip():
                continue
            try:
                row = msgspec.json.decode(line)
                key = tuple(row[c] for c in columns)
            except (msgspec.DecodeError, KeyError, TypeError):
                report.problems.append(Problem("altered", f"records/{table}.jsonl: a line that is not a record: {line[:80]!r}", table))
                continue
            if table == "erasures":
                erasure_rows.append(row.get("what"))
            entry = latest.get((table, key))
            try:
                hashed = msgspec.json.encode(digest_columns(table, dict(row)))
            except TypeError:  # a digested column that is not its text: it cannot be what was sealed
                hashed = None
            if entry is None:
                report.problems.append(Problem("inserted", "a record with no ledger entry in the bundle", table, named(columns, key)))
            elif hashed is None or leaf_hash(table, hashed).hex() != entry["leaf"]:
                report.problems.append(Problem("altered", "the record does not hash to its sealed leaf", table,
                                               named(columns, key), entry["seq"], entry["block"]))
                covered.add(entry["seq"])
            else:
                report.records += 1
                covered.add(entry["seq"])
    erased = erased_keys(erasure_rows)
    withheld = manifest.get("withheld", {})
    for e in entries:
        if e["seq"] in covered:
            continue
        key = tuple(e["key"])
        reason = withheld.get(str(e["seq"]))
        newer = latest[(e["table"], key)]["seq"] > e["seq"]
        if reason is None and not newer:
            report.problems.append(Problem("deleted", "sealed record missing from the bundle, and no reason given", e["table"],
                                           named(tables.get(e["table"], ["key"]), key), e["seq"], e["block"]))
        elif reason == "erased" and (e["table"], key) in erased:
            report.erased += 1
        else:
            report.hash_only += 1
    _check_bundle_checkpoints(folder, public_pem, by_seq, last, report)
    return report


def _check_bundle_checkpoints(folder: Path, public_pem: bytes | None, by_seq: dict[int, dict], last: int, report: Report) -> None:
    if public_pem is None:
        key_path = folder / "public-key.pem"
        if not key_path.exists():
            report.problems.append(Problem("checkpoint", "no public key: pass --public-key or include public-key.pem"))
            return
        public_pem = key_path.read_bytes()
    public = cp.load_public(public_pem)
    anchored = False
    for name, body in cp.read_all(folder / "checkpoints"):
        if body is None:
            report.problems.append(Problem("checkpoint", f"{name}: not a readable checkpoint"))
            continue
        wrong = cp.check(body, public)
        if wrong:
            report.problems.append(Problem("checkpoint", f"{name}: {wrong}"))
            continue
        b = by_seq.get(int(body["block"]))
        if b is None:
            continue  # signed before the range began: nothing of it is in the bundle
        if (b["hash"], b["last"]) != (body["blockHash"], int(body["entries"])):
            report.problems.append(Problem("checkpoint", f"{name}: block {b['seq']} in the bundle is not the block signed at {body.get('at')}",
                                           block=b["seq"]))
            continue
        report.checkpoints += 1
        anchored = anchored or b["seq"] >= last
    if not anchored:
        report.problems.append(Problem("checkpoint", f"no checkpoint signed by the trusted key covers block {last}, the end of the range: "
                                       "run `lineage audit checkpoint` and export again"))
