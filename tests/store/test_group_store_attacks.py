"""Attacks on the group commit's one-statement store (``store_group`` / ``_store``).

Each test tries to break one guarantee of the one-statement path against the batch path
(``ingest_events(conn, events, defer=True)``, claim + COPY): the stored row is the same in
every column for unusual but valid content; every event is stored and queued exactly once
when groups and batches race over the same keys; nothing of a group is left half-written;
the connection goes back to the pool transactional after a refusal, a cancellation or a lost
session; and it all holds behind PgBouncer in transaction mode.  The batch path's rows are
taken in a transaction that is rolled back, then the same events are stored as one group.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from lineage.errors import StoreUnavailable
from lineage.events import parse_raw
from lineage.events.canonical import MAX_DEPTH
from lineage.errors import InvalidEvent
from lineage.samples import dataset, run_event
from lineage.store.db import Database
from lineage.store.group_commit import GroupCommitter, _store
from lineage.store.ingest import SMALL_GROUP, ingest_events, store_group
from tests_support import in_thread, wait_for_lock

sys.path.insert(0, str(Path(__file__).parent.parent / "deploy"))  # pgbouncer_support

PRODUCER = "https://example.com/producer"
JOB_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
DATASET_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"

# Every column of raw_events but id (drawn from a sequence) and recorded_at (the transaction's
# time), the payload both as jsonb's text and as a value, its stored size too.
_ROW = ("event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer, payload::text,"
        " payload, normalizations, pg_column_size(payload)")


def _facet(**body) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": "https://example.com/facet.json", **body}


def _run(name: str = "job", facets: dict | None = None, ns: str = "attack", **top) -> dict:
    ev = run_event("START", (ns, name), str(uuid.uuid4()), extra_run_facets=facets)
    ev.update(top)
    return ev


def _deep(levels: int):
    """Nested arrays ``levels`` deep."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Unusual but valid events, by what each attacks.
