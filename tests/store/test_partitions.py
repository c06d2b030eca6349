"""Partitioned ``raw_events`` (migration 0014): upgrade of a populated store, global idempotency,
the DEFAULT partition and ``lineage maintain partitions``, what the application role may not do
to a partition, and erasure on a partitioned table."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from lineage.audit.seal import seal_all
from lineage.audit.verify import verify
from lineage.events import parse_event
from lineage.maintain.partitions import BUSY, DEFAULT_AHEAD, ensure_partitions, list_partitions
from example_pipeline.sample import ml_pipeline_sample
from lineage.store.ingest import _raw_row, _store_raw, ingest_events, rebuild
from tests_support import clone_database, drop_database


def _month(at: datetime) -> str:
    return f"raw_events_{at:%Y_%m}"


def _events(n: int | None = None):
    events = [parse_event(e) for e in ml_pipeline_sample()]
    return events if n is None else events[:n]


@pytest.fixture
def owner(role_urls):
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        yield conn


def _where(conn, key: uuid.UUID) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM raw_events WHERE event_key = %s", (key,))]


# -- upgrade ----------------------------------------------------------------------------------
def test_upgrading_a_populated_0012_store_keeps_every_event_its_leaf_and_its_uniqueness(pg_root):
    from lineage.store.migrate import upgrade

    name = f"lineage_part_upgrade_{os.getpid()}"
    urls = clone_database(pg_root, name, "template0")
    try:
        upgrade(urls["owner"], "0012")
        events = _events()
        with psycopg.connect(urls["app"]) as app:  # what 0012's ingest stored: rows straight into raw_events
            for ev in events:
                app.execute("INSERT INTO raw_events (event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name,"
                            " producer, payload, normalizations) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", _raw_row(ev))
            # A derived version naming a raw event (the foreign key 0014 re-points at event_keys).
            ns = app.execute("INSERT INTO namespaces (name, created_at) VALUES ('ns', now()) RETURNING id").fetchone()[0]
            ds = app.execute("INSERT INTO datasets (namespace_id, name, created_at, updated_at) VALUES (%s, 'd', now(), now())"
                             " RETURNING id", (ns,)).fetchone()[0]
            app.execute("INSERT INTO dataset_versions (dataset_id, version, raw_event_id, created_at)"
                        " SELECT %s, 'v1', min(id), now() FROM raw_events", (ds,))
            app.commit()
            seal_all(app)
            before = app.execute("SELECT id, event_key, recorded_at, payload::text FROM raw_events ORDER BY id").fetchall()
        upgrade(urls["owner"])
        with psycopg.connect(urls["app"]) as app:
            assert app.execute("SELECT id, event_key, recorded_at, payload::text FROM raw_events ORDER BY id").fetchall() == before
            assert app.execute("SELECT relkind FROM pg_class WHERE oid = 'raw_events'::regclass").fetchone()[0] == "p"
            assert app.execute("SELECT v.raw_event_id = k.raw_id FROM dataset_versions v JOIN event_keys k ON k.raw_id = v.raw_event_id"
                               " WHERE v.version = 'v1'").fetchone() == (True,)
            names = [p[0] for p in list_partitions(app)]
            now = datetime.now(timezone.utc)
            assert names[0] == "raw_events_before_0014" and names[-1] == "raw_events_default"
            # The old table covers up to the month after its newest row, i.e. this one; then months ahead.
            assert _month(now) not in names and _month(now.replace(day=1) + timedelta(days=40)) in names
            # Every sealed leaf still matches its row: the ids, times and columns did not change.
            report = verify(app)
            assert report.ok, report.summary()
            assert report.records >= len(events)
            # Old events are still known: sending them again stores nothing; a new one is stored.
            assert ingest_events(app, events).stored == 0
            fresh = parse_event({**ml_pipeline_sample()[0], "eventTime": "2030-01-01T00:00:00Z"})
            assert ingest_events(app, [fresh]).stored == 1
            assert _where(app, fresh.key) == ["raw_events_before_0014"]  # recorded this month
            # The derived graph rebuilds from the attached rows, versions referencing their keys.
            assert rebuild(app) == len(events) + 1
            assert app.execute("SELECT count(*) FROM dataset_versions v JOIN event_keys k ON k.raw_id = v.raw_event_id").fetchone()[0] > 0
            app.commit()
    finally:
        drop_database(pg_root, name)


# -- idempotency --------------------------------------------------------------------------------
def test_the_application_cannot_choose_recorded_at_so_it_cannot_aim_an_event_at_another_partition(db):
    ev = _events(1)[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.connection() as conn:
            conn.execute("INSERT INTO event_keys (event_key, raw_id, recorded_at) VALUES (%s, 1, now() - interval '40 days')", (ev.key,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.connection() as conn:
            conn.execute("INSERT INTO raw_events (id, event_key, kind, event_time, producer, payload, recorded_at)"
                         " VALUES (1, %s, 'run', now(), 'p', '{}', now() - interval '40 days')", (ev.key,))


def test_an_event_stored_in_an_earlier_partition_is_a_duplicate_in_the_current_one(db, owner):
    """The owner plants an event recorded two months ago (old partition); the same event sent now
    is a duplicate, and the store holds it once, in the old partition."""
    ev = _events(1)[0]
    old = datetime.now(timezone.utc) - timedelta(days=62)
    raw_id = owner.execute("INSERT INTO event_keys (event_key, raw_id, recorded_at) VALUES (%s, nextval('raw_events_id_seq'), %s)"
                           " RETURNING raw_id", (ev.key, old)).fetchone()[0]
    owner.execute("INSERT INTO raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer,"
                  " payload, normalizations, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                  (raw_id, *_raw_row(ev), old))
    with db.connection() as conn:
        result = ingest_events(conn, [ev])
        assert (result.stored, result.duplicates) == (0, 1)
        assert _where(conn, ev.key) == ["raw_events_before_0014"]


def test_a_row_stored_without_its_claim_or_under_another_claim_is_refused(db, db_url):
    a, b = _events(2)
    with db.connection() as conn:
        ingest_events(conn, [a])
    # A second row for a stored key, with a fresh id: no claim names it.
    with pytest.raises(psycopg.errors.UniqueViolation):
        with psycopg.connect(db_url) as conn:
            conn.execute("INSERT INTO raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name,"
                         " producer, payload, normalizations) VALUES (nextval('raw_events_id_seq'), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                         _raw_row(a))
    # A claim for b, used to store a's event again.
    with pytest.raises(psycopg.errors.UniqueViolation):
        with psycopg.connect(db_url) as conn:
            raw_id = conn.execute("INSERT INTO event_keys (event_key, raw_id) VALUES (%s, nextval('raw_events_id_seq')) RETURNING raw_id",
                                  (b.key,)).fetchone()[0]
            conn.execute("INSERT INTO raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name,"
                         " producer, payload, normalizations) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", (raw_id, *_raw_row(a)))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events WHERE event_key = %s", (a.key,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM raw_events WHERE event_key = %s", (b.key,)).fetchone()[0] == 0


def test_an_event_given_twice_in_one_call_is_stored_once(db):
    """Group commit may merge two requests carrying the same event into one call."""
    a, b = _events(2)
    with db.connection() as conn:
        stored, ids = _store_raw(conn, [a, b, a, b, a])
        assert sorted(ev.key for ev in stored) == sorted([a.key, b.key]) and len(set(ids)) == 2
        assert _store_raw(conn, [b, a, b]) == ([], [])
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 2


def _waiting_on_a_lock(conn, pid: int) -> bool:
    return conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] is True


@pytest.mark.parametrize("first_commits", [True, False])
def test_a_writer_racing_an_uncommitted_claim_waits_and_then_stores_only_what_the_other_did_not(db_url, first_commits):
    events = _events(4)
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b, psycopg.connect(db_url, autocommit=True) as watch:
        stored_a, _ = _store_raw(a, events[:3])
        assert len(stored_a) == 3
        result: dict = {}
        b_pid = b.info.backend_pid
        t = threading.Thread(target=lambda: result.update(b=_store_raw(b, list(reversed(events)))))
        t.start()
        while t.is_alive() and not _waiting_on_a_lock(watch, b_pid):
            t.join(0.02)
        assert t.is_alive(), "the second writer must wait for the first's claims"
        a.commit() if first_commits else a.rollback()
        t.join()
        b.commit()
        stored_b, ids_b = result["b"]
        expected = {events[3].key} if first_commits else {ev.key for ev in events}
        assert {ev.key for ev in stored_b} == expected and len(ids_b) == len(expected)
        counts = watch.execute("SELECT event_key, count(*) FROM raw_events GROUP BY 1").fetchall()
        assert {k for k, _ in counts} == {ev.key for ev in events} and all(n == 1 for _, n in counts)


def test_concurrent_writers_in_opposite_orders_neither_fail_nor_deadlock(db, db_url):
    events = _events()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(k: int) -> None:
        try:
            with psycopg.connect(db_url) as conn:
                barrier.wait()
                ingest_events(conn, events if k % 2 else list(reversed(events)))
                conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(events), len(events))


# -- the DEFAULT partition and maintenance ----------------------------------------------------------
def test_the_default_partition_catches_an_event_with_no_partition_and_maintenance_moves_it(db, owner, role_urls):
    now = datetime.now(timezone.utc)
    owner.execute(f"DROP TABLE {_month(now)}")  # maintenance never ran this month
    events = _events(3)
    with db.connection() as conn:
        assert ingest_events(conn, events).stored == 3
        assert set(_where(conn, events[0].key)) == {"raw_events_default"}
    with db.connection() as conn:
        seal_all(conn)
    assert ensure_partitions(role_urls["owner"], 2) == 1
    with db.connection() as conn:
        assert {w for ev in events for w in _where(conn, ev.key)} == {_month(now)}
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 3
        report = verify(conn)
        assert report.ok and report.records >= 3, report.summary()
    # The moved rows are as protected as any: the append-only trigger is on the new partition.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute(f"DELETE FROM {_month(now)}")
    assert ensure_partitions(role_urls["owner"], 2) == 0  # idempotent


def test_partition_maintenance_is_the_same_whatever_the_session_s_date_style_and_time_zone(role_urls, owner):
    from urllib.parse import quote

    url = role_urls["owner"]
    url += ("&" if "?" in url else "?") + "options=" + quote("-c TimeZone=Pacific/Kiritimati -c DateStyle=SQL,DMY", safe="")
    assert ensure_partitions(url, 6) == 6 - DEFAULT_AHEAD
    parts = list_partitions(owner)  # read back in ISO (psycopg reads no other date style)
    month = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for name, lo, hi, _ in parts:
        if name.startswith("raw_events_2"):  # a month: [first of the month, first of the next) in UTC
            start = datetime.strptime(name[-7:], "%Y_%m").replace(tzinfo=timezone.utc)
            assert lo == start and hi == (start + timedelta(days=32)).replace(day=1)
    assert _month(month + timedelta(days=6 * 31)) in [p[0] for p in parts]


def test_two_maintenance_runs_at_once_create_each_partition_once(role_urls, owner):
    errors, results = [], []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(ensure_partitions(role_urls["owner"], 12))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whichever runs second either finds the work done (0) or the first at work (BUSY); never both create.
    assert errors == [] and sorted(results) in ([BUSY, 12 - DEFAULT_AHEAD], [0, 12 - DEFAULT_AHEAD])
    names = [p[0] for p in list_partitions(owner)]
    assert len(names) == len(set(names)) == 1 + 13 + 1


def test_a_run_while_another_holds_the_maintenance_lock_returns_at_once(role_urls, owner):
    from lineage.maintain.partitions import MAINTENANCE_LOCK

    with psycopg.connect(role_urls["owner"]) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (MAINTENANCE_LOCK,))
        assert ensure_partitions(role_urls["owner"], 24) == BUSY
    assert ensure_partitions(role_urls["owner"], 24) == 24 - DEFAULT_AHEAD


def test_a_long_read_makes_maintenance_give_up_not_block_ingest_and_the_server_start_still_succeeds(db, role_urls, owner):
    from lineage.store.migrate import upgrade

    owner.execute(f"DROP TABLE {_month(datetime.now(timezone.utc).replace(day=1) + timedelta(days=40))}")
    with psycopg.connect(role_urls["app"]) as reader:
        reader.execute("SELECT count(*) FROM raw_events").fetchone()  # holds its lock until the transaction ends
        with pytest.raises(psycopg.errors.LockNotAvailable):
            ensure_partitions(role_urls["owner"], DEFAULT_AHEAD, lock_timeout="200ms")
        upgrade(role_urls["owner"])  # what a server start runs: logs, does not fail
        with db.connection() as conn:  # ingest meanwhile is not blocked (nothing waits on the lock any more)
            assert ingest_events(conn, _events(1)).stored == 1
    assert ensure_partitions(role_urls["owner"], DEFAULT_AHEAD) == 1


def test_maintain_partitions_from_the_command_line(role_urls, monkeypatch, tmp_path, capsys, owner):
    import sys

    from lineage import cli

    monkeypatch.setenv("LINEAGE_HOME", str(tmp_path))
    monkeypatch.setenv("LINEAGE_DATABASE_URL", role_urls["app"])
    monkeypatch.setenv("LINEAGE_MIGRATION_DATABASE_URL", role_urls["owner"])
    monkeypatch.setattr(sys, "argv", ["lineage", "maintain", "partitions", "--ahead", "5"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    assert f"{5 - DEFAULT_AHEAD} partition(s) created" in capsys.readouterr().out
    # The application role's URL cannot maintain: it is not the owner.
    monkeypatch.setenv("LINEAGE_MIGRATION_DATABASE_URL", role_urls["app"])
    with pytest.raises(SystemExit) as refused:
        cli.main()
    assert refused.value.code == 2
    assert "owner" in capsys.readouterr().err


# -- what the application role may not do -----------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "DROP TABLE {part}",
    "ALTER TABLE raw_events DETACH PARTITION {part}",
    "TRUNCATE {part}",
    "TRUNCATE raw_events",
    "SELECT count(*) FROM {part}",
    "INSERT INTO {part} (id, event_key, kind, event_time, producer, payload) VALUES (-1, gen_random_uuid(), 'run', now(), 'p', '{{}}')",
    "DELETE FROM raw_events",
    "UPDATE raw_events SET producer = 'forged'",
    "DELETE FROM event_keys",
    "SELECT lineage_ensure_partitions(1)",
    "CREATE TABLE raw_events_2099_01 PARTITION OF raw_events FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
])
def test_the_application_role_cannot_touch_a_partition_or_the_keys(db, statement):
    with db.connection() as conn:
        ingest_events(conn, _events(2))
    part = _month(datetime.now(timezone.utc))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.connection() as conn:
            conn.execute(statement.format(part=part))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 2


# -- erasure ------------------------------------------------------------------------------------
def test_erasure_deletes_from_a_partition_with_the_key_and_the_versions(db, owner):
    events = _events()
    with db.connection() as conn:
        ingest_events(conn, events)
        victim = conn.execute("SELECT raw_event_id FROM dataset_versions ORDER BY raw_event_id LIMIT 1").fetchone()[0]
        key = conn.execute("SELECT event_key FROM raw_events WHERE id = %s", (victim,)).fetchone()[0]
    with db.connection() as conn:
        seal_all(conn)
    with db.connection() as conn:
        conn.execute("SELECT lineage_erase(ARRAY[%s::bigint], 'dpo@example.com', 'subject request')", (victim,))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events WHERE id = %s", (victim,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM event_keys WHERE raw_id = %s", (victim,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dataset_versions WHERE raw_event_id = %s", (victim,)).fetchone()[0] == 0
        report = verify(conn)
        assert report.ok and report.erased == 1, report.summary()
    # Outside an erasure even the owner cannot delete from a partition.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute(f"DELETE FROM {_month(datetime.now(timezone.utc))}")
    # The erased event's key went with it: sent again, it is stored again (as before 0014).
    again = next(ev for ev in events if ev.key == key)
    with db.connection() as conn:
        assert ingest_events(conn, [again]).stored == 1
