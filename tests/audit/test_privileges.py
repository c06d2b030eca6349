"""The application role cannot switch the record's guards off, nor rewrite the ledger.

The issue said the append-only trigger on ``raw_events`` could be switched off by any
session; since migration 0006 the application role does not own the tables, so it cannot.
These attacks check that, and the same for the ledger's own tables and the ledger triggers:
each must be refused with ``insufficient_privilege`` and leave everything as it was.
"""

from __future__ import annotations

import psycopg
import pytest

from lineage.audit.verify import verify

GUARDED = ("raw_events", "contract_versions", "api_tokens", "ledger_entries", "ledger_blocks", "ledger_tables")


def _attacks(table: str) -> list[list[str]]:
    return [
        [f"ALTER TABLE {table} DISABLE TRIGGER ALL"],
        [f"ALTER TABLE {table} DISABLE TRIGGER USER"],
        ["SET session_replication_role = replica"],
        [f"TRUNCATE {table}"],
        [f"DROP TABLE {table} CASCADE"],
        [f"DELETE FROM {table}"],
        [f"UPDATE {table} SET {'leaf = leaf' if table == 'ledger_entries' else 'seq = seq' if table == 'ledger_blocks' else 'name = name' if table in ('ledger_tables', 'api_tokens') else 'recorded_at = recorded_at'}"],
    ] + ([[f"ALTER TABLE {table} DISABLE TRIGGER {table}_ledger_insert"],
          [f"DROP TRIGGER {table}_ledger_insert ON {table}"]] if not table.startswith("ledger_") else [])


CASES = [(t, i) for t in GUARDED for i in range(len(_attacks(t)))]


def _state(owner) -> tuple:
    return tuple(owner.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in GUARDED) + (
        owner.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%ledger%' AND tgenabled = 'O'").fetchone()[0],)


@pytest.mark.parametrize("table,attack", CASES, ids=[f"{t}-{i}" for t, i in CASES])
def test_the_application_role_cannot_switch_guards_off_or_rewrite(filled, owner, role_urls, table, attack):
    before = _state(owner)
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            for statement in _attacks(table)[attack]:
                conn.execute(statement)
    assert _state(owner) == before


@pytest.mark.parametrize("statement", [
    "INSERT INTO ledger_queue (tbl, pk) VALUES ('raw_events', '[1]')",
    "UPDATE ledger_queue SET pk = '[1]'",
    "INSERT INTO ledger_tables (name, key_columns) VALUES ('jobs', ARRAY['id'])",
    "SELECT lineage_ledger_table('jobs')",
    "SELECT lineage_ledger_enqueue()",
])
def test_the_application_role_cannot_forge_queue_entries_or_ledger_tables(filled, role_urls, statement):
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_a_block_that_does_not_extend_the_chain_is_refused(filled, role_urls):
    with psycopg.connect(role_urls["app"]) as conn:
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            conn.execute("INSERT INTO ledger_blocks (seq, first_entry, last_entry, prev_hash, merkle_root, block_hash, sealed_at)"
                         " VALUES (3, 1000, 1000, sha256('x'), sha256('y'), sha256('z'), now())")


def test_the_reader_can_verify_and_cannot_touch_the_queue(filled, role_urls):
    with psycopg.connect(role_urls["reader"]) as conn:
        assert verify(conn).ok
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM ledger_queue")


def test_a_table_ledgered_later_is_backfilled_and_verified(filled, owner, db):
    """What the lead does for a new table: one call in a migration (run here as the owner)."""
    owner.execute("CREATE TABLE later_table (id bigserial PRIMARY KEY, item text NOT NULL)")
    owner.execute("INSERT INTO later_table (item) VALUES ('before the ledger knew it')")
    owner.execute("SELECT lineage_make_append_only('later_table')")
    owner.execute("SELECT lineage_ledger_table('later_table')")
    with db.connection() as conn:
        conn.execute("INSERT INTO later_table (item) VALUES ('after')")
    from lineage.audit.seal import seal_all

    with db.connection() as conn:
        seal_all(conn)
    with db.connection() as conn:
        report = verify(conn)
    assert report.ok and report.pending == 0
    owner.execute("ALTER TABLE later_table DISABLE TRIGGER USER")
    owner.execute("UPDATE later_table SET item = 'forged' WHERE id = 1")
    with db.connection() as conn:
        assert [(p.kind, p.table, p.key) for p in verify(conn).problems] == [("altered", "later_table", {"id": 1})]


def test_a_table_without_a_primary_key_cannot_be_ledgered(filled, owner):
    owner.execute("CREATE TABLE keyless (x int)")
    with pytest.raises(psycopg.errors.RaiseException, match="no primary key"):
        owner.execute("SELECT lineage_ledger_table('keyless')")
