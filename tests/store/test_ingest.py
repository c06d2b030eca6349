"""Ingest into a real PostgreSQL: idempotent, order-independent, append-only, rebuildable."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lineage.events import parse_event
from lineage.samples import dataset, run_event
from example_pipeline.sample import ml_pipeline_sample
from lineage.store.ingest import ingest_events, rebuild

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _ingest(db, events):
    with db.connection() as conn:
        return ingest_events(conn, [parse_event(e) for e in events])


def _snapshot(conn) -> dict:
    """The derived graph as comparable values (ids differ between builds, names do not)."""
    q = {
        "runs": "SELECT run_uuid, state, started_at, ended_at FROM runs ORDER BY 1",
        "job_io": """SELECT jn.name, j.name, e.direction, dn.name, d.name, e.first_seen, e.last_seen FROM job_io e
                     JOIN jobs j ON j.id = e.job_id JOIN namespaces jn ON jn.id = j.namespace_id
                     JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id ORDER BY 1,2,3,4,5""",
        "datasets": """SELECT n.name, d.name, d.current_version, s.fields::text FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
                       LEFT JOIN dataset_schemas s ON s.id = d.schema_id ORDER BY 1, 2""",
        "versions": "SELECT d.name, v.version, v.run_uuid FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ORDER BY 1, 2",
        "states": "SELECT run_uuid, state, event_time FROM run_states ORDER BY 1, 3, 2",
    }
    return {k: conn.execute(sql).fetchall() for k, sql in q.items()}


def test_same_event_twice_is_stored_once(db):
    events = ml_pipeline_sample()
    first = _ingest(db, events)
    again = _ingest(db, events)
    assert (first.stored, first.duplicates) == (len(events), 0)
    assert (again.stored, again.duplicates) == (0, len(events))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(events)
        assert conn.execute("SELECT count(*) FROM run_states").fetchone()[0] == len(events)


def test_duplicate_inside_one_batch_counts_once(db):
    event = ml_pipeline_sample()[0]
    result = _ingest(db, [event, dict(event)])
    assert (result.stored, result.duplicates) == (1, 1)


def test_complete_before_start_ends_complete(db):
    rid = str(uuid.uuid4())
    start = run_event("START", ("ns", "j"), rid, at=T0)
    complete = run_event("COMPLETE", ("ns", "j"), rid, at=T0 + timedelta(minutes=5))
    _ingest(db, [complete])
    _ingest(db, [start])
    with db.connection() as conn:
        state, started, ended = conn.execute("SELECT state, started_at, ended_at FROM runs WHERE run_uuid = %s", (rid,)).fetchone()
    assert state == "COMPLETE"
    assert started == T0 and ended == T0 + timedelta(minutes=5)


def test_fail_is_kept_when_a_late_running_event_arrives(db):
    rid = str(uuid.uuid4())
    _ingest(db, [run_event("FAIL", ("ns", "j"), rid, at=T0 + timedelta(minutes=2))])
    _ingest(db, [run_event("RUNNING", ("ns", "j"), rid, at=T0 + timedelta(minutes=9))])
    with db.connection() as conn:
        assert conn.execute("SELECT state FROM runs WHERE run_uuid = %s", (rid,)).fetchone()[0] == "FAIL"


def test_raw_events_are_append_only(db):
    _ingest(db, ml_pipeline_sample()[:1])
    with db.connection() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE raw_events SET producer = 'https://forged'")
    with db.connection() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM raw_events")
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 1


def test_schema_and_versions_follow_outputs(db):
    _ingest(db, ml_pipeline_sample())
    with db.connection() as conn:
        fields, version = conn.execute(
            """SELECT s.fields, d.current_version FROM datasets d JOIN dataset_schemas s ON s.id = d.schema_id
               WHERE d.name = 'training.face_photos_v1'"""
        ).fetchone()
        versions = conn.execute("SELECT count(*) FROM dataset_versions").fetchone()[0]
    assert [f["name"] for f in fields] == ["photo_uri", "label"]
    assert version is not None
    assert versions == 4  # one per output of each of the four runs


def _random_events(rng: random.Random, n_jobs: int) -> list[dict]:
    events = []
    for j in range(n_jobs):
        ins = [dataset("db", f"t{rng.randrange(n_jobs)}", [("a", "int")] if rng.random() < 0.5 else None) for _ in range(rng.randint(0, 2))]
        outs = [dataset("db", f"t{j}", [("a", "int"), ("b", rng.choice(["int", "text"]))])]
        rid = str(uuid.UUID(int=rng.getrandbits(128)))
        at = T0 + timedelta(minutes=rng.randrange(1000))
        for etype in rng.sample(["START", "RUNNING", "COMPLETE", "FAIL", "OTHER"], rng.randint(1, 3)):
            events.append(run_event(etype, ("ns", f"job{j}"), rid, ins, outs, at + timedelta(seconds=rng.randrange(600))))
    return events


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 7))
def test_order_and_batching_do_not_change_the_graph_and_replay_rebuilds_it(db, seed, batch):
    """Property: any order and batching of the same events derives the same graph,
    and replaying the raw events rebuilds it exactly."""
    rng = random.Random(seed)
    events = _random_events(rng, 6)
    with db.connection() as conn:  # reset between examples: the erasure function is the only way
        conn.execute("SELECT lineage_erase(array(SELECT id FROM raw_events), 'test', 'reset between examples')")
        rebuild(conn)
    _ingest(db, events)
    with db.connection() as conn:
        in_order = _snapshot(conn)
        conn.execute("SELECT lineage_erase(array(SELECT id FROM raw_events), 'test', 'replay in another order')")
        rebuild(conn)
    shuffled = events[:]
    rng.shuffle(shuffled)
    for i in range(0, len(shuffled), batch):
        _ingest(db, shuffled[i : i + batch])
    with db.connection() as conn:
        assert _snapshot(conn) == in_order
        rebuild(conn)
        assert _snapshot(conn) == in_order


def test_ingest_batch_reports_rejects_by_index_and_stores_the_rest(db):
    from lineage.store.batch import ingest_batch

    events = ml_pipeline_sample()
    items = [json.dumps(e).encode() for e in events] + [b"{not json", json.dumps(dict(events[0], eventType="DONE")).encode(), json.dumps(events[0]).encode()]
    with db.connection() as conn:
        result, rejected = ingest_batch(conn, items)
    assert (result.stored, result.duplicates) == (len(events), 1)
    assert [(i, exc.problems[0].path) for i, exc in rejected] == [(len(events), "$"), (len(events) + 1, "$.eventType")]


def _recorded(conn) -> dict:
    """Every derived row's recorded_at, keyed by names (ids differ between builds)."""
    q = {
        "namespaces": "SELECT name, recorded_at FROM namespaces ORDER BY 1",
        "jobs": "SELECT name, recorded_at FROM jobs ORDER BY 1",
        "datasets": "SELECT name, recorded_at FROM datasets ORDER BY 1",
        "runs": "SELECT run_uuid, recorded_at FROM runs ORDER BY 1",
        "versions": "SELECT d.name, v.version, v.recorded_at FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ORDER BY 1, 2",
        "run_io": "SELECT r.run_uuid, d.name, r.direction, r.recorded_at FROM run_io r JOIN datasets d ON d.id = r.dataset_id ORDER BY 1, 2, 3",
        "job_io": "SELECT j.name, d.name, e.direction, e.recorded_at FROM job_io e JOIN jobs j ON j.id = e.job_id JOIN datasets d ON d.id = e.dataset_id ORDER BY 1, 2, 3",
    }
    return {k: conn.execute(sql).fetchall() for k, sql in q.items()}


