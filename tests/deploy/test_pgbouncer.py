"""The server behind a real PgBouncer in transaction mode (Debian's, 1.18 here).

What transaction pooling changes: each transaction may run on another server session, and
sessions are shared between clients. Ingest's staging tables survive that (created with
``IF NOT EXISTS`` inside each transaction, emptied ``ON COMMIT``), and pgbouncer carries the
session's ``TimeZone`` over. psycopg's automatic *named* prepared statements do not: PgBouncer
before 1.21 (or with ``max_prepared_statements = 0``) hands a statement prepared by one
client to whichever client gets that session next. ``LINEAGE_DATABASE_PREPARE_THRESHOLD=none``
turns them off; without it, the failure is a 503 that names the setting, never a 500.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from lineage.config import Settings
from lineage.errors import StoreUnavailable
from lineage.samples import dataset, run_event
from lineage.store.db import Database
from pgbouncer_support import PgBouncer
from tests_support import LiveServer

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
CLIENTS = 8


def _events(client: int, runs: int) -> list[dict]:
    """START and COMPLETE of ``runs`` runs of this client's jobs over shared datasets."""
    out = []
    for r in range(runs):
        rid = str(uuid.uuid4())
        job = ("pgb", f"job-{client}-{r % 3}")
        ins, outs = [dataset("db", f"in{r % 4}", [("a", "int")])], [dataset("db", f"out-{client}", [("a", "int")])]
        at = T0 + timedelta(minutes=client * 100 + r)
        out.append(run_event("START", job, rid, ins, outs, at))
        out.append(run_event("COMPLETE", job, rid, ins, outs, at + timedelta(seconds=5)))
    return out


@pytest.fixture
def bouncer(role_urls):
    # Fewer server sessions than the server's pool holds connections: sessions are shared.
    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=3) as b:
        yield b


@pytest.fixture
def pooled_server(tmp_path, bouncer):
    """``lineage serve``'s app with LINEAGE_DATABASE_URL pointing at PgBouncer, as deployed:
    no owner URL (nothing migrates; the revision check itself goes through PgBouncer)."""
    from lineage.api.app import create_app

    settings = Settings(home=tmp_path / "home", database_url=bouncer.url, database_prepare_threshold="none", pool_max_size=8)
    with LiveServer(create_app(settings)) as server:
        yield server