_ODD_TEXT = 'q"uote\\back\\\\slash\\u0000not-nul\b\f\n\r\t\x01\x1f\x7f\u2028\u2029\ufeff\u00e9e\u0301\U0001f600\U0010fffd%s%(x)s$1 \';--'
CASES = {
    "astral_and_odd_names": lambda: _run(name="\U0001f600\U00010348\U0001d11e job " + _ODD_TEXT, ns="ns\U0002a6d6"),
    "control_escapes_in_facets": lambda: _run(facets={"odd": _facet(text=_ODD_TEXT, **{_ODD_TEXT: _ODD_TEXT})}),
    "keys_that_sort_differently_in_utf16": lambda: _run(facets={"k": _facet(**{"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "": 4, "a": 5, "aa": 6, "b": 7})}),
    "nfc_nfd_twin_keys": lambda: _run(facets={"k": _facet(**{"\u00e9": "composed", "e\u0301": "decomposed"})}),
    "large_integers": lambda: _run(facets={"n": _facet(big=2**53 - 1, small=-(2**53 - 1), zero=0, arr=[2**53 - 1, -1, 10**15])}),
    "floats": lambda: _run(facets={"f": _facet(huge=1.7976931348623157e308, tiny=5e-324, neg=-2.2250738585072014e-308,
                                                tenth=0.1, third=1 / 3, negzero=-0.0, e21=1e21, e20=1e20, em7=1e-7, em6=1e-6,
                                                whole=3.0, arr=[1.5, -1e300, 1e-300])}),
    "empty_containers": lambda: _run(facets={"e": _facet(obj={}, arr=[], s="", nested=[{}, [], [[]], {"": {}}])},
                                     inputs=[], outputs=[]),
    "deep_nesting_at_the_limit": lambda: _run(facets={"d": _facet(deep=_deep(MAX_DEPTH - 4))}),
    "year_one_and_offset_time": lambda: _run(eventTime="0001-01-01T13:59:59.9999999+14:00"),
    "year_9999_time": lambda: _run(eventTime="9999-12-31T23:59:59.999999Z"),
    "naive_time_and_date_only_nominal": lambda: _run(eventTime="2026-12-31T23:59:59.1234567",
                                                     facets={"nominalTime": _facet(nominalStartTime="2026-12-31",
                                                                                   nominalEndTime="2027-01-01T00:00:00")}),
    "run_without_event_type": lambda: {k: v for k, v in _run().items() if k != "eventType"},
    "job_event_nulls": lambda: {"eventTime": "2026-11-03T10:00:00Z", "producer": PRODUCER, "schemaURL": JOB_URL,
                                "job": {"namespace": "attack", "name": "static \U0001f600"}, "inputs": [dataset("db", "in")], "outputs": []},
    "dataset_event_nulls": lambda: {"eventTime": "2026-11-03T10:00:00Z", "producer": PRODUCER, "schemaURL": DATASET_URL,
                                    "dataset": dataset("db", "only \\ \"x\"", [("a\U0001f600", "int")])},
    "long_names_at_the_limit": lambda: _run(name="\U0001f600" * 256, ns="n" * 1024),
}


def _parse(raw: dict):
    return parse_raw(json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _rows(conn, events) -> list:
    return conn.execute(f"SELECT {_ROW} FROM raw_events WHERE event_key = ANY(%s) ORDER BY event_key",
                        ([ev.key for ev in events],)).fetchall()


def _batch_reference(db, events) -> tuple[list, list]:
    """The batch path's rows and queued ids (as key lists) for ``events``, rolled back."""
    with db.connection() as conn:
        ingest_events(conn, events, defer=True)
        rows = _rows(conn, events)
        queued = _queued_keys(conn)
        conn.rollback()
        assert _rows(conn, events) == []
    return rows, queued


def _queued_keys(conn) -> list:
    """Each derive_queue row as the list of event keys it names, in its order."""
    return [[k for (k,) in conn.execute("SELECT r.event_key FROM unnest(%s::bigint[]) WITH ORDINALITY u(id, n)"
                                       " JOIN raw_events r ON r.id = u.id ORDER BY u.n", (ids,))]
            for (ids,) in conn.execute("SELECT raw_ids FROM derive_queue ORDER BY id").fetchall()]


def _group(conn, events):
    conn.autocommit = True
    try:
        return store_group(conn, events)
    finally:
        conn.autocommit = False


def _counts(conn) -> tuple:
    return conn.execute("SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM raw_events),"
                        " (SELECT count(*) FROM derive_queue)").fetchone()


@pytest.mark.parametrize("case", sorted(CASES))
def test_unusual_content_is_stored_as_the_batch_path_stores_it(db, case):
    odd = _parse(CASES[case]())
    plain = _parse(_run("plain"))
    events = [odd, plain]
    reference, ref_queue = _batch_reference(db, events)
    with db.connection() as conn:
        assert _group(conn, events).stored == 2
    with db.connection() as conn:
        got = _rows(conn, events)
        assert got == reference
        assert _queued_keys(conn) == ref_queue
        # And the stored payload is the canonical event itself, as jsonb reads it (jsonb writes
        # numbers its own way, so compare values, not Python's reading of its text).
        (same,) = conn.execute("SELECT payload = %s::text::jsonb FROM raw_events WHERE event_key = %s",
                               (odd.payload.decode(), odd.key)).fetchone()
        assert same is True


def test_the_nesting_case_really_is_at_the_limit():
    """The deep case above is as deep as validation lets through (one more level is refused)."""
    _parse(CASES["deep_nesting_at_the_limit"]())
    with pytest.raises(InvalidEvent, match="nested"):
        _parse(_run(facets={"d": _facet(deep=_deep(MAX_DEPTH - 3))}))


def test_every_case_in_one_full_group_is_stored_as_the_batch_path_stores_it(db):
    """All the cases together, padded to the largest group the statement takes."""
    events = [_parse(make()) for make in CASES.values()]
    events += [_parse(_run(f"pad{k}")) for k in range(SMALL_GROUP - len(events))]
    assert len(events) == SMALL_GROUP
    reference, ref_queue = _batch_reference(db, events)
    with db.connection() as conn:
        assert _group(conn, events).stored == SMALL_GROUP
    with db.connection() as conn:
        assert _rows(conn, events) == reference
        assert _queued_keys(conn) == ref_queue


def test_claim_row_and_queue_entry_share_one_recorded_at_and_partition(db):
    """Month-boundary routing: the claim, the row and the queue entry carry the one statement's
    time, so the row is in the partition its claim and queue entry name."""
    events = [_parse(_run(f"r{k}")) for k in range(5)]
    with db.connection() as conn:
        _store(conn, events)
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT k.recorded_at = r.recorded_at, q.recorded_at = r.recorded_at,"
            " r.tableoid::regclass::text = (SELECT r2.tableoid::regclass::text FROM raw_events r2 WHERE r2.id = r.id"
            "   AND r2.recorded_at = q.recorded_at)"
            " FROM raw_events r JOIN event_keys k ON k.raw_id = r.id AND k.event_key = r.event_key"
            " JOIN derive_queue q ON r.id = ANY(q.raw_ids) WHERE r.event_key = ANY(%s)", ([ev.key for ev in events],)).fetchall()
        assert rows == [(True, True, True)] * 5


# -- racing writers ------------------------------------------------------------------------------


def test_groups_and_batches_racing_over_the_same_keys_store_and_queue_each_event_once(db, db_url):
    """Four writers on two pools (two committers, a second process's pool, the batch path
    merging two requests in one transaction, so claiming out of key order) store random
    overlapping subsets, duplicates within a group too: no deadlock survives the retries, no
    key violation, and each event is stored once and queued once."""
    pool = [_parse(_run(f"race{k}")) for k in range(40)]
    other = Database(db_url, min_size=1, max_size=2)
    errors: list[BaseException] = []
    stored = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def writer(database, how: str, seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(25):
            group = rng.sample(pool, rng.randint(1, 12))
            group += rng.sample(group, rng.randint(0, len(group)))  # the same event twice in a group
            rng.shuffle(group)
            try:
                if how == "group":
                    n = database.run(lambda conn: _store_counted(conn, group))
                else:  # two requests merged into one transaction: two claims, in no global order
                    half = len(group) // 2
                    n = database.run(lambda conn: ingest_events(conn, group[half:], defer=True).stored
                                     + ingest_events(conn, group[:half], defer=True).stored)
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(exc)
                return
            with lock:
                stored.append(n)

    threads = [threading.Thread(target=writer, args=(d, how, s)) for s, (d, how) in
               enumerate([(db, "group"), (db, "group"), (other, "group"), (other, "batch")])]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert errors == []
    keys = {ev.key for ev in pool}
    with db.connection() as conn:
        stored_keys = [k for (k,) in conn.execute("SELECT event_key FROM raw_events")]
        touched = set(stored_keys)
        assert len(stored_keys) == len(touched)  # no event stored twice
        assert touched <= keys
        assert sum(stored) == len(touched)  # each writer counted only what it stored
        queued = [i for (i,) in conn.execute("SELECT unnest(raw_ids) FROM derive_queue")]
        assert sorted(queued) == sorted(i for (i,) in conn.execute("SELECT id FROM raw_events"))  # each queued once
        assert conn.execute("SELECT count(*) FROM event_keys").fetchone()[0] == len(touched)


def _store_counted(conn, events) -> int:
    """``_store`` returning how many it stored (the committer drops the count)."""
    from lineage.store.ingest import fits_one_statement

    assert fits_one_statement(events)
    conn.autocommit = True
    try:
        return store_group(conn, events).stored
    finally:
        conn.autocommit = False


def test_two_committers_with_duplicates_across_groups_acknowledge_every_request(db):
    """Two committer threads (two connections) take groups that hold the same events: every
    request is answered stored, each event is stored and queued once."""
    committer = GroupCommitter(db, threads=2)
    events = [_parse(_run(f"dup{k}")) for k in range(30)]
    futures = []
    try:
        def sender(seed: int) -> None:
            rng = random.Random(seed)
            for ev in rng.sample(events, len(events)):
                futures.append(committer.submit(ev))

        threads = [threading.Thread(target=sender, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for fut in futures:
            assert fut.result(timeout=60) is None
    finally:
        committer.close()
    assert len(futures) == 120
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (30, 30)
        assert conn.execute("SELECT count(*), count(DISTINCT x) FROM derive_queue, unnest(raw_ids) x").fetchone() == (30, 30)


# -- a group blocked on another writer's claim: cancelled, its session lost, interrupted -----------


def _blocked_group(db, db_url, n: int = 6):
    """``(events, blocker, single)``: an open batch transaction holding the claim of the middle
    event (in key order) of a group of ``n``, and a one-connection pool for the group."""
    events = sorted((_parse(_run(f"blk{k}")) for k in range(n)), key=lambda ev: ev.key.bytes)
    blocker = psycopg.connect(db_url)
    ingest_events(blocker, [events[n // 2]], defer=True)  # claimed, not committed
    single = Database(db_url, min_size=1, max_size=1)
    return events, blocker, single


@pytest.mark.parametrize("how", ["cancel", "terminate"])
def test_a_group_cancelled_or_cut_off_while_waiting_leaves_nothing_and_a_transactional_connection(db, db_url, how):
    events, blocker, single = _blocked_group(db, db_url)
    try:
        with db.connection() as conn:
            before = _counts(conn)
        pid = single.run(lambda conn: conn.info.backend_pid)
        t, box = in_thread(lambda: single.run(lambda conn: _store(conn, events)))
        with psycopg.connect(db_url, autocommit=True) as admin:
            wait_for_lock(admin, pid, "the group")
            assert admin.execute(f"SELECT pg_{how}_backend(%s)", (pid,)).fetchone()[0] is True
        t.join(30)
        assert not t.is_alive()
        assert isinstance(box.get("error"), StoreUnavailable), box
        blocker.rollback()  # the blocker gives up its claim: the group's half could now be completed, if any were left
        with db.connection() as conn:
            assert _counts(conn) == before  # not one claim, row or queue entry of the group
        with single.connection() as conn:  # the pool's connection (the same, or its replacement)
            assert conn.autocommit is False
            assert (conn.info.backend_pid == pid) is (how == "cancel")
            conn.execute("SELECT 1")
            assert conn.info.transaction_status.name == "INTRANS"
            conn.rollback()
        # And the group, sent again, is stored whole, once.
        single.run(lambda conn: _store(conn, events))
        with db.connection() as conn:
            assert len(_rows(conn, events)) == 6
            assert conn.execute("SELECT count(*) FROM derive_queue, unnest(raw_ids) x").fetchone()[0] == 6
    finally:
        blocker.close()
        single.close()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_group_waiting_on_a_batch_gets_the_batch_outcome_for_that_key_only(db, db_url, outcome):
    """The batch commits its claim (the group's copy is a duplicate) or gives it up (the group
    stores it): either way every event once, queued once, and one queue entry for the group."""
    events, blocker, single = _blocked_group(db, db_url)
    try:
        pid = single.run(lambda conn: conn.info.backend_pid)
        t, box = in_thread(lambda: single.run(lambda conn: _store_counted(conn, events)))
        with psycopg.connect(db_url, autocommit=True) as admin:
            wait_for_lock(admin, pid, "the group")
        getattr(blocker, outcome)()
        t.join(30)
        assert "error" not in box, box
        assert box["result"] == (5 if outcome == "commit" else 6)
        with db.connection() as conn:
            assert len(_rows(conn, events)) == 6
            assert conn.execute("SELECT count(*), count(DISTINCT x) FROM derive_queue, unnest(raw_ids) x").fetchone() == (6, 6)
            assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == (2 if outcome == "commit" else 1)
    finally:
        blocker.close()
        single.close()


# -- behind PgBouncer in transaction mode ----------------------------------------------------------


def test_behind_pgbouncer_groups_interleave_with_transactions_on_shared_sessions(db, role_urls):
    """Two server sessions shared by a committer (two threads, one-statement groups in
    autocommit) and batch writers whose transactions use session temp tables (synchronous
    ingest): every request answered, every event stored and queued once, and each client
    connection handed back transactional."""
    from pgbouncer_support import PgBouncer

    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=2) as bouncer:
        pooled = Database(bouncer.url, min_size=2, max_size=6, prepare_threshold=None)
        committer = GroupCommitter(pooled, threads=2)
        singles = [_parse(_run(f"pgb{k}")) for k in range(40)]
        batches = [[_parse(_run(f"pgb-batch{b}-{k}", ns="pgb-sync")) for k in range(5)] for b in range(6)]
        futures, errors = [], []
        lock = threading.Lock()
        try:
            def sender(seed: int) -> None:
                rng = random.Random(seed)
                for ev in rng.sample(singles, len(singles)):
                    fut = committer.submit(ev)
                    with lock:
                        futures.append(fut)

            def batcher(chunk) -> None:
                try:
                    for part in chunk:
                        pooled.run(lambda conn: ingest_events(conn, part + singles[:3]))  # derives: temp tables
                except BaseException as exc:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(exc)

            threads = [threading.Thread(target=sender, args=(s,)) for s in range(3)]
            threads += [threading.Thread(target=batcher, args=(batches[b::2],)) for b in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for fut in futures:
                assert fut.result(timeout=60) is None
            assert errors == [], f"{errors[:3]}\n{bouncer.log()[-2000:]}"
            for _ in range(4):
                with pooled.connection() as conn:
                    assert conn.autocommit is False
        finally:
            committer.close()
            pooled.close()
    every = singles + [ev for part in batches for ev in part]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(every), len(every))
        # Queued: the committer's events (the batches derived theirs), and the three singles a
        # batch may have stored first were derived there and never queued twice.
        queued = [k for (k,) in conn.execute("SELECT r.event_key FROM derive_queue q, unnest(q.raw_ids) x JOIN raw_events r ON r.id = x")]
        assert len(queued) == len(set(queued))
        assert set(queued) <= {ev.key for ev in singles}
        assert {ev.key for ev in singles} - set(queued) <= {ev.key for ev in singles[:3]}
        jobs = {n for (n,) in conn.execute("SELECT j.name FROM jobs j JOIN namespaces n ON n.id = j.namespace_id WHERE n.name = 'pgb-sync'")}
        assert jobs == {f"pgb-batch{b}-{k}" for b in range(6) for k in range(5)}


def test_odd_normalization_notes_and_names_become_the_same_text_and_arrays(db):
    """The notes travel as a JSON array turned into text[] by PostgreSQL: strings an array
    literal would read otherwise (NULL, braces, quotes, commas, backslashes, blanks, empty)
    must stay the very strings the batch path stores."""
    ev = _parse(_run("notes"))
    ev.normalizations = ["NULL", "null", "", " ", "{a,b}", '"q"', "a\\b", "x,y", "\U0001f600", "\t\n", "{}", "a\"b\\\"c"]
    ev.job_name = "NULL"
    ev.job_namespace = '{"x": 1}'
    reference, _ = _batch_reference(db, [ev])
    with db.connection() as conn:
        _group(conn, [ev])
    with db.connection() as conn:
        got = _rows(conn, [ev])
        assert got == reference
        assert got[0][10] == ev.normalizations and got[0][6] == "NULL"


class _Interrupted(BaseException):
    """Not KeyboardInterrupt (which psycopg answers by cancelling the query): an exception a
    signal handler (a timeout, a shutdown hook) raises while the statement runs."""


@pytest.mark.parametrize("exc", [KeyboardInterrupt, _Interrupted])
def test_a_group_interrupted_mid_statement_is_whole_or_absent_and_the_pool_stays_transactional(db, db_url, exc):
    import signal

    events, blocker, single = _blocked_group(db, db_url)
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(exc()))
    try:
        with db.connection() as conn:
            before = _counts(conn)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(exc):
            single.run(lambda conn: _store(conn, events))
        signal.setitimer(signal.ITIMER_REAL, 0)
        blocker.rollback()  # the group's statement, if still running on the server, may now finish
        deadline = time.monotonic() + 20
        while True:
            with db.connection() as conn:
                now = _counts(conn)
                busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                    " AND state = 'active' AND pid <> pg_backend_pid()").fetchone()[0]
            if busy == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # All of the group (its statement finished after the client gave up) or none of it.
        assert now in (before, (before[0] + 6, before[1] + 6, before[2] + 1))
        for _ in range(2):
            with single.connection() as conn:
                assert conn.autocommit is False
                conn.execute("SELECT 1")
                assert conn.info.transaction_status.name == "INTRANS"
                conn.rollback()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        blocker.close()
        single.close()


# -- refusals ------------------------------------------------------------------------------------


def _refused(ev):
    """``ev`` with a payload the store refuses (jsonb has no \\u0000; validation would stop it,
    this stands for any value it lets through and the store does not)."""
    ev.payload = ev.payload[:-1] + b',"x":"\\u0000"}'
    return ev


@pytest.mark.parametrize("at", range(1, 9))
def test_a_refusal_at_any_execution_of_the_prepared_statement_leaves_the_connection_usable(db_url, db, at):
    """psycopg prepares the statement at its sixth execution on a connection: a group refused
    just then (or before, or after) must not leave the next groups on that connection failing."""
    single = Database(db_url, min_size=1, max_size=1)  # prepare_threshold 5, the default
    try:
        stored = []
        for n in range(1, 10):
            ev = _parse(_run(f"prep{n}"))
            if n == at:
                with pytest.raises(Exception) as caught:
                    single.run(lambda conn: _store(conn, [ev, _refused(_parse(_run(f"bad{n}")))]))
                assert "SQLSTATE 22P05" in str(caught.value)
            else:
                single.run(lambda conn: _store(conn, [ev]))
                stored.append(ev)
        with db.connection() as conn:
            assert len(_rows(conn, stored)) == 8
            assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 8
    finally:
        single.close()


def test_through_the_committer_a_refused_event_fails_only_its_own_requests(db):
    """A group holding a refused event twice, a good event twice and one stored before: the two
    refused requests fail (400), every other request is answered stored, each event once."""
    from lineage.errors import StoreRefused

    committer = GroupCommitter(db)
    old = _parse(_run("before"))
    db.run(lambda conn: _store(conn, [old]))
    good = [_parse(_run(f"ok{k}")) for k in range(4)]
    bad = _refused(_parse(_run("bad")))
    gate = threading.Lock()
    gate.acquire()  # hold the committer so that everything below lands in one group
    blocker_fut = None
    try:
        original = committer.db.run

        def held_run(fn, **kw):
            with gate:
                pass
            return original(fn, **kw)

        committer.db = type("Held", (), {"run": staticmethod(held_run)})()
        blocker_fut = committer.submit(_parse(_run("first")))
        time.sleep(0.2)  # the committer has taken "first" and waits on the gate
        order = [good[0], bad, good[1], old, good[0], good[2], bad, good[3]]
        futures = [committer.submit(ev) for ev in order]
        gate.release()
        assert blocker_fut.result(timeout=60) is None
        outcomes = []
        for fut in futures:
            try:
                fut.result(timeout=60)
                outcomes.append("ok")
            except StoreRefused:
                outcomes.append("refused")
        assert outcomes == ["ok", "refused", "ok", "ok", "ok", "ok", "refused", "ok"]
    finally:
        if gate.locked():
            gate.release()
        committer.close()
    with db.connection() as conn:
        everything = good + [old]
        assert len(_rows(conn, everything)) == 5
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 6
        assert conn.execute("SELECT count(*), count(DISTINCT x) FROM derive_queue, unnest(raw_ids) x").fetchone() == (6, 6)
        assert conn.execute("SELECT count(*) FROM event_keys").fetchone()[0] == 6


def test_behind_pgbouncer_without_the_setting_a_group_is_never_refused_as_the_clients_fault(role_urls, db):
    """Misconfigured (named prepared statements behind PgBouncer 1.18): a client's ``_pg3_0``
    may run on a session where another client's ``_pg3_0`` is another statement.  The
    documented answer is a 503 naming the setting (clients retry); a 400 would tell the
    client its valid event is bad, and OpenLineage clients drop what is refused."""
    from lineage.errors import StoreRefused
    from pgbouncer_support import PgBouncer

    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=2) as bouncer:
        # Prepared from a statement's second execution on a connection (psycopg's default: sixth).
        committer_db = Database(bouncer.url, min_size=1, max_size=1, prepare_threshold=1)
        batch_db = Database(bouncer.url, min_size=1, max_size=1, prepare_threshold=1)
        outcomes = []
        try:
            with batch_db.connection() as held:  # the batch client holds one server session ...
                held.execute("SELECT 1")
                for n in range(2):  # ... so the group's statement is prepared as _pg3_0 on the other one
                    committer_db.run(lambda conn: _store(conn, [_parse(_run(f"pgb-a{n}"))]))
                for n in range(2):  # and the batch's claim becomes _pg3_0 on this one
                    ingest_events(held, [_parse(_run(f"pgb-b{n}"))], defer=True)
            for k in range(4):  # both sessions free now: each client's _pg3_0 may land on either
                for which, fn in (("group", lambda conn: _store(conn, [_parse(_run(f"pgb-g{k}"))])),
                                  ("batch", lambda conn: ingest_events(conn, [_parse(_run(f"pgb-c{k}"))], defer=True))):
                    try:
                        (committer_db if which == "group" else batch_db).run(fn)
                        outcomes.append((which, "stored"))
                    except StoreRefused as exc:
                        outcomes.append((which, f"refused: {exc}"))
                    except StoreUnavailable:
                        outcomes.append((which, "unavailable"))
        finally:
            committer_db.close()
            batch_db.close()
    assert [o for o in outcomes if o[1].startswith("refused")] == []


# -- the ledger and erasure ------------------------------------------------------------------------


def test_group_stored_rows_are_ledgered_and_verify_like_batch_stored_ones(db):
    """Every unusual case stored as one group and others by the batch path: sealed, then
    re-hashed by ``audit verify`` (which reads each row back): no problem, every row counted."""
    from lineage.audit.seal import seal_all
    from lineage.audit.verify import verify

    grouped = [_parse(make()) for make in CASES.values()]
    batched = [_parse(_run(f"ledger{k}", facets={"f": _facet(x=1.5, s=_ODD_TEXT)})) for k in range(3)]
    db.run(lambda conn: _store(conn, grouped))
    db.run(lambda conn: ingest_events(conn, batched, defer=True))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_queue q WHERE q.tbl = 'raw_events'").fetchone()[0] == len(grouped) + 3
        seal_all(conn)
    with db.connection() as conn:
        report = verify(conn)
    assert report.ok, report.ordered()[:3]
    assert report.records >= len(grouped) + 3


def test_an_erased_event_sent_again_is_treated_alike_by_both_paths(db):
    """Erasure deletes the event and its key: the same event sent again is stored again, by a
    group as by a batch, once, and queued once (and its old queue entry no longer names a row)."""
    ev_group, ev_batch = _parse(_run("erase-g")), _parse(_run("erase-b"))
    db.run(lambda conn: _store(conn, [ev_group]))
    db.run(lambda conn: ingest_events(conn, [ev_batch], defer=True))
    with db.connection() as conn:
        ids = [i for (i,) in conn.execute("SELECT id FROM raw_events ORDER BY id")]
        conn.execute("SELECT lineage_erase(%s, 'dpo@example.com', 'consent withdrawn')", (ids,))
    results = [db.run(lambda conn: _store_counted(conn, [ev_group, ev_group])),
               db.run(lambda conn: ingest_events(conn, [ev_batch, ev_batch], defer=True).stored)]
    assert results == [1, 1]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (2, 2)
        assert conn.execute("SELECT count(*) FROM event_keys").fetchone()[0] == 2
        live = {i for (i,) in conn.execute("SELECT id FROM raw_events")}
        queued = [i for (i,) in conn.execute("SELECT x FROM derive_queue, unnest(raw_ids) x")]
        assert sorted(i for i in queued if i in live) == sorted(live)


_CHILD = r"""
import json, random, sys, threading, uuid
from lineage.events import parse_raw
from lineage.samples import run_event
from lineage.store.db import Database
from lineage.store.group_commit import GroupCommitter

url, seed = sys.argv[1], int(sys.argv[2])
events = [parse_raw(json.dumps(run_event("START", ("procs", f"job{k}"), str(uuid.uuid5(uuid.NAMESPACE_URL, f"run{k}")))).encode())
          for k in range(30)]
db = Database(url, min_size=2, max_size=4)
committer = GroupCommitter(db, threads=2)
futures, lock = [], threading.Lock()
def send(s):
    for ev in random.Random(s).sample(events, len(events)):
        fut = committer.submit(ev)
        with lock:
            futures.append(fut)
threads = [threading.Thread(target=send, args=(seed * 10 + t,)) for t in range(3)]
for t in threads: t.start()
for t in threads: t.join()
ok = sum(1 for f in futures if f.result(timeout=120) is None)
committer.close(); db.close()
print(ok)
"""


def test_two_server_processes_committing_the_same_events_store_and_queue_each_once(db, db_url):
    """Two processes (two servers behind one load balancer), each with a two-thread committer,
    receive the same 30 events three times over in different orders: every request is
    acknowledged, and each event is stored and queued once."""
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, db_url, str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for seed in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["90", "90"]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (30, 30)
        assert conn.execute("SELECT count(*), count(DISTINCT x) FROM derive_queue, unnest(raw_ids) x").fetchone() == (30, 30)
        assert conn.execute("SELECT count(*) FROM event_keys").fetchone()[0] == 30


@pytest.mark.parametrize("setting", ["TimeZone = 'Asia/Kathmandu'", "DateStyle = 'SQL, DMY'", "TimeZone = 'America/St_Johns'"])
def test_a_session_that_is_not_utc_or_iso_stores_the_same_instants(db, setting):
    """A pooler that does not carry the session's TimeZone, or a role with its own DateStyle:
    the times travel as text in the JSON parameter, so they must name the same instant."""
    events = [_parse(_run("tz", eventTime=t)) for t in ("2026-11-30T23:59:59.999999Z", "2026-12-01T00:00:00Z",
                                                        "2026-02-03T04:05:06.000007+05:45", "0001-01-01T00:00:00Z")]
    with db.connection() as conn:
        conn.execute(f"SET {setting}")
        ingest_events(conn, events, defer=True)
        conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'")  # read back as Python can hold
        reference = _rows(conn, events)
        conn.rollback()
    with db.connection() as conn:
        conn.execute(f"SET {setting}")
        conn.commit()
        _group(conn, events)
        conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'")
        got = _rows(conn, events)
        conn.commit()
    assert got == reference
    assert [r[3] for r in got] == [r[3] for r in sorted(reference)] and {r[3] for r in got} == {ev.event_time for ev in events}


def test_one_event_at_the_byte_bound_is_stored_as_the_batch_path_stores_it(db):
    """The largest payload the statement takes, full of escapes jsonb must undo."""
    from lineage.store.ingest import SMALL_GROUP_BYTES, fits_one_statement

    filler = ('\\"\n\U0001f600\u00e9' * 340_000)
    ev = _parse(_run("big", facets={"b": _facet(data=filler)}))
    room = SMALL_GROUP_BYTES - len(ev.payload)
    assert room >= 0
    ev = _parse(_run("big", facets={"b": _facet(data=filler + "x" * room)}))
    assert len(ev.payload) == SMALL_GROUP_BYTES and fits_one_statement([ev])
    reference, _ = _batch_reference(db, [ev])
    with db.connection() as conn:
        assert _group(conn, [ev]).stored == 1
    with db.connection() as conn:
        assert _rows(conn, [ev]) == reference


def test_a_body_with_repeated_keys_is_stored_as_the_batch_path_stores_it(db):
    """JSON with a key given twice (the last wins when decoding), and keys jsonb orders by
    length before bytes: the group's payload is the batch path's, value and text."""
    base = json.dumps(_run("dupkeys", facets={"d": _facet(z=1)}), ensure_ascii=False)
    body = base.replace('"z": 1', '"z": 1, "z": [2, {"b": 1, "a": 2, "b": 3}], "\U0001f600": 0, "zz": {}, "a": null')
    ev = parse_raw(body.encode())
    assert b'"z":[2,{"a":2,"b":3}]' in ev.payload
    reference, _ = _batch_reference(db, [ev])
    with db.connection() as conn:
        _group(conn, [ev])
    with db.connection() as conn:
        assert _rows(conn, [ev]) == reference
