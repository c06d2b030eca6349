"""The group commit's one-statement store (``store_group``): the same rows, claims and queue
entries as the batch path, all or nothing, and a pooled connection handed back as it was taken."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from lineage.errors import StoreRefused
from lineage.events import parse_raw
from lineage.samples import dataset, run_event
from lineage.store import derive
from lineage.store.group_commit import _store
from lineage.store.ingest import SMALL_GROUP, SMALL_GROUP_BYTES, ingest_events, store_group

_COLUMNS = "event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer, payload, normalizations"


def _mixed(tag: str) -> list:
    """A run event with inputs and outputs, one whose time had no offset (a normalisation note),
    one with look-alike Unicode and quotes in its names, a job event and a dataset event."""
    rid = str(uuid.uuid4())
    plain = run_event("START", (f"ns-{tag}", "train"), rid, [dataset("db", "in", [("a", "int")])], [dataset("db", "out")])
    naive = run_event("COMPLETE", (f"ns-{tag}", "train"), rid)
    naive["eventTime"] = "2026-11-03T10:00:00"
    odd = run_event("START", (f"ns-{tag}", 'tr\u0430in "x"\\\t\u00e9\U0001f600'), str(uuid.uuid4()))  # Cyrillic a
    job = {"eventTime": "2026-11-03T10:00:00Z", "producer": "https://example.com/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
           "job": {"namespace": f"ns-{tag}", "name": "static"}, "inputs": [dataset("db", "in")], "outputs": []}
    ds = {"eventTime": "2026-11-03T10:00:00Z", "producer": "https://example.com/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
          "dataset": dataset("db", f"only-{tag}")}
    return [parse_raw(json.dumps(e).encode()) for e in (plain, naive, odd, job, ds)]


def _rows(conn, events) -> list:
    keys = [ev.key for ev in events]
    return conn.execute(f"SELECT {_COLUMNS} FROM raw_events WHERE event_key = ANY(%s) ORDER BY event_key", (keys,)).fetchall()


def _expected(events) -> list:
    return sorted(((ev.key, ev.kind, ev.event_type, ev.event_time, ev.run_id, ev.job_namespace, ev.job_name, ev.producer,
                    json.loads(ev.payload), ev.normalizations or None) for ev in events), key=lambda r: r[0])


def test_a_group_is_stored_as_the_batch_path_stores_it(db):
    events = _mixed("a")
    assert any(ev.normalizations for ev in events) and {ev.kind for ev in events} == {"run", "job", "dataset"}
    with db.connection() as conn:  # the batch path's rows for the very same events, then undone
        conn.execute("SET TIME ZONE 'UTC'")
        ingest_events(conn, events, defer=True)
        reference = _rows(conn, events)
        conn.rollback()
        assert _rows(conn, events) == []
    with db.connection() as conn:
        conn.autocommit = True
        assert store_group(conn, events).stored == 5
        conn.autocommit = False
    with db.connection() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        got = _rows(conn, events)
        assert got == reference == _expected(events)
        # Each row is a claim (the trigger would have refused it otherwise) and one queue entry holds the group.
        claims = conn.execute("SELECT count(*) FROM event_keys k JOIN raw_events r ON r.id = k.raw_id AND r.event_key = k.event_key"
                              " AND r.recorded_at = k.recorded_at WHERE k.event_key = ANY(%s)", ([ev.key for ev in events],)).fetchone()[0]
        assert claims == 5
        assert conn.execute("SELECT raw_ids FROM derive_queue").fetchall() == [(sorted(r[0] for r in conn.execute(
            "SELECT id FROM raw_events WHERE event_key = ANY(%s)", ([ev.key for ev in events],))),)]


def test_a_stored_group_derives_the_graph_synchronous_ingest_would(db):
    events = _mixed("c")
    with db.connection() as conn:
        _store(conn, events)
    assert db.run(derive.derive_pending) == 5
    with db.connection() as conn:
        derived = conn.execute("SELECT n.name, j.name FROM jobs j JOIN namespaces n ON n.id = j.namespace_id ORDER BY 1, 2").fetchall()
        runs = conn.execute("SELECT run_uuid, state FROM runs ORDER BY 1").fetchall()
        conn.execute("SELECT lineage_clear_derived()")
        from lineage.store.ingest import rebuild

        rebuild(conn)
        assert conn.execute("SELECT n.name, j.name FROM jobs j JOIN namespaces n ON n.id = j.namespace_id ORDER BY 1, 2").fetchall() == derived
        assert conn.execute("SELECT run_uuid, state FROM runs ORDER BY 1").fetchall() == runs
    assert ("ns-c", 'tr\u0430in "x"\\\t\u00e9\U0001f600') in derived and ("ns-c", "train") in derived


def test_duplicates_in_a_group_and_already_stored_events_are_stored_once(db):
    events = _mixed("d")
    with db.connection() as conn:
        _store(conn, events[:2])
    with db.connection() as conn:
        conn.autocommit = True
        result = store_group(conn, events + events[2:4] + [events[0]])
        conn.autocommit = False
    assert (result.stored, result.duplicates) == (3, 5)
    with db.connection() as conn:
        assert len(_rows(conn, events)) == 5
        assert conn.execute("SELECT count(*) FROM event_keys WHERE event_key = ANY(%s)", ([ev.key for ev in events],)).fetchone()[0] == 5
        assert derive.pending_events(conn) == 5
        conn.commit()
        conn.autocommit = True
        again = store_group(conn, events)  # every one a duplicate: no empty queue row
        conn.autocommit = False
    assert (again.stored, again.duplicates) == (0, 5)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == 2


def test_a_group_with_a_value_the_store_refuses_leaves_nothing_behind(db):
    """All or nothing: one event the store refuses (jsonb has no \\u0000) fails the statement,
    and not one claim, row or queue entry of the group remains (the others are stored when the
    committer retries them one by one)."""
    events = _mixed("e")
    events[3].payload = events[3].payload[:-1] + b',"x":"\\u0000"}'
    with db.connection() as conn:
        before = conn.execute("SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM raw_events), (SELECT count(*) FROM derive_queue)").fetchone()
    with pytest.raises(StoreRefused, match="SQLSTATE 22P05"), db.connection() as conn:
        _store(conn, events)
    with db.connection() as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM raw_events), (SELECT count(*) FROM derive_queue)").fetchone() == before
        assert conn.autocommit is False  # handed back to the pool as it was taken


def test_the_pool_gets_its_connection_back_out_of_autocommit(db):
    with db.connection() as conn:
        _store(conn, _mixed("f"))
        assert conn.autocommit is False
        conn.execute("SELECT 1")
        assert conn.info.transaction_status.name == "INTRANS"  # still transactional: a statement opens a transaction


def test_a_group_of_more_events_than_the_statement_takes_goes_the_copy_way(db):
    events = [parse_raw(json.dumps(run_event("START", ("big", f"job{k}"), str(uuid.uuid4()),
                                             at=datetime(2026, 11, 3, tzinfo=timezone.utc))).encode()) for k in range(SMALL_GROUP + 6)]
    with db.connection() as conn, pytest.raises(ValueError, match=str(SMALL_GROUP)):
        store_group(conn, events)
    with db.connection() as conn:
        _store(conn, events)
    with db.connection() as conn:
        assert len(_rows(conn, events)) == SMALL_GROUP + 6 and derive.pending_events(conn) == SMALL_GROUP + 6


def test_a_group_of_large_events_goes_the_copy_way(db):
    """One request may carry 32 MB: a few such events must not become one multi-gigabyte parameter."""
    big = "x" * (SMALL_GROUP_BYTES // 2)
    events = [parse_raw(json.dumps(run_event("START", ("big", f"large{k}"), str(uuid.uuid4()),
                                             extra_run_facets={"blob": {"_producer": "https://example.com/p",
                                                                        "_schemaURL": "https://example.com/s", "data": big}})).encode())
              for k in range(3)]
    with db.connection() as conn, pytest.raises(ValueError, match="bytes of payload"):
        store_group(conn, events)
    with db.connection() as conn:
        _store(conn, events)
    with db.connection() as conn:
        assert len(_rows(conn, events)) == 3 and derive.pending_events(conn) == 3
