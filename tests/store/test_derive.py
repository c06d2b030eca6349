"""Raw first, derive after: the queue, the workers, read-your-writes, and the gate on a lagging store."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from lineage.errors import StoreUnavailable
from lineage.events import parse_raw
from lineage.samples import dataset, run_event
from lineage.store import derive
from lineage.store.group_commit import GroupCommitter
from lineage.store.ingest import ingest_events
from tests_support import until

T0 = datetime(2026, 11, 3, tzinfo=timezone.utc)


def _events(n: int, ns: str = "dq") -> list:
    out = []
    for r in range(n):
        rid = str(uuid.uuid4())
        ins, outs = [dataset("db", f"in{r % 3}", [("a", "int")])], [dataset("db", f"out{r % 2}", [("a", "int")])]
        for k, kind in enumerate(("START", "COMPLETE")):
            out.append(parse_raw(json.dumps(run_event(kind, (ns, f"job{r % 4}"), rid, ins, outs, T0 + timedelta(minutes=r, seconds=k))).encode()))
    return out


def _graph(conn) -> tuple:
    """Everything derived, in a stable order: equal tuples mean equal graphs."""
    return tuple(conn.execute(q).fetchall() for q in (
        "SELECT n.name, j.name, j.latest_run_uuid FROM jobs j JOIN namespaces n ON n.id = j.namespace_id ORDER BY 1, 2",
        "SELECT run_uuid, state, started_at, ended_at FROM runs ORDER BY 1",
        "SELECT run_uuid, dataset_id, direction FROM run_io ORDER BY 1, 2, 3",
        "SELECT job_id, dataset_id, direction, first_seen, last_seen FROM job_io ORDER BY 1, 2, 3",
        "SELECT dataset_id, version FROM dataset_versions ORDER BY 1, 2",
    ))


def test_deferred_ingest_queues_and_a_worker_derives_what_synchronous_ingest_would(db):
    events = _events(10)
    with db.connection() as conn:
        result = ingest_events(conn, events, defer=True)
    assert result.stored == 20
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0  # acknowledged, not derived yet
        assert derive.pending_events(conn) == 20 and derive.lag_seconds(conn) > 0
    assert db.run(derive.derive_pending) == 20
    with db.connection() as conn:
        deferred = _graph(conn)
        assert derive.pending_events(conn) == 0 and derive.lag_seconds(conn) == 0.0
        # The same events ingested synchronously into a fresh store give the same graph.
        conn.execute("SELECT lineage_clear_derived()")
        from lineage.store.ingest import rebuild

        rebuild(conn)
        assert _graph(conn) == deferred
    assert len(deferred[1]) == 10 and {s for _, s, _, _ in deferred[1]} == {"COMPLETE"}


def test_deriving_the_same_events_twice_changes_nothing(db):
    with db.connection() as conn:
        ingest_events(conn, _events(6), defer=True)
    db.run(derive.derive_pending)
    with db.connection() as conn:
        once = _graph(conn)
        ids = [r[0] for r in conn.execute("SELECT id FROM raw_events ORDER BY id")]
        derive.enqueue(conn, ids)  # as if a worker died after deriving but the queue row came back
    assert db.run(derive.derive_pending) == 12
    with db.connection() as conn:
        assert _graph(conn) == once


def test_a_worker_killed_holding_a_claim_leaves_its_rows_to_the_next(db, db_url):
    with db.connection() as conn:
        ingest_events(conn, _events(5), defer=True)
    victim = psycopg.connect(db_url)
    claimed = derive._claim(victim, None)  # locked, in an open transaction, as a worker mid-batch
    assert claimed.raw_ids
    assert db.run(derive.derive_pending) == 0  # SKIP LOCKED: the live worker does not wait on it, nor take it
    assert not derive.catch_up(db, 0.3)  # a read cannot see those events yet, and says so
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (victim.info.backend_pid,))  # waits until it is gone
    assert db.run(derive.derive_pending) == 10
    assert derive.catch_up(db, 5)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE state = 'COMPLETE'").fetchone()[0] == 5


def test_a_value_the_store_refuses_at_derivation_is_kept_aside_and_the_rest_derived(db, monkeypatch):
    import lineage.store.ingest as ingest_module

    real = ingest_module._io_row

    def poisoned(key, direction, ref, schemas):
        row = list(real(key, direction, ref, schemas))
        if ref.name == "in1":  # a namespace past the btree row limit: SQLSTATE 54000 from the unique index
            row[2] = base64.b64encode(os.urandom(9000)).decode()
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_io_row", poisoned)
    with db.connection() as conn:
        ingest_events(conn, _events(3), defer=True)  # run 1 reads in1: its 2 events are refused
    assert db.run(derive.derive_pending) == 6
    with db.connection() as conn:
        refused = conn.execute("SELECT count(*), min(reason) FROM derive_refusals").fetchone()
        assert refused[0] == 2 and "SQLSTATE 54000" in refused[1] and "INSERT" not in refused[1]
        assert derive.pending_events(conn) == 0  # not retried forever
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    monkeypatch.setattr(ingest_module, "_io_row", real)  # the cause is fixed: the kept-aside events derive now
    assert db.run(derive.requeue_refused) == 2
    assert db.run(derive.derive_pending) == 2
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM derive_refusals").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_workers_in_parallel_derive_every_event_once(db):
    events = _events(60)
    with db.connection() as conn:
        for i in range(0, len(events), 8):
            ingest_events(conn, events[i:i + 8], defer=True)
    pool = derive.Workers(db, 3, idle_pause=0.01, gather=0.0)
    try:
        assert derive.catch_up(db, 60)
    finally:
        pool.stop()
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE state = 'COMPLETE') FROM runs").fetchone() == (60, 60)
        assert conn.execute("SELECT count(*) FROM run_io").fetchone()[0] == 120


def test_in_group_commit_a_refused_event_fails_only_itself(db):
    groups: list[int] = []
    committer = GroupCommitter(db, on_commit=lambda n, _: groups.append(n))
    try:
        good = _events(20)
        bad = parse_raw(json.dumps(run_event("START", ("dq", "refused"), str(uuid.uuid4()))).encode())
        bad.payload = bad.payload[:-1] + b',"x":"\\u0000"}'  # validated, yet jsonb refuses \u0000
        futures = [committer.submit(ev) for ev in good[:10]] + [committer.submit(bad)] + [committer.submit(ev) for ev in good[10:]]
        outcomes = [f.exception(timeout=30) for f in futures]
    finally:
        committer.close()
    assert [type(o).__name__ for o in outcomes if o is not None] == ["StoreRefused"]
    assert outcomes[10] is not None
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 40
        assert derive.pending_events(conn) == 40


def test_requests_queued_while_a_commit_is_in_flight_share_the_next_commit(db, db_url):
    """Group commit: hold the first commit back (a lock on the queue table), submit twenty more
    meanwhile; they are stored by one transaction, not twenty."""
    groups: list[int] = []
    committer = GroupCommitter(db, on_commit=lambda n, _: groups.append(n))
    blocker = psycopg.connect(db_url)
    try:
        blocker.execute("LOCK TABLE derive_queue IN SHARE MODE")  # the committer's queue insert waits
        events = _events(11)
        first = committer.submit(events[0])
        with psycopg.connect(db_url, autocommit=True) as watch:  # until the committer waits on the lock with it
            until(lambda: watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                        " AND wait_event_type = 'Lock'").fetchone()[0], "the first commit waiting on the lock")
        rest = [committer.submit(ev) for ev in events[1:21]]
        blocker.rollback()
        assert first.exception(timeout=30) is None and all(f.exception(timeout=30) is None for f in rest)
    finally:
        blocker.close()
        committer.close()
    assert groups == [1, 20]


def test_a_submit_racing_shutdown_is_refused_never_left_waiting(db):
    committer = GroupCommitter(db)
    committer.close()
    future = committer.submit(_events(1)[0])
    exc = future.exception(timeout=5)
    assert isinstance(exc, StoreUnavailable) and exc.status == 503  # the client retries


def test_the_gate_blocks_while_acknowledged_lineage_is_underived(db, db_url, settings):
    """An interested party cannot get a yes by sending the lineage that would block it just
    before the check and hoping derivation is behind: the gate waits, then fails closed."""
    from lineage.gate.service import check_gate

    with db.connection() as conn:
        ingest_events(conn, _events(2, ns="gate-lag"), defer=True)
    holder = psycopg.connect(db_url)
    try:
        assert derive._claim(holder, None).raw_ids  # a worker is stuck mid-batch with them
        quick = settings.model_copy(update={"read_wait": 0.3})
        decision = check_gate(quick, "train", "train_ai_system", ["dataset:db:out0"])
        assert not decision.allowed
        assert [r.code for r in decision.reasons] == ["lineage_pending"]
    finally:
        holder.close()
    assert derive.catch_up(db, 10)


def test_a_read_through_the_api_sees_an_event_acknowledged_just_before(client, db):
    """Read-your-writes over HTTP with derivation in the server's own threads."""
    for n in range(20):
        rid = str(uuid.uuid4())
        assert client.post("/api/v1/lineage", json=run_event("START", ("raw-read", f"j{n}"), rid)).status_code == 201
        r = client.get(f"/api/v1/namespaces/raw-read/jobs/j{n}")
        assert r.status_code == 200, r.text
        assert r.json()["latestRun"]["id"] == rid


