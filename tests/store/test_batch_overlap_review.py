"""Hostile review of the overlapped batch path (commit 29157f9): ``ingest_batch(..., defer=True)``.

Each test attacks one promise of the change against the real embedded PostgreSQL: a batch is
stored whole or not at all; no event lost, none stored or queued twice; the counts and the
rejected indexes are right at every chunk boundary; the connection goes back to the pool idle
and usable; the derived graph after the queue drains is the synchronous path's; events read
with ``datasets=False`` validate exactly as with ``datasets=True``.  Tests that pass are the
regression suite; a break that is not fixed here is ``xfail(strict=True)`` with its reason.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
import uuid

import psycopg
import pytest

from lineage.errors import FieldProblem, InvalidEvent, LineageError
from lineage.events.model import parse_events, parse_raw
from lineage.samples import run_event
from lineage.store import ingest as ingest_module
from lineage.store.db import Database
from lineage.store.derive import derive_pending
from lineage.store.batch import CHUNK, ingest_batch
from lineage.store.ingest import ingest_events, rebuild

from batch_support import batch, counts, hold_claim, queued_once, race, raw_event, with_options














# -- counts and indexes at every chunk boundary ---------------------------------------------------


@pytest.mark.parametrize("n", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1])
def test_counts_and_rejected_indexes_are_right_at_every_chunk_boundary(db, n):
    items = batch(n, prefix=f"b{n}-")
    malformed = sorted({0, CHUNK - 1, CHUNK, n - 1} & set(range(n)))
    for i in malformed:
        items[i] = b'{"eventType": "START"'  # cut off
    dup_from, dup_to = 1, (CHUNK + 1 if n > CHUNK + 2 else 2)  # the same event in two chunks (or twice in one)
    items[dup_to] = items[dup_from]
    with db.connection() as conn:
        before = counts(conn)
    result, bad = db.run(lambda conn: ingest_batch(conn, items, defer=True))
    valid = n - len(malformed)
    assert [i for i, _ in bad] == malformed
    assert (result.stored, result.duplicates) == (valid - 1, 1)
    with db.connection() as conn:
        after = counts(conn)
        assert (after[0] - before[0], after[1] - before[1]) == (valid - 1, valid - 1)
        assert queued_once(conn)


def test_an_all_invalid_chunk_and_an_all_refused_chunk_between_valid_ones(db):
    """Chunk 1 all malformed, chunk 2 all refused by ``admit``, chunks 0 and 3 valid: every
    index reported once, in order, and no empty statement or queue entry for the empty chunks."""
    items = batch(4 * CHUNK, prefix="mix")
    for i in range(CHUNK, 2 * CHUNK):
        items[i] = b"[1, 2]" if i % 2 else b"not json"
    refused = set(range(2 * CHUNK, 3 * CHUNK))

    def admit(ev):
        return FieldProblem("$.job.namespace", "not yours") if ev.job_name.startswith("mix") and int(ev.job_name[3:]) in refused else None

    result, bad = db.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
    assert [i for i, _ in bad] == list(range(CHUNK, 3 * CHUNK))
    assert all(bad[k][1].problems[0].reason == "not yours" for k in range(CHUNK, 2 * CHUNK))
    assert (result.stored, result.duplicates) == (2 * CHUNK, 0)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 2 * CHUNK
        assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == 2  # chunks 0 and 3 only
        assert queued_once(conn)


def test_a_batch_of_only_invalid_items_and_an_empty_batch_store_nothing(db):
    with db.connection() as conn:
        before = counts(conn)
    result, bad = db.run(lambda conn: ingest_batch(conn, [b"{}"] * (CHUNK + 3), defer=True))
    assert (result.stored, result.duplicates, len(bad)) == (0, 0, CHUNK + 3)
    result, bad = db.run(lambda conn: ingest_batch(conn, [], defer=True))
    assert (result.stored, result.duplicates, bad) == (0, 0, [])
    with db.connection() as conn:
        assert counts(conn) == before


def test_decoded_values_and_bytes_mixed_in_one_batch(db):
    """Items may be decoded values (the CLI) as well as bytes; non-objects are rejected by index."""
    items: list = batch(CHUNK + 2, prefix="mixed")
    items[3] = json.loads(items[3])
    items[CHUNK] = None
    items[CHUNK + 1] = 42
    result, bad = db.run(lambda conn: ingest_batch(conn, items, defer=True))
    assert [i for i, _ in bad] == [CHUNK, CHUNK + 1]
    assert result.stored == CHUNK


# -- whole or nothing ------------------------------------------------------------------------------


def _poison(monkeypatch, name: str) -> None:
    real = ingest_module._raw_row

    def poisoned(ev):
        row = list(real(ev))
        if ev.job_name == name:
            row[8] = row[8][:-1] + ',"x":"\\u0000"}'  # jsonb has no \u0000: SQLSTATE 22P05
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_raw_row", poisoned)


def test_after_a_refused_value_the_one_by_one_retry_is_still_whole_or_nothing(db, db_url, monkeypatch):
    """A refused value sends the batch down the one-by-one path; an event further on then times
    out (statement_timeout, waiting on another writer's claim).  The batch fails (a 503 the
    client retries) and must leave nothing: the events before the timed-out one must not be
    committed one by one, or the client's retry reports them as duplicates and a failed request
    will have stored half its batch."""
    _poison(monkeypatch, "refused")
    items = batch(2 * CHUNK, prefix="whole")
    items[3] = raw_event("refused")
    blocker = hold_claim(db_url, items[CHUNK + 5])
    timed = Database(with_options(db_url, statement_timeout="1000"), min_size=1, max_size=1)
    try:
        with db.connection() as conn:
            before = counts(conn)
        with pytest.raises(LineageError):
            timed.run(lambda conn: ingest_batch(conn, items, defer=True))
        with db.connection() as conn:
            assert counts(conn) == before
        blocker.rollback()
        result, bad = timed.run(lambda conn: ingest_batch(conn, items, defer=True))
        assert [i for i, _ in bad] == [3]
        assert (result.stored, result.duplicates) == (len(items) - 1, 0)  # none counted as a duplicate of itself
    finally:
        blocker.close()
        timed.close()


def test_a_statement_timeout_on_a_chunk_in_flight_leaves_nothing_and_an_idle_connection(db, db_url):
    items = batch(3 * CHUNK, prefix="st")
    blocker = hold_claim(db_url, items[CHUNK + 1])
    timed = Database(with_options(db_url, statement_timeout="500"), min_size=1, max_size=1)
    try:
        with db.connection() as conn:
            before = counts(conn)
        pid = timed.run(lambda conn: conn.info.backend_pid)
        with pytest.raises(LineageError):  # StoreUnavailable: a 503
            timed.run(lambda conn: ingest_batch(conn, items, defer=True))
        with timed.connection() as conn:
            assert conn.info.backend_pid == pid  # kept by the pool: idle
            assert conn.execute("SELECT 1").fetchone() == (1,)
        blocker.rollback()
        with db.connection() as conn:
            assert counts(conn) == before
    finally:
        blocker.close()
        timed.close()


def test_the_backend_killed_between_chunks_leaves_nothing_and_the_pool_recovers(db, db_url):
    """The session is terminated while Python validates chunk 2 (chunk 1 already stored but not
    committed): a LineageError (503), nothing of the batch, and the next batch on the pool works."""
    items = batch(3 * CHUNK, prefix="kill")
    single = Database(db_url, min_size=1, max_size=1)
    seen = []

    def admit(ev):
        seen.append(ev)
        if len(seen) == CHUNK + 5:
            time.sleep(0.2)  # chunk 1 has finished on the server
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return None

    try:
        with db.connection() as conn:
            before = counts(conn)
        pid = single.run(lambda conn: conn.info.backend_pid)
        with pytest.raises(LineageError):
            single.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
        with db.connection() as conn:
            assert counts(conn) == before
        result, bad = single.run(lambda conn: ingest_batch(conn, items, defer=True))
        assert (result.stored, bad) == (len(items), [])
    finally:
        single.close()


def test_idle_in_transaction_timeout_between_chunks_is_a_503_and_leaves_nothing(db, db_url):
    """The transaction is now open while later chunks are validated: a slow chunk (huge items,
    a thread starved of the GIL) leaves the session idle in transaction, and with
    idle_in_transaction_session_timeout on the role the server ends it.  That must be a 503
    (the client retries), never a raw error, and leave nothing of the batch."""
    items = batch(2 * CHUNK, prefix="idle")
    idle = Database(with_options(db_url, idle_in_transaction_session_timeout="200"), min_size=1, max_size=1)
    seen = []

    def admit(ev):
        seen.append(ev)
        if len(seen) == CHUNK + 1:
            time.sleep(0.6)  # a slow chunk (huge items, a starved thread)
        return None

    try:
        with db.connection() as conn:
            before = counts(conn)
        with pytest.raises(LineageError):
            idle.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
        with db.connection() as conn:
            assert counts(conn) == before
    finally:
        idle.close()


# -- sockets past FD_SETSIZE -------------------------------------------------------------------------


def test_a_connection_whose_socket_is_past_fd_setsize_still_stores_batches(db, db_url):
    """A busy server has more than 1024 descriptors open (client sockets, files): the pool's
    next connection gets a socket number past select()'s FD_SETSIZE.  psycopg itself waits with
    poll/epoll; ``_InFlight`` must too, or every batch on such a connection fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1200
    if soft < need + 100:
        assert hard == resource.RLIM_INFINITY or hard >= need + 100, "the test needs 1300 descriptors"
        resource.setrlimit(resource.RLIMIT_NOFILE, (need + 100, hard))
    fillers = []
    try:
        while len(fillers) < need:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        single = Database(db_url, min_size=1, max_size=1)
        try:
            assert single.run(lambda conn: conn.pgconn.socket) >= 1024
            result, bad = single.run(lambda conn: ingest_batch(conn, batch(2 * CHUNK + 1, prefix="fd"), defer=True))
            assert (result.stored, bad) == (2 * CHUNK + 1, [])
        finally:
            single.close()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- races -----------------------------------------------------------------------------------------