def _eventually(check, what: str, timeout: float = 60.0):
    """``check()`` once it returns something truthy (derivation may run behind the acknowledgement)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, what
            return result
        time.sleep(0.1)


def test_concurrent_ingest_and_reads_through_pgbouncer_transaction_mode(pooled_server, db, auth_headers, bouncer):
    per_client = {k: _events(k, 12) for k in range(CLIENTS)}
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def client(k: int) -> None:
        events = per_client[k]
        with httpx.Client(base_url=pooled_server.url, timeout=60, headers=auth_headers) as c:
            barrier.wait()
            # Half one at a time (what Airflow's provider sends), half in batches; reads between.
            for i, event in enumerate(events[: len(events) // 2]):
                r = c.post("/api/v1/lineage", json=event)
                if r.status_code != 201:
                    with lock:
                        failures.append(f"client {k} event {i}: {r.status_code} {r.text[:200]}")
                if i % 4 == 0:
                    r = c.get("/api/v1/namespaces")
                    if r.status_code != 200:
                        with lock:
                            failures.append(f"client {k} read: {r.status_code} {r.text[:200]}")
            rest = events[len(events) // 2:]
            for i in range(0, len(rest), 4):
                r = c.post("/api/v1/lineage/batch", json=rest[i:i + 4])
                if r.status_code != 200 or r.json()["rejected"]:
                    with lock:
                        failures.append(f"client {k} batch {i}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [], f"{failures[:5]}\n{bouncer.log()[-2000:]}"

    # Every acknowledged event stored exactly once (checked past PgBouncer, on the database itself).
    sent = sum(len(v) for v in per_client.values())
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM raw_events").fetchone() == (sent, sent)

    # Reads through PgBouncer see every client's jobs and the lineage of its output.
    with httpx.Client(base_url=pooled_server.url, timeout=60, headers=auth_headers) as c:
        def jobs() -> set[str]:
            r = c.get("/api/v1/namespaces/pgb/jobs", params={"limit": 1000})
            assert r.status_code == 200, r.text
            names = {j["name"] for j in r.json()["jobs"]}
            return names if len(names) == CLIENTS * 3 else set()

        assert _eventually(jobs, "every job readable through PgBouncer") == {f"job-{k}-{j}" for k in range(CLIENTS) for j in range(3)}
        for k in range(CLIENTS):
            r = c.get("/api/v1/lineage", params={"nodeId": f"dataset:db:out-{k}", "depth": 2})
            assert r.status_code == 200, r.text
            ids = {n["id"] for n in r.json()["graph"]}
            assert f"job:pgb:job-{k}-0" in ids and "dataset:db:in0" in ids


def test_without_the_setting_a_shared_session_is_a_503_naming_it_never_a_500(role_urls):
    """Two clients, one server session: psycopg names its statements per connection, so the
    second client's ``_pg3_0`` collides with the first's (or finds it gone)."""
    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=1) as b:
        # Prepared from a query's second execution (psycopg's default is the sixth).
        first = Database(b.url, min_size=1, max_size=1, prepare_threshold=1)
        second = Database(b.url, min_size=1, max_size=1, prepare_threshold=1)
        try:
            for _ in range(2):
                with first.connection() as conn:
                    assert conn.execute("SELECT count(*) FROM raw_events").fetchone() == (0,)
            with pytest.raises(StoreUnavailable) as caught:
                for _ in range(2):
                    with second.connection() as conn:
                        conn.execute("SELECT count(*) FROM raw_events").fetchone()
            message = str(caught.value)
            assert "LINEAGE_DATABASE_PREPARE_THRESHOLD=none" in message
            assert "raw_events" not in message and "SELECT" not in message  # no SQL in a message
        finally:
            first.close()
            second.close()


def test_with_prepare_off_clients_sharing_one_session_all_succeed(role_urls):
    """The same two clients, one session, the setting applied: nothing named, nothing collides."""
    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=1) as b:
        settings = Settings(database_url=b.url, database_prepare_threshold="none")
        dbs = [Database(b.url, min_size=1, max_size=2, prepare_threshold=settings.database_prepare_threshold) for _ in range(3)]
        try:
            for _ in range(10):  # well past psycopg's default threshold of 5
                for d in dbs:
                    with d.connection() as conn:
                        assert conn.execute("SELECT count(*) FROM raw_events WHERE id > %s", (0,)).fetchone() == (0,)
        finally:
            for d in dbs:
                d.close()


def test_session_time_zone_holds_in_every_transaction_behind_the_pooler(pg_root, role_urls):
    """``Database`` sets UTC once per connection (a session setting); with transaction pooling
    each transaction may land on another server session, so PgBouncer must carry it over.
    The database's own default is set to something else to make a lost setting visible."""
    dbname = psycopg.conninfo.conninfo_to_dict(role_urls["app"])["dbname"]
    with psycopg.connect(pg_root, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET timezone = \'Pacific/Chatham\'')
    with PgBouncer(role_urls["app"], pool_mode="transaction", pool_size=2) as b:
        seen: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            d = Database(b.url, min_size=1, max_size=2, prepare_threshold=None)
            try:
                for _ in range(15):
                    with d.connection() as conn:
                        zone = conn.execute("SHOW TimeZone").fetchone()[0]
                    with lock:
                        seen.append(zone)
            finally:
                d.close()

        with psycopg.connect(b.url) as raw:  # a client that never set it sees the database's default
            assert raw.execute("SHOW TimeZone").fetchone()[0] == "Pacific/Chatham"
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 60 and set(seen) == {"UTC"}


def test_the_setting_reads_none_and_numbers_and_refuses_nonsense():
    assert Settings(database_prepare_threshold="none").database_prepare_threshold is None
    assert Settings(database_prepare_threshold="OFF").database_prepare_threshold is None
    assert Settings(database_prepare_threshold="0").database_prepare_threshold == 0
    assert Settings().database_prepare_threshold == 5
    with pytest.raises(ValueError, match="database_prepare_threshold"):
        Settings(database_prepare_threshold="sometimes")
    with pytest.raises(ValueError, match="database_prepare_threshold"):
        Settings(database_prepare_threshold=-1)