def test_rebuild_keeps_recorded_at_so_as_of_answers_do_not_change(db):
    from lineage.events import NodeId
    from lineage.store.graph import walk

    first = run_event("COMPLETE", ("ns", "clean"), str(uuid.uuid4()), [dataset("db", "raw")], [dataset("db", "clean")], T0)
    _ingest(db, [first])
    second = run_event("COMPLETE", ("ns", "train"), str(uuid.uuid4()), [dataset("db", "clean")], [dataset("db", "model")], T0 + timedelta(hours=1))
    _ingest(db, [second])
    node = NodeId("dataset", "db", "model")
    with db.connection() as conn:
        t1, t2 = [r[0] for r in conn.execute("SELECT recorded_at FROM raw_events ORDER BY id")]
        assert t1 < t2  # two transactions, one after the other
        before = {t: walk(conn, node, "upstream", 20, t).as_dict() for t in (t1, t2)}
        rows_before = _recorded(conn)
    assert "dataset:db:raw" not in {n["id"] for n in before[t1]["nodes"]}  # not known yet at t1
    assert "dataset:db:raw" in {n["id"] for n in before[t2]["nodes"]}
    with db.connection() as conn:
        rebuild(conn)
    with db.connection() as conn:
        assert _recorded(conn) == rows_before
        assert {t: walk(conn, node, "upstream", 20, t).as_dict() for t in (t1, t2)} == before


def test_rebuild_skips_a_stored_event_that_validation_now_refuses(db):
    """An event stored by an older version (here: forced in by hand) must not stop a rebuild."""
    _ingest(db, ml_pipeline_sample()[:2])
    with db.connection() as conn:
        key = uuid.uuid4()  # claimed first, as every stored event is (migration 0014)
        raw_id = conn.execute("INSERT INTO event_keys (event_key, raw_id) VALUES (%s, nextval('raw_events_id_seq')) RETURNING raw_id",
                              (key,)).fetchone()[0]
        conn.execute(
            "INSERT INTO raw_events (id, event_key, kind, event_time, producer, payload) VALUES (%s, %s, 'run', now(), 'https://p', %s)",
            (raw_id, key, json.dumps({"eventTime": "9999-12-31T23:59:59-14:00", "producer": "https://p", "schemaURL": "https://s",
                                       "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "ns", "name": "old"}})),
        )
        before = _snapshot(conn)
    with db.connection() as conn:
        assert rebuild(conn) == 2
        assert _snapshot(conn) == before


def test_concurrent_writers_of_overlapping_batches_each_store_every_event_once(db):
    """Eight writers, each storing the same events in a different order, in one transaction
    each: no error reaches them (conflicts settle inside ingest), and each event is stored once."""
    import threading

    from lineage.store import Database

    events = [parse_event(e) for e in _random_events(random.Random(3), 12)]
    errors: list[BaseException] = []
    pool = Database(db.url, min_size=1, max_size=8)
    barrier = threading.Barrier(8)

    def writer(k: int) -> None:
        mine = events[:]
        random.Random(k).shuffle(mine)
        try:
            barrier.wait()
            pool.run(lambda conn: ingest_events(conn, mine))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    assert errors == []
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(events), len(events))