def test_reads_wait_even_with_no_worker_running(settings, db, auth_headers):
    """A store whose workers are all down still answers reads correctly: the read derives."""
    import httpx

    from lineage.api.app import create_app
    from tests_support import LiveServer

    idle = settings.model_copy(update={"derive_workers": 0})
    with LiveServer(create_app(idle, db=db)) as server, httpx.Client(base_url=server.url, headers=auth_headers, timeout=30) as c:
        rid = str(uuid.uuid4())
        assert c.post("/api/v1/lineage", json=run_event("COMPLETE", ("no-worker", "j"), rid)).status_code == 201
        r = c.get("/api/v1/namespaces/no-worker/jobs/j")
        assert r.status_code == 200 and r.json()["latestRun"]["state"] == "COMPLETED"
        assert "x-lineage-derivation-lag" not in r.headers


def test_the_gate_blocks_a_run_whose_lineage_has_an_event_the_store_could_not_derive(db, settings, monkeypatch):
    """An acknowledged event kept aside in derive_refusals is missing from the graph: a run
    reading a dataset it names is blocked, one reading an unrelated dataset is not blocked for it."""
    import lineage.store.ingest as ingest_module
    from lineage.gate.service import check_gate

    real = ingest_module._io_row

    def poisoned(key, direction, ref, schemas):
        row = list(real(key, direction, ref, schemas))
        if ref.name == "in1":
            row[2] = base64.b64encode(os.urandom(9000)).decode()
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_io_row", poisoned)
    with db.connection() as conn:
        ingest_events(conn, _events(3, ns="refused-gate"), defer=True)  # run 1 reads db:in1 and writes db:out1
    db.run(derive.derive_pending)
    monkeypatch.setattr(ingest_module, "_io_row", real)
    blocked = check_gate(settings, "train", "train_ai_system", ["dataset:db:out1"])
    assert not blocked.allowed and [r.code for r in blocked.reasons] == ["lineage_refused"]
    assert "dataset:db:out1" in blocked.reasons[0].message
    other = check_gate(settings, "train", "train_ai_system", ["dataset:db:unrelated"])
    assert not other.allowed and "lineage_refused" not in [r.code for r in other.reasons]
