"""Attacks on the deferred batch path: chunks validated while the previous one is stored.

``ingest_batch(..., defer=True)`` validates a batch in chunks of ``CHUNK`` items and sends each
chunk's ``lineage_store_group`` statement before validating the next (``_InFlight``: libpq's
asynchronous API).  Promises under attack: a batch is stored whole or not at all, whatever
fails while a statement is in flight (a refused value, a cancelled or terminated backend, an
exception in this thread, a signal); the connection goes back to the pool idle and usable (a
statement left running would make the rollback fail or the next request hang); every event is
stored and queued once across chunks, across concurrent batches that share events in other
orders, and behind PgBouncer with named prepared statements left on; and the rows are the very
rows the claim + COPY path stores.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import psycopg
import pytest

from lineage.errors import LineageError
from lineage.events import parse_raw
from lineage.store import ingest as ingest_module
from lineage.store.db import Database
from lineage.store.batch import CHUNK, _InFlight, _statements, ingest_batch
from lineage.store.ingest import SMALL_GROUP_BYTES, derive_stored, ingest_events
from batch_support import batch, counts, hold_claim, queued_once, race, raw_event
from tests_support import in_thread, wait_for_lock

sys.path.insert(0, str(Path(__file__).parent.parent / "deploy"))  # pgbouncer_support

_ROW = ("event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer, payload::text,"
        " normalizations")










def _stored_at_once(db, items) -> int:
    """Store ``items`` as one batch, failing (not waiting) if another session holds a claim."""
    def store(conn):
        conn.execute("SET LOCAL lock_timeout = '5s'")
        return ingest_batch(conn, items, defer=True)[0].stored
    return db.run(store)




# -- the same rows as claim + COPY ----------------------------------------------------------------


def test_a_batch_of_several_chunks_stores_the_rows_claim_and_copy_store(db):
    items = batch(3 * CHUNK + 7)
    items[5] = raw_event("odd \U0001f600 \\ \"q\"", eventTime="2026-12-31T23:59:59.1234567")  # normalised, with a note
    events = [parse_raw(i, datasets=False) for i in items]
    with db.connection() as conn:
        ingest_events(conn, events, defer=True)
        reference = conn.execute(f"SELECT {_ROW} FROM raw_events ORDER BY event_key").fetchall()
        conn.rollback()
    with db.connection() as conn:
        result, bad = ingest_batch(conn, items, defer=True)
    assert (result.stored, result.duplicates, bad) == (len(items), 0, [])
    with db.connection() as conn:
        assert conn.execute(f"SELECT {_ROW} FROM raw_events ORDER BY event_key").fetchall() == reference
        assert reference[0] and any(row[9] for row in reference)  # the note travelled too
        assert queued_once(conn)
        assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == 4  # one entry per chunk


def test_duplicates_across_chunks_and_of_stored_events_are_counted_once(db):
    stored_before = batch(3, prefix="old")
    with db.connection() as conn:
        ingest_batch(conn, stored_before, defer=True)
    items = batch(2 * CHUNK, prefix="new")
    items[CHUNK + 3] = items[1]  # the same event in two chunks
    items[CHUNK + 4] = items[CHUNK + 5]  # and twice in one chunk
    items[-1] = stored_before[0]  # and one stored by an earlier batch
    with db.connection() as conn:
        result, bad = ingest_batch(conn, items, defer=True)
    assert bad == [] and (result.stored, result.duplicates) == (len(items) - 3, 3)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(items), len(items))
        assert queued_once(conn)


# -- whole or nothing, whatever fails while a chunk is in flight ----------------------------------


def test_a_value_refused_in_a_late_chunk_stores_every_other_event_and_reports_by_index(db, monkeypatch):
    """The store refuses one event of the third chunk after two chunks were stored: the batch
    is rolled back and stored one by one; items after it (not validated when it failed),
    malformed ones among them, keep their own indexes."""
    real = ingest_module._raw_row

    def poisoned(ev):
        row = list(real(ev))
        if ev.job_name == "refused":
            row[8] = row[8][:-1] + ',"x":"\\u0000"}'  # jsonb has no \u0000: SQLSTATE 22P05
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_raw_row", poisoned)
    items = batch(4 * CHUNK)
    refused_at, malformed_at = 2 * CHUNK + 10, 3 * CHUNK + 1
    items[refused_at] = raw_event("refused")
    items[malformed_at] = b'{"eventTime": '
    with db.connection() as conn:
        result, bad = ingest_batch(conn, items, defer=True)
    assert [i for i, _ in bad] == [refused_at, malformed_at]
    assert "SQLSTATE 22P05" in bad[0][1].problems[0].reason and "SELECT" not in bad[0][1].problems[0].reason
    assert (result.stored, result.duplicates) == (len(items) - 2, 0)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(items) - 2
        assert conn.execute("SELECT count(*) FROM raw_events WHERE job_name = 'refused'").fetchone()[0] == 0
        assert queued_once(conn)


@pytest.mark.parametrize("how", ["cancel", "terminate"])
def test_a_batch_cancelled_or_cut_off_in_flight_leaves_nothing_and_a_usable_connection(db, db_url, how):
    items = batch(3 * CHUNK)
    blocker = hold_claim(db_url, items[CHUNK + 2])  # the second chunk waits for this claim
    single = Database(db_url, min_size=1, max_size=1)
    try:
        with db.connection() as conn:
            before = counts(conn)
        pid = single.run(lambda conn: conn.info.backend_pid)
        t, box = in_thread(lambda: single.run(lambda conn: ingest_batch(conn, items, defer=True)))
        with psycopg.connect(db_url, autocommit=True) as admin:
            wait_for_lock(admin, pid, "the batch")
            assert admin.execute(f"SELECT pg_{how}_backend(%s)", (pid,)).fetchone()[0] is True
        t.join(30)
        assert not t.is_alive()
        assert isinstance(box.get("error"), LineageError), box  # a 503 for the client, which retries
        blocker.rollback()  # the claim is free: a chunk left running on the server could finish now
        time.sleep(0.3)
        with db.connection() as conn:
            assert counts(conn) == before  # not one claim, row or queue entry: the first chunk went too
        with single.connection() as conn:
            assert (conn.info.backend_pid == pid) is (how == "cancel")
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.rollback()
        result, bad = single.run(lambda conn: ingest_batch(conn, items, defer=True))  # the retry: whole, once
        assert (result.stored, bad) == (len(items), [])
    finally:
        blocker.close()
        single.close()


def test_an_exception_here_while_a_chunk_waits_on_the_server_cancels_it_instead_of_hanging(db, db_url):
    """The caller's ``admit`` fails on the third chunk while the second is blocked on another
    writer's claim: without cancelling the statement in flight, reading it to its end would
    wait for that writer forever, and the rollback could not be sent at all."""
    items = batch(3 * CHUNK)
    blocker = hold_claim(db_url, items[CHUNK + 2])
    single = Database(db_url, min_size=1, max_size=1)
    seen = []

    def admit(ev):
        seen.append(ev)
        if len(seen) == 2 * CHUNK + 1:
            raise RuntimeError("the caller's check failed")
        return None

    try:
        with db.connection() as conn:
            before = counts(conn)
        pid = single.run(lambda conn: conn.info.backend_pid)
        t, box = in_thread(lambda: single.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True)))
        t.join(30)
        assert not t.is_alive(), "the batch hung on its statement in flight"
        assert isinstance(box.get("error"), RuntimeError), box
        with single.connection() as conn:  # the same session, idle: not discarded by the pool as busy
            assert conn.info.backend_pid == pid
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.rollback()
        # No orphaned statement on the server still holding the first chunk's claims: those
        # events are stored at once by another writer, while the blocker still holds its own.
        result, _ = db.run(lambda conn: ingest_batch(conn, items[:CHUNK], defer=True))
        assert result.stored == CHUNK
        time.sleep(0.3)
        with db.connection() as conn:
            assert counts(conn)[:2] == (before[0] + CHUNK, before[1] + CHUNK)  # that retry's, nothing of the batch
    finally:
        blocker.close()
        single.close()


class _Interrupted(BaseException):
    """What a signal handler (a timeout, a shutdown hook) raises while this thread waits."""


@pytest.mark.parametrize("exc", [KeyboardInterrupt, _Interrupted])
def test_a_batch_interrupted_while_waiting_is_absent_and_the_pool_stays_usable(db, db_url, exc):
    items = batch(2 * CHUNK)
    blocker = hold_claim(db_url, items[CHUNK + 2])
    single = Database(db_url, min_size=1, max_size=1)
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(exc()))
    try:
        with db.connection() as conn:
            before = counts(conn)
        pid = single.run(lambda conn: conn.info.backend_pid)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(exc):
            single.run(lambda conn: ingest_batch(conn, items, defer=True))
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert _stored_at_once(db, items[:CHUNK]) == CHUNK  # no orphan holds these claims
        blocker.rollback()
        time.sleep(0.3)
        with db.connection() as conn:
            assert counts(conn)[:2] == (before[0] + CHUNK, before[1] + CHUNK)  # that retry's, nothing of the batch
        for _ in range(2):
            with single.connection() as conn:
                assert conn.info.backend_pid == pid  # idle, kept: not discarded by the pool as busy
                assert conn.autocommit is False
                assert conn.execute("SELECT 1").fetchone() == (1,)
                conn.rollback()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        blocker.close()
        single.close()


def test_the_statements_run_only_inside_the_callers_transaction(db_url):
    """Sent outside a transaction, each chunk would commit on its own: refused."""
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(RuntimeError, match="open transaction"):
        _InFlight(conn)


# -- racing batches, poolers -----------------------------------------------------------------------


def test_two_batches_sharing_events_in_opposite_orders_both_finish_storing_each_once(db, db_url):
    """Claims are in key order within a chunk only: the two can deadlock, PostgreSQL picks one,
    ``Database.run`` retries it; each event is stored and queued once, and the two results
    add up."""
    items = batch(4 * CHUNK, prefix="race")
    other = Database(db_url, min_size=1, max_size=1)
    try:
        (ra, bad_a), (rb, bad_b) = race((db, items), (other, items[::-1]))
    finally:
        other.close()
    assert bad_a == bad_b == []
    assert ra.stored + rb.stored == len(items) and ra.duplicates + rb.duplicates == len(items)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(items), len(items))
        assert queued_once(conn)


def test_behind_pgbouncer_with_prepared_statements_on_chunked_batches_are_never_refused(role_urls, db):
    """The chunk statements are unnamed: behind a transaction-mode pooler with psycopg preparing
    from the second execution, batches of several chunks on two clients sharing two server
    sessions are stored whole, none refused as the client's fault."""
    from pgbouncer_support import PgBouncer

    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=2) as bouncer:
        clients = [Database(bouncer.url, min_size=1, max_size=1, prepare_threshold=1) for _ in range(2)]
        try:
            results = []
            for k in range(4):
                for n, client in enumerate(clients):
                    result, bad = client.run(lambda conn: ingest_batch(conn, batch(2 * CHUNK + 1, prefix=f"pgb{k}-{n}-"), defer=True))
                    results.append((result.stored, bad))
        finally:
            for client in clients:
                client.close()
    assert results == [(2 * CHUNK + 1, [])] * 8
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 8 * (2 * CHUNK + 1)
        assert queued_once(conn)


