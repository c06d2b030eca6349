"""The verifier's fast paths give the same verdicts as the definition.

* Each ``raw_events`` leaf is computed by the database (:func:`lineage.audit.verify.leaf_sql`):
  it must be byte-identical to :func:`lineage.audit.hashing.leaf_hash` of the record, for odd
  text too, and a fast path that is wrong must cost time, never a verdict.
* Big tables are split by key range over several connections sharing one snapshot: the
  owner's update, delete and insert are still named exactly, at either end of the key range.
* The payload enters the record as the SHA-256 of its text, recomputed from the payload: an
  owner who edits only the payload is caught.
"""

from __future__ import annotations

import hashlib

import pytest
from psycopg import sql

from lineage.audit import verify as verify_module
from lineage.audit.hashing import digest_columns, leaf_hash
from lineage.audit.seal import record_sql
from lineage.audit.verify import leaf_sql, verify


def _as_owner(owner, statement: str, params=None) -> None:
    owner.execute("ALTER TABLE raw_events DISABLE TRIGGER USER")
    try:
        owner.execute(statement, params)
    finally:
        owner.execute("ALTER TABLE raw_events ENABLE TRIGGER USER")


def test_the_database_computes_the_same_leaf_as_the_definition(filled, owner):
    odd = 'tab\t nl\n quote" backslash\\ ctl\x01\x1f del\x7f é 😀 \u2028'
    _as_owner(owner, "UPDATE raw_events SET job_name = %s, event_type = NULL, normalizations = ARRAY['a', %s, NULL]"
              " WHERE id = (SELECT max(id) FROM raw_events)", (odd, odd))
    with filled.connection() as conn:
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        rows = conn.execute(sql.SQL("SELECT {}, {} FROM raw_events t ORDER BY id").format(
            leaf_sql(conn, "raw_events"), record_sql(conn, "raw_events"))).fetchall()
    assert len(rows) > 5
    assert [bytes(fast) for fast, _ in rows] == [leaf_hash("raw_events", doc) for _, doc in rows]


def test_a_wrong_fast_path_costs_time_never_a_verdict(filled, monkeypatch):
    monkeypatch.setattr(verify_module, "leaf_sql", lambda conn, table: sql.SQL("sha256('wrong'::bytea)")
                        if table == "raw_events" else None)
    with filled.connection() as conn:
        report = verify(conn)
    assert report.ok, report.summary()
    with filled.connection() as conn:
        total = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    assert report.records >= total


def test_the_payload_is_hashed_from_its_text():
    row = {"id": 1, "payload": '{"a": 1}'}
    assert digest_columns("raw_events", dict(row)) == {"id": 1, "payload#sha256": hashlib.sha256(b'{"a": 1}').hexdigest()}
    assert digest_columns("role_grants", dict(row)) == row
    with pytest.raises(TypeError):
        digest_columns("raw_events", {"id": 1, "payload": {"a": 1}})


def test_an_owner_who_edits_only_the_payload_is_named(filled, owner):
    target = owner.execute("SELECT max(id) FROM raw_events").fetchone()[0]
    _as_owner(owner, "UPDATE raw_events SET payload = jsonb_set(payload, '{producer}', '\"https://forged.example\"')"
              " WHERE id = %s", (target,))
    with filled.connection() as conn:
        report = verify(conn)
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("altered", "raw_events", {"id": target})]


@pytest.fixture
def split(filled, monkeypatch):
    """Verify with every table of one integer key split in two ranges over two connections."""
    monkeypatch.setattr(verify_module, "PARALLEL_MIN", 1)

    def run():
        with filled.connection() as conn:
            return verify(conn, connect=filled.connection, workers=2)
    return run


def test_a_split_verification_of_an_untouched_ledger_matches_the_whole(filled, split):
    with filled.connection() as conn:
        whole = verify(conn)
    parts = split()
    assert parts.ok, parts.summary()
    assert (parts.records, parts.erased, parts.blocks, parts.entries) == (whole.records, whole.erased, whole.blocks, whole.entries)


@pytest.mark.parametrize("end", ["min", "max"])
def test_a_split_verification_names_updates_deletes_and_inserts_at_either_end(filled, owner, split, end):
    unreferenced = "NOT EXISTS (SELECT 1 FROM dataset_versions v WHERE v.raw_event_id = raw_events.id)"
    live = owner.execute(f"SELECT {end}(id) FROM raw_events").fetchone()[0]
    spare = owner.execute(f"SELECT {end}(id) FROM raw_events WHERE {unreferenced} AND id <> %s", (live,)).fetchone()[0]
    _as_owner(owner, "UPDATE raw_events SET producer = 'https://forged.example' WHERE id = %s", (live,))
    _as_owner(owner, "DELETE FROM raw_events WHERE id = %s", (spare,))
    forged = -5 if end == "min" else 10_000_000
    _as_owner(owner, "INSERT INTO raw_events SELECT %s, gen_random_uuid(), kind, event_type, event_time, run_uuid, job_namespace,"
              " job_name, producer, payload, recorded_at, normalizations FROM raw_events WHERE id = %s", (forged, live))
    report = split()
    assert sorted((p.kind, p.key["id"]) for p in report.problems) == sorted(
        [("altered", live), ("deleted", spare), ("inserted", forged)])
    assert all(p.table == "raw_events" for p in report.problems)
