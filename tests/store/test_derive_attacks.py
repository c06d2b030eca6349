"""Hostile review of raw-first ingest: group commit (lineage/store/group_commit.py), derivation
(lineage/store/derive.py), the read watermark (lineage/api/freshness.py) and what depends on a
complete graph (the erasure manifest, retention of raw partitions).

Each test is an attack: duplicates and a refused value in one group, a request cancelled while
its group commits, the store's backend terminated mid-commit, a poison event in the queue, an
erasure requested while the lineage it must cover is still queued, an event erased or a
partition retained while still queued.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from lineage.errors import LineageError
from lineage.events import parse_event, parse_raw
from lineage.samples import run_event
from lineage.store import derive
from lineage.store.group_commit import GroupCommitter
from lineage.store.ingest import ingest_events
from tests_support import until



def _ev(ns: str, job: str, kind: str = "START", rid: str | None = None):
    return parse_raw(json.dumps(run_event(kind, (ns, job), rid or str(uuid.uuid4()))).encode())


def _count(conn, ns: str, table: str = "raw_events") -> int:
    return conn.execute(f"SELECT count(*) FROM {table} WHERE job_namespace = %s", (ns,)).fetchone()[0]




def _poisoned_raw_rows(monkeypatch):
    """Events of job `refused` carry a value jsonb refuses (\\u0000: SQLSTATE 22P05)."""
    import lineage.store.ingest as ingest_module

    real = ingest_module._raw_row

    def poisoned(ev):
        row = list(real(ev))
        if ev.job_name == "refused":
            row[8] = row[8][:-1] + ',"x":"\\u0000"}'
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_raw_row", poisoned)


# -- group commit -----------------------------------------------------------------------------
def test_duplicates_of_one_event_in_one_group_are_stored_and_queued_once(db):
    committer = GroupCommitter(db)
    try:
        ev, other = _ev("gc-dup", "a"), _ev("gc-dup", "b")
        group = [(ev, Future()), (ev, Future()), (other, Future()), (ev, Future())]
        committer._commit(group)  # exactly this group, in one transaction
        assert [f.exception(timeout=5) for _, f in group] == [None] * 4
    finally:
        committer.close()
    with db.connection() as conn:
        assert _count(conn, "gc-dup") == 2
        assert derive.pending_events(conn) == 2


def test_a_refused_value_and_its_duplicate_in_one_group_fail_only_themselves(db, monkeypatch):
    _poisoned_raw_rows(monkeypatch)
    committer = GroupCommitter(db)
    try:
        bad = _ev("gc-ref", "refused")
        good = [_ev("gc-ref", f"ok{i}") for i in range(3)]
        group = [(good[0], Future()), (bad, Future()), (good[1], Future()), (bad, Future()), (good[2], Future())]
        committer._commit(group)
        outcomes = [f.exception(timeout=5) for _, f in group]
    finally:
        committer.close()
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "StoreRefused", None, "StoreRefused", None]
    with db.connection() as conn:
        assert _count(conn, "gc-ref") == 3 and derive.pending_events(conn) == 3


@pytest.fixture
def blocked_queue(db_url):
    """Another session holds derive_queue exclusively: a group commit waits inside its
    transaction (raw rows written, queue row not yet) until released."""
    holder = psycopg.connect(db_url)
    holder.execute("LOCK TABLE derive_queue IN ACCESS EXCLUSIVE MODE")

    def release():
        if not holder.closed:
            holder.rollback()
            holder.close()

    yield holder, release
    release()


def _waiting_backend(pg_root) -> int | None:
    with psycopg.connect(pg_root, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                           " AND (query ILIKE '%%derive_queue%%' OR query ILIKE '%%lineage_store_group%%')"
                           ).fetchone()
    return row[0] if row else None


def test_a_request_cancelled_while_its_group_commits_does_not_wedge_the_committer(db, pg_root, blocked_queue):
    """A client that goes away cancels its asyncio task, which cancels the submit's future; the
    committer must still answer everyone else, now and later."""
    _, release = blocked_queue
    committer = GroupCommitter(db)
    try:
        first = committer.submit(_ev("gc-cancel", "first"))
        until(lambda: _waiting_backend(pg_root), "the group commit waiting on the queue lock")
        second = committer.submit(_ev("gc-cancel", "second"))
        assert first.cancel()  # what asyncio.wrap_future does when the awaiting task is cancelled
        release()
        assert second.exception(timeout=30) is None
        third = committer.submit(_ev("gc-cancel", "third"))
        assert third.exception(timeout=30) is None
    finally:
        committer.close()
    with db.connection() as conn:
        assert _count(conn, "gc-cancel") == 3  # the cancelled one was committed anyway: never acknowledged, a retry is a duplicate


def test_the_store_backend_terminated_mid_commit_fails_the_group_as_unavailable_and_a_retry_stores_once(db, pg_root, blocked_queue):
    _, release = blocked_queue
    committer = GroupCommitter(db)
    events = [_ev("gc-kill", f"j{i}") for i in range(3)]
    try:
        futures = [committer.submit(events[0])]
        pid = until(lambda: _waiting_backend(pg_root), "the group commit waiting on the queue lock")
        futures += [committer.submit(ev) for ev in events[1:]]
        with psycopg.connect(pg_root, autocommit=True) as conn:
            assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        failed = futures[0].exception(timeout=30)
        assert isinstance(failed, LineageError) and failed.status == 503, repr(failed)
        release()
        for fut in futures[1:]:  # queued behind: committed by the next group, or refused as unavailable
            exc = fut.exception(timeout=30)
            assert exc is None or (isinstance(exc, LineageError) and exc.status == 503), repr(exc)
        retried = [committer.submit(ev) for ev in events]  # the clients retry everything not acknowledged
        assert [f.exception(timeout=30) for f in retried] == [None] * 3
    finally:
        committer.close()
    with db.connection() as conn:
        assert _count(conn, "gc-kill") == 3
    assert derive.catch_up(db, 30)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name LIKE 'j%%'"
                            " AND j.namespace_id = (SELECT id FROM namespaces WHERE name = 'gc-kill')").fetchone()[0] == 3


def test_a_submit_after_shutdown_is_a_503_not_an_unexpected_error(db):
    committer = GroupCommitter(db)
    committer.close()
    exc = committer.submit(_ev("gc-closed", "j")).exception(timeout=5)
    assert isinstance(exc, LineageError) and exc.status == 503


# -- derivation -------------------------------------------------------------------------------
@pytest.fixture
def poison_trigger(role_urls):
    """Deriving a run of job `poison` fails with an error that is not a refused value (as a bug,
    a corrupt index or a timeout on one huge event would): SQLSTATE XX000."""
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        conn.execute("""
        CREATE FUNCTION tests_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id AND name = 'poison') THEN
                RAISE EXCEPTION 'poisoned run' USING ERRCODE = 'XX000';
            END IF;
            RETURN NEW;
        END $$""")
        conn.execute("CREATE TRIGGER tests_poison BEFORE INSERT OR UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION tests_poison()")
    yield
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        conn.execute("DROP TRIGGER tests_poison ON runs")
        conn.execute("DROP FUNCTION tests_poison()")


def test_a_poison_event_does_not_block_the_queue_behind_it(db, poison_trigger):
    with db.connection() as conn:
        ingest_events(conn, [_ev("poisoned", "poison")], defer=True)
    for i in range(3):
        with db.connection() as conn:
            ingest_events(conn, [_ev("poisoned", f"fine{i}")], defer=True)
    assert derive.catch_up(db, 30)  # returns, with the queue empty
    with db.connection() as conn:
        assert derive.pending_events(conn) == 0
        derived = conn.execute("SELECT j.name FROM runs r JOIN jobs j ON j.id = r.job_id ORDER BY 1").fetchall()
        assert [n for (n,) in derived] == ["fine0", "fine1", "fine2"]
        kept = conn.execute("SELECT r.reason FROM derive_refusals r JOIN raw_events e ON e.id = r.raw_id"
                            " WHERE e.job_name = 'poison'").fetchall()
        assert len(kept) == 1 and "XX000" in kept[0][0] and "poisoned run" not in kept[0][0]  # kept aside, no message text
    from lineage import metrics

    text = metrics.exposition(db)[0].decode()
    assert "lineage_derivation_refused_events 1.0" in text  # and said where operators look


def test_a_read_is_never_a_500_when_deriving_for_it_fails_unexpectedly(settings, db, auth_headers, monkeypatch):
    import httpx

    from lineage.api.app import create_app
    from tests_support import LiveServer, until

    def broken(conn, upto=None):
        raise RuntimeError("a bug in derivation")

    with db.connection() as conn:
        ingest_events(conn, [_ev("read-bug", "j")], defer=True)
    monkeypatch.setattr(derive, "derive_pending", broken)
    idle = settings.model_copy(update={"derive_workers": 0, "read_wait": 0.2})
    with LiveServer(create_app(idle, db=db)) as server, httpx.Client(base_url=server.url, headers=auth_headers, timeout=30) as c:
        r = c.get("/api/v1/namespaces")
        assert r.status_code == 200, r.text
        assert "x-lineage-derivation-lag" in r.headers  # the answer says it may miss events


def test_an_event_erased_while_queued_is_skipped_and_its_queue_row_cleared(db, role_urls):
    with db.connection() as conn:
        ingest_events(conn, [_ev("erased-queued", "gone"), _ev("erased-queued", "kept")], defer=True)
        gone = conn.execute("SELECT id FROM raw_events WHERE job_name = 'gone'").fetchone()[0]
    with db.connection() as conn:
        conn.execute("SELECT lineage_erase(%s, 'tests', 'erased before derivation')", ([gone],))
    assert derive.catch_up(db, 30)
    with db.connection() as conn:
        assert derive.pending_events(conn) == 0
        names = [n for (n,) in conn.execute("SELECT j.name FROM jobs j JOIN namespaces n ON n.id = j.namespace_id"
                                             " WHERE n.name = 'erased-queued'").fetchall()]
        assert names == ["kept"]


# -- what needs the whole graph ---------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))


def test_an_erasure_requested_while_its_lineage_is_queued_is_refused_not_a_short_manifest(settings, db, db_url, tokens):
    """The model trained on the source is only in the queue: a manifest written now would miss
    it, and the erasure would be recorded as complete when deletions match it."""
    import httpx

    from gate_helpers import STEWARD, register

    from lineage.api.app import create_app
    from lineage.gate.decision import Decision
    from lineage.gate.service import record
    from example_pipeline.sample import ml_pipeline_sample
    from tests_support import LiveServer

    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()], defer=True)
    register(db, "acme-stock-photos.yaml", approve_as=STEWARD)
    with db.connection() as conn:
        record(conn, Decision(job="ml-pipeline:train_model.train", purpose="train_ai_system",
                              inputs=("dataset:curated:training.face_photos_v1",), allowed=True))
    steward = {"Authorization": f"Bearer {tokens('erasing-steward', 'steward', principal='dpo@example.com')}"}
    holder = psycopg.connect(db_url)  # a worker stuck mid-batch with the pipeline's events
    try:
        assert derive._claim(holder, None).raw_ids
        quick = settings.model_copy(update={"derive_workers": 0, "read_wait": 0.3})
        with LiveServer(create_app(quick, db=db)) as server:
            r = httpx.post(f"{server.url}/api/v1/erasures", headers=steward, timeout=30,
                           json={"source": "dataset:partner-drops:acme/photos", "reason": "consent withdrawn"})
            assert r.status_code == 503, r.text
            assert r.headers.get("retry-after") and "derive" in r.json()["message"]
            requester = {"Authorization": f"Bearer {tokens('req', 'requester')}"}
            r = httpx.post(f"{server.url}/api/v1/erasures", headers=requester, timeout=30,
                           json={"source": "dataset:partner-drops:acme/photos", "reason": "consent withdrawn"})
            assert r.status_code == 403, r.text  # who may erase is decided first, lag or not
    finally:
        holder.close()
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM erasures").fetchone()[0] == 0
    assert derive.catch_up(db, 30)


def test_retention_refuses_a_partition_holding_events_not_derived_yet(db, role_urls, tmp_path):
    from lineage.audit.seal import seal_all
    from lineage.errors import ConfigError
    from lineage.maintain.retention import retain
    from lineage.store.ingest import _raw_row

    old = _ev("retain-queued", "old")
    at = datetime.now(timezone.utc).replace(day=1) - timedelta(days=40)
    with psycopg.connect(role_urls["owner"], autocommit=True) as owner:
        raw_id = owner.execute("INSERT INTO event_keys (event_key, raw_id, recorded_at) VALUES (%s, nextval('raw_events_id_seq'), %s)"
                               " RETURNING raw_id", (old.key, at)).fetchone()[0]
        owner.execute("INSERT INTO raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer,"
                      " payload, normalizations, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                      (raw_id, *_raw_row(old), at))
    with db.connection() as conn:
        derive.enqueue(conn, [raw_id])  # acknowledged last month, derivation stopped since
    with db.connection() as conn:
        seal_all(conn)
    this_month = datetime.now(timezone.utc).date().replace(day=1)
    with pytest.raises(ConfigError, match="derive"):
        retain(role_urls["owner"], this_month, tmp_path)
    with db.connection() as conn:
        assert _count(conn, "retain-queued") == 1
    assert derive.catch_up(db, 30)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name = 'old'").fetchone()[0] == 1
    assert [r.rows for r in retain(role_urls["owner"], this_month, tmp_path)] == [1]


def test_an_event_that_breaks_storing_unexpectedly_fails_only_its_own_request(db, monkeypatch):
    """Not a refused value but any other error tied to one event (a bug on an odd input): the
    rest of its group must still be stored and acknowledged."""
    import lineage.store.ingest as ingest_module

    real = ingest_module._raw_row

    def crashing(ev):
        if ev.job_name == "crash":
            raise ValueError("an odd event")
        return real(ev)

    monkeypatch.setattr(ingest_module, "_raw_row", crashing)
    committer = GroupCommitter(db)
    try:
        good = [_ev("gc-crash", f"ok{i}") for i in range(3)]
        group = [(good[0], Future()), (_ev("gc-crash", "crash"), Future()), (good[1], Future()), (good[2], Future())]
        committer._commit(group)
        outcomes = [f.exception(timeout=5) for _, f in group]
    finally:
        committer.close()
    assert [o is None for o in outcomes] == [True, False, True, True]
    with db.connection() as conn:
        assert _count(conn, "gc-crash") == 3


def test_a_read_behind_a_path_prefix_still_waits_for_derivation(settings, db, db_url, auth_headers):
    """Served under a prefix (uvicorn --root-path, an ingress path), the ASGI path carries the
    prefix: a read must still wait for derivation, and say so when it could not catch up."""
    import asyncio

    from lineage.api.app import create_app
    from tests_support import LiveServer

    with db.connection() as conn:
        ingest_events(conn, [_ev("prefixed", "j")], defer=True)
    quick = settings.model_copy(update={"derive_workers": 0, "read_wait": 0.2})
    app = create_app(quick, db=db)
    holder = psycopg.connect(db_url)  # a worker stuck mid-batch: the read cannot catch up
    try:
        assert derive._claim(holder, None).raw_ids
        with LiveServer(app):
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                     "path": "/lineage/api/v1/namespaces", "raw_path": b"/lineage/api/v1/namespaces", "root_path": "/lineage",
                     "query_string": b"", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
                     "headers": [(k.lower().encode(), v.encode()) for k, v in auth_headers.items()]}
            sent: list[dict] = []

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):
                sent.append(message)

            # Its own thread and loop: an earlier test in the session may leave a loop running in this one.
            runner = threading.Thread(target=lambda: asyncio.run(app(scope, receive, send)))
            runner.start()
            runner.join(60)
    finally:
        holder.close()
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200
    assert b"x-lineage-derivation-lag" in [k for k, _ in start["headers"]]


def test_a_stored_event_that_no_longer_parses_is_kept_aside_not_silently_dropped(db, monkeypatch):
    """An event stored under looser validation (an older version) is skipped by derivation: it
    must be counted with the refusals, or its lineage is missing and nothing says so."""
    from lineage import metrics
    from lineage.errors import FieldProblem, InvalidEvent

    with db.connection() as conn:
        ingest_events(conn, [_ev("loose", "stale-shape"), _ev("loose", "fine")], defer=True)
        stale = conn.execute("SELECT id FROM raw_events WHERE job_name = 'stale-shape'").fetchone()[0]
    real = derive.parse_raw

    def stricter(body: bytes):
        if b"stale-shape" in body:
            raise InvalidEvent([FieldProblem("$.job.name", "no longer valid")])
        return real(body)

    monkeypatch.setattr(derive, "parse_raw", stricter)
    assert derive.catch_up(db, 30)
    with db.connection() as conn:
        kept = conn.execute("SELECT raw_id, reason FROM derive_refusals").fetchall()
        assert [r[0] for r in kept] == [stale] and "InvalidEvent" in kept[0][1]
    assert "lineage_derivation_refused_events 1.0" in metrics.exposition(db)[0].decode()