def test_the_same_batch_sent_twice_at_once_is_stored_and_queued_once(db, db_url):
    items = batch(3 * CHUNK + 1, prefix="twice")
    other = Database(db_url, min_size=1, max_size=1)
    try:
        (ra, _), (rb, _) = race((db, items), (other, items))
    finally:
        other.close()
    assert sorted((ra.stored, rb.stored)) == [0, len(items)]
    assert ra.duplicates + rb.duplicates == len(items)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(items)
        assert queued_once(conn)


def test_many_concurrent_batches_and_single_events_store_each_once(db, db_url):
    """Eight threads each send batches overlapping their neighbour's while two others store
    single events of the same set: every event stored and queued once, the counts add up."""
    pool = Database(db_url, min_size=2, max_size=6)
    items = batch(6 * CHUNK, prefix="many")
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def batcher(k):
        try:
            part = items[k * CHUNK // 2:(k * CHUNK // 2) + 2 * CHUNK]
            r, bad = pool.run(lambda conn: ingest_batch(conn, part, defer=True))
            assert bad == []
            with lock:
                results.append((r.stored, r.duplicates, len(part)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def singles(offset):
        try:
            for item in items[offset::7]:
                r = pool.run(lambda conn: ingest_events(conn, [parse_raw(item, datasets=False)], defer=True))
                with lock:
                    results.append((r.stored, r.duplicates, 1))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=batcher, args=(k,)) for k in range(8)]
    threads += [threading.Thread(target=singles, args=(o,)) for o in (0, 3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    finally:
        pool.close()
    assert errors == []
    covered = {i for k in range(8) for i in range(k * CHUNK // 2, min(k * CHUNK // 2 + 2 * CHUNK, len(items)))}
    covered |= set(range(0, len(items), 7)) | set(range(3, len(items), 7))
    assert sum(s for s, _, _ in results) == len(covered)
    assert all(s + d == n for s, d, n in results)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(covered),) * 2
        assert queued_once(conn)


# -- the derived graph, and datasets=False ----------------------------------------------------------


_GRAPH = [
    "SELECT n.name, j.name, j.job_type, j.created_at, j.updated_at FROM jobs j JOIN namespaces n ON n.id = j.namespace_id ORDER BY 1, 2",
    "SELECT n.name, d.name, d.current_version, d.created_at, d.updated_at FROM datasets d JOIN namespaces n ON n.id = d.namespace_id ORDER BY 1, 2",
    "SELECT r.run_uuid, j.name, r.state, r.state_time, r.started_at, r.ended_at FROM runs r JOIN jobs j ON j.id = r.job_id ORDER BY 1",
    "SELECT r.run_uuid, d.name, r.direction FROM run_io r JOIN datasets d ON d.id = r.dataset_id ORDER BY 1, 2, 3",
    "SELECT j.name, d.name, x.direction, x.first_seen, x.last_seen FROM job_io x JOIN jobs j ON j.id = x.job_id JOIN datasets d ON d.id = x.dataset_id ORDER BY 1, 2, 3",
    "SELECT d.name, v.version FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ORDER BY 1, 2",
]


def _graph(conn) -> list:
    return [conn.execute(sql).fetchall() for sql in _GRAPH]


def test_the_graph_derived_from_the_queue_is_the_synchronous_paths(db):
    """A batch with datasets, schemas, versions and events out of order, stored deferred (read
    without its datasets) and derived by the workers, gives the graph the synchronous path
    (``rebuild``: every event read with its datasets, derived in one transaction) gives."""
    items = []
    for k in range(2 * CHUNK + 3):
        run = str(uuid.uuid4())
        for state in ("COMPLETE", "START"):  # terminal first: out of order
            ev = run_event(state, ("graph", f"job{k % 9}"), run)
            ev["eventTime"] = f"2026-11-{10 + k % 15:02d}T10:{k % 60:02d}:00Z" if state == "START" else f"2026-11-{10 + k % 15:02d}T11:00:00Z"
            ev["inputs"] = [{"namespace": "s3://in", "name": f"raw/{k % 5}",
                             "facets": {"schema": {"_producer": "https://x/p", "_schemaURL": "https://x/s",
                                                   "fields": [{"name": "a", "type": "int"}, {"name": f"c{k % 3}"}]}}}]
            ev["outputs"] = [{"namespace": "s3://out", "name": f"clean/{k % 7}",
                              "facets": {"version": {"_producer": "https://x/p", "_schemaURL": "https://x/s",
                                                     "datasetVersion": f"v{k}"}}}]
            items.append(json.dumps(ev).encode())
    result, bad = db.run(lambda conn: ingest_batch(conn, items, defer=True))
    assert (result.stored, bad) == (len(items), [])
    while db.run(derive_pending):
        pass
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == 0
        deferred = _graph(conn)
    db.run(rebuild)
    with db.connection() as conn:
        assert _graph(conn) == deferred
        assert deferred[3] and deferred[5]  # there were run edges and versions to compare


_MALFORMED_DATASETS = [
    {"inputs": "not a list"},
    {"inputs": [{"namespace": "ns"}]},
    {"inputs": [{"namespace": 7, "name": "x"}]},
    {"inputs": [{"namespace": "", "name": "x"}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": []}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": {"schema": "nope"}}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": {"schema": {"fields": "nope"}}}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": {"schema": {"_producer": "p", "_schemaURL": "s",
                                                                       "fields": [1, {"name": 2}, {"type": "t"}]}}}]},
    {"inputs": [{"namespace": "ns", "name": "x", "inputFacets": {"q": 1}}]},
    {"outputs": [{"namespace": "ns", "name": "x", "outputFacets": "nope"}]},
    {"outputs": [{"namespace": "ns", "name": "x", "facets": {"version": {"datasetVersion": 5}}}]},
    {"outputs": [{"namespace": "ns", "name": "x" * 5000}]},
    {"outputs": [{"namespace": "ns\u0000", "name": "x"}]},
    {"outputs": [None]},
    {"outputs": [{"namespace": "ns", "name": "x", "facets": {"dataSource": {"name": ["a"]}}}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": {"documentation": {"description": {"a": 1}}}}]},
    {"inputs": [{"namespace": "ns", "name": "x", "extra": "field"}]},
    {"inputs": [{"namespace": "ns", "name": "x", "facets": {"schema": {"_producer": "p", "_schemaURL": "s",
                                                                       "fields": [{"name": "a", "fields": [{"name": 1}]}]}}}]},
    {"inputs": None},
]


def _dataset_event(extra: dict) -> dict:
    ev = run_event("START", ("dsf", "job"), str(uuid.uuid4()))
    ev.update(extra)
    return ev


@pytest.mark.parametrize("case", range(len(_MALFORMED_DATASETS) + 2))
def test_datasets_false_validates_exactly_as_datasets_true(case):
    """The same verdict, the same problems (paths and reasons), the same key and payload."""
    if case < len(_MALFORMED_DATASETS):
        value = _dataset_event(_MALFORMED_DATASETS[case])
    elif case == len(_MALFORMED_DATASETS):
        value = {"eventType": "COMPLETE", "eventTime": "2026-11-01T00:00:00Z", "producer": "https://x/p",
                 "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                 "dataset": {"namespace": "ns", "name": "d", "facets": {"schema": {"fields": [{"name": 1}]}}}}
    else:
        value = {"eventTime": "2026-11-01T00:00:00Z", "producer": "https://x/p",
                 "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                 "dataset": {"namespace": "", "name": 3}}
    body = json.dumps(value).encode()

    def verdict(datasets: bool):
        try:
            ev = parse_raw(body, datasets=datasets)
        except InvalidEvent as exc:
            return ("refused", [(p.path, p.reason) for p in exc.problems])
        return ("valid", ev.key, ev.payload, ev.normalizations)

    assert verdict(False) == verdict(True)
    good_t, bad_t = parse_events([body, value], datasets=True)
    good_f, bad_f = parse_events([body, value], datasets=False)
    assert [(i, [(p.path, p.reason) for p in e.problems]) for i, e in bad_t] == \
           [(i, [(p.path, p.reason) for p in e.problems]) for i, e in bad_f]
    assert [e.key for e in good_t] == [e.key for e in good_f]


# -- more: the refusal path at the end, the GIL, poolers, maintenance, memory ------------------------


def test_a_value_refused_in_the_last_chunk_with_duplicates_counts_each_once(db, monkeypatch):
    """The refusal surfaces in the final wait (not in a send): every item already validated;
    the one-by-one retry must still count a duplicate across chunks once and report the
    malformed and refused items by index."""
    _poison(monkeypatch, "refused-last")
    items = batch(2 * CHUNK + 5, prefix="last")
    items[2 * CHUNK + 2] = raw_event("refused-last")
    items[2 * CHUNK + 3] = items[4]  # duplicate of chunk 0
    items[CHUNK] = b"{"
    result, bad = db.run(lambda conn: ingest_batch(conn, items, defer=True))
    assert [i for i, _ in bad] == [CHUNK, 2 * CHUNK + 2]
    assert (result.stored, result.duplicates) == (len(items) - 3, 1)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(items) - 3
        assert queued_once(conn)


def test_a_batch_waiting_on_the_server_lets_other_threads_run(db, db_url):
    """The wait for a chunk in flight releases the GIL: while a batch is blocked on another
    writer's claim, this thread polls pg_stat_activity and stores single events."""
    items = batch(2 * CHUNK, prefix="gil")
    blocker = hold_claim(db_url, items[CHUNK + 1])
    single = Database(db_url, min_size=1, max_size=1)
    box: dict = {}
    try:
        pid = single.run(lambda conn: conn.info.backend_pid)
        t = threading.Thread(target=lambda: box.setdefault("r", single.run(lambda conn: ingest_batch(conn, items, defer=True))))
        t.start()
        with psycopg.connect(db_url, autocommit=True) as admin:
            for _ in range(600):
                if admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == "Lock":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the batch never waited on the claim")
        for k in range(20):
            one = db.run(lambda conn: ingest_events(conn, [parse_raw(raw_event(f"gil-single{k}"), datasets=False)], defer=True))
            assert one.stored == 1
        assert t.is_alive()  # still waiting: the singles ran beside it
        blocker.rollback()
        t.join(60)
        assert box["r"][0].stored == len(items)
    finally:
        blocker.close()
        single.close()


def test_behind_pgbouncer_an_exception_mid_flight_cancels_and_leaves_nothing(role_urls, db, db_url):
    """abandon() cancels through the pooler (PgBouncer forwards the cancel to the server
    session the client is on): no orphaned statement keeps the first chunk's claims, and the
    client's connection is usable."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "deploy"))
    from pgbouncer_support import PgBouncer

    items = batch(3 * CHUNK, prefix="pgbx")
    blocker = hold_claim(db_url, items[CHUNK + 2])
    seen = []

    def admit(ev):
        seen.append(ev)
        if len(seen) == 2 * CHUNK + 1:
            raise RuntimeError("the caller's check failed")
        return None

    try:
        with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=2) as bouncer:
            client = Database(bouncer.url, min_size=1, max_size=1, prepare_threshold=None)
            try:
                with pytest.raises(RuntimeError):
                    client.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
                assert client.run(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
                result, _ = client.run(lambda conn: ingest_batch(conn, items[:CHUNK], defer=True))
                assert result.stored == CHUNK  # no orphan holds these claims
            finally:
                client.close()
        blocker.rollback()
        time.sleep(0.3)
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == CHUNK
    finally:
        blocker.close()


def test_partition_maintenance_during_a_batch_in_flight(db, db_url, role_urls):
    """``lineage maintain partitions`` while a batch holds its first chunk uncommitted and waits
    on another writer: maintenance gives up after its lock_timeout (documented) or succeeds,
    never deadlocks the batch, and the batch is stored whole."""
    from lineage.maintain.partitions import ensure_partitions

    items = batch(3 * CHUNK, prefix="maint")
    blocker = hold_claim(db_url, items[CHUNK + 2])
    single = Database(db_url, min_size=1, max_size=1)
    box: dict = {}
    try:
        pid = single.run(lambda conn: conn.info.backend_pid)

        def run():
            try:
                box["r"] = single.run(lambda conn: ingest_batch(conn, items, defer=True))
            except BaseException as exc:  # noqa: BLE001
                box["e"] = exc

        t = threading.Thread(target=run)
        t.start()
        with psycopg.connect(db_url, autocommit=True) as admin:
            for _ in range(600):
                if admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == "Lock":
                    break
                time.sleep(0.05)
        try:
            ensure_partitions(role_urls["owner"], ahead=14, lock_timeout="300ms")
        except psycopg.errors.LockNotAvailable:
            pass
        blocker.rollback()
        t.join(60)
        assert "e" not in box, box
        assert box["r"][0].stored == len(items)
        assert ensure_partitions(role_urls["owner"], ahead=14) is not None
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(items)
            assert queued_once(conn)
    finally:
        blocker.close()
        single.close()


def test_a_10000_item_batch_is_stored_whole_and_its_memory_is_bounded(db):
    """Peak Python allocation while storing a 10,000-item batch (deferred) stays within a few
    times the batch's own bytes: nothing of it is kept per chunk beyond the parsed events."""
    import tracemalloc

    items = batch(10_000, prefix="mem")
    size = sum(len(i) for i in items)
    tracemalloc.start()
    try:
        result, bad = db.run(lambda conn: ingest_batch(conn, items, defer=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.stored, bad) == (10_000, [])
    print(f"10k batch: {size / 1e6:.1f} MB of items, peak {peak / 1e6:.1f} MB traced")
    assert peak < 6 * size, (peak, size)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 10_000
        assert queued_once(conn)


class _Interrupted(BaseException):
    """What a signal handler (a timeout, a shutdown hook) raises in the waiting thread."""


@pytest.mark.parametrize("blocked", [False, True])
def test_interrupted_while_a_large_statement_is_still_being_written_does_not_hang(db, db_url, blocked):
    """The interruption comes while ``send`` is still writing a large chunk's statement (the
    server slow to read it: here, its backend stopped for a second).  A cancel is ignored by a
    backend that is still reading a statement, and the server answers nothing until it has the
    whole of it: ``abandon`` must write the rest (or drop the connection), not wait forever for
    a result that cannot come.  ``blocked``: the statement, once whole, waits on another
    writer's claim, so a cancel lost while the backend read it must be sent again.  A watchdog
    terminates the backend after 20 s to end the test."""
    import signal

    big = "x" * (6 * 1024 * 1024)  # far more than a socket's buffer
    item = json.loads(raw_event("big-interrupted"))
    item["run"]["facets"] = {"blob": {"_producer": "https://x/p", "_schemaURL": "https://x/s", "t": big}}
    items = [json.dumps(item).encode()] + batch(CHUNK, prefix="after-big")
    blocker = hold_claim(db_url, items[0]) if blocked else None
    single = Database(db_url, min_size=1, max_size=1)
    pid = single.run(lambda conn: conn.info.backend_pid)
    state = {"watchdog": False}
    done = threading.Event()

    def watchdog():
        time.sleep(1.0)
        os.kill(pid, signal.SIGCONT)
        if not done.wait(20):
            state["watchdog"] = True
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def admit(ev):
        if "watch" not in state:
            state["watch"] = threading.Thread(target=watchdog, daemon=True)
            os.kill(pid, signal.SIGSTOP)  # inside the transaction: BEGIN went through
            state["watch"].start()
            signal.setitimer(signal.ITIMER_REAL, 0.5)
        return None

    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(_Interrupted()))
    try:
        with pytest.raises(_Interrupted):
            single.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
        done.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert state["watchdog"] is False, "the abandoned batch hung until its backend was terminated"
        assert single.run(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
    finally:
        done.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        if "watch" in state:
            state["watch"].join(30)
        if blocker is not None:
            blocker.close()
        single.close()


def test_a_cancel_sent_before_the_backend_read_the_statement_is_sent_again(db, db_url):
    """The caller's ``admit`` fails just after a chunk's statement was written but before the
    backend read it (here: the backend stopped for a second, as a busy machine would delay
    it).  The backend ignores a cancel that arrives while it waits for a statement, then runs
    the statement, which blocks on another writer's claim.  One cancel was sent and lost: the
    old ``abandon`` waited for that writer forever.  A watchdog terminates the backend after
    20 s to end the test."""
    import signal

    items = batch(3 * CHUNK, prefix="lost-cancel")
    blocker = hold_claim(db_url, items[CHUNK + 2])  # in chunk 1
    single = Database(db_url, min_size=1, max_size=1)
    pid = single.run(lambda conn: conn.info.backend_pid)
    state = {"watchdog": False}
    done = threading.Event()
    seen = []

    def watchdog():
        time.sleep(1.0)
        os.kill(pid, signal.SIGCONT)
        if not done.wait(20):
            state["watchdog"] = True
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def admit(ev):
        seen.append(ev)
        if len(seen) == 2 * CHUNK:  # chunk 1 validated; chunk 0 sent: let it finish, then stop the backend
            time.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)
            state["watch"] = threading.Thread(target=watchdog, daemon=True)
            state["watch"].start()
        if len(seen) == 2 * CHUNK + 1:  # chunk 1 written, not read: fail now
            raise RuntimeError("the caller's check failed")
        return None

    try:
        with pytest.raises(RuntimeError):
            single.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))
        done.set()
        assert state["watchdog"] is False, "the abandoned batch hung on the blocker's claim"
        with single.connection() as conn:
            assert conn.info.backend_pid == pid  # cancelled, idle, kept
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
    finally:
        done.set()
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        if "watch" in state:
            state["watch"].join(30)
        blocker.close()
        single.close()


def test_two_batches_both_sent_one_by_one_in_opposite_orders_add_up(db, db_url, monkeypatch):
    """Both batches carry a refused value and share every other event in opposite orders: both
    take the one-by-one path, now one transaction each (savepoints inside), so they can
    deadlock there; ``Database.run`` retries the loser whole.  Each event stored and queued
    once, the refused one reported by both, and the counts add up."""
    _poison(monkeypatch, "refused-both")
    items = batch(2 * CHUNK, prefix="both")
    items[7] = raw_event("refused-both")
    other = Database(db_url, min_size=1, max_size=1)
    try:
        (ra, bad_a), (rb, bad_b) = race((db, items), (other, items[::-1]))
    finally:
        other.close()
    assert [i for i, _ in bad_a] == [7] and [i for i, _ in bad_b] == [len(items) - 1 - 7]
    assert ra.stored + rb.stored == len(items) - 1 and ra.duplicates + rb.duplicates == len(items) - 1
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(items) - 1,) * 2
        assert queued_once(conn)