# -- big events, and events read without their datasets --------------------------------------------


def test_events_past_the_statement_bound_are_cut_into_statements_and_stored(db):
    big = "x" * (SMALL_GROUP_BYTES // 2 + 1000)
    items = batch(5, prefix="small")
    items[1:1] = [raw_event(f"big{k}") for k in range(3)]
    for k in (1, 2, 3):  # three events each over half the bound: one statement each
        ev = json.loads(items[k])
        ev["run"]["facets"] = {"blob": {"_producer": "https://example.com/p", "_schemaURL": "https://example.com/s", "text": big}}
        items[k] = json.dumps(ev).encode()
    parsed = [parse_raw(i, datasets=False) for i in items]
    cut = _statements(parsed)
    assert [len(g) for g in cut] == [2, 1, 5]  # small+big, big, big+small*4: never two bigs together
    assert all(sum(len(ev.payload) for ev in g) <= SMALL_GROUP_BYTES or len(g) == 1 for g in cut)
    with db.connection() as conn:
        result, bad = ingest_batch(conn, items, defer=True)
    assert (result.stored, bad) == (len(items), [])
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events WHERE job_name LIKE 'big%'").fetchone()[0] == 3


def test_an_event_read_without_its_datasets_cannot_be_derived(db):
    ev = parse_raw(raw_event("no-datasets"), datasets=False)
    with db.connection() as conn, pytest.raises(ValueError, match="datasets=False"):
        derive_stored(conn, [ev], [1])


def test_a_connection_on_a_descriptor_past_1024_still_stores_chunked_batches(db_url, db):
    """A busy server holds many sockets: the wait must not be ``select`` (which refuses
    descriptors past 1024), or every batch on such a connection would fail."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))  # as a server would raise it
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        single = Database(db_url, min_size=1, max_size=1)
        try:
            fd = single.run(lambda conn: conn.pgconn.socket)
            assert fd > 1024
            result, bad = single.run(lambda conn: ingest_batch(conn, batch(2 * CHUNK + 3, prefix="fd"), defer=True))
            assert (result.stored, bad) == (2 * CHUNK + 3, [])
        finally:
            single.close()
    finally:
        for f in held:
            os.close(f)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
