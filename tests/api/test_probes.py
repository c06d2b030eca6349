"""``/healthz`` and ``/readyz`` (lineage/api/probes.py): each readiness check fails on its own
cause, names itself, leaks nothing, and recovers; liveness never depends on the store."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import psycopg
import pytest

from lineage.samples import run_event
from tests_support import LiveServer, clone_database, drop_database, until


def _dbname(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[1]




def _serve(settings, db, **overrides):
    from lineage.api.app import create_app

    return LiveServer(create_app(settings.model_copy(update=overrides), db=db))


def test_ready_when_everything_is_in_order(anon_client):
    r = anon_client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "database": "ok", "schema": "ok", "derivation": "ok", "workers": "ok"}
    assert anon_client.get("/healthz").json() == {"status": "alive"}


def test_store_down_fails_readiness_naming_the_database_but_not_liveness(settings, db, pg_root, db_url):
    """The pool's connections are killed and the database refuses new ones (as when the server
    is gone): /readyz is 503 naming `database`, without SQL or the password; /healthz stays 200."""
    name = _dbname(db_url)
    with _serve(settings, db) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/readyz").status_code == 200
        with psycopg.connect(pg_root, autocommit=True) as root:
            root.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            root.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "not ready" and body["failed"] == ["database"]
            assert body["checks"]["schema"]["status"] == body["checks"]["derivation"]["status"] == "skipped"
            assert "unreachable" in body["checks"]["database"]["detail"] or "PoolTimeout" in body["checks"]["database"]["detail"]
            for secret in ("SELECT", "alembic", "postgresql://", name):
                assert secret not in r.text
            h = c.get("/healthz")
            assert h.status_code == 200 and h.json() == {"status": "alive"}
        finally:
            with psycopg.connect(pg_root, autocommit=True) as root:
                root.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # Back once the pool reconnects: readiness is not latched.
        until(lambda: c.get("/readyz").status_code == 200, "ready again after the store came back")


def test_a_password_in_the_url_never_reaches_the_probe(settings, pg_root, db_url):
    """A store whose role has a password and refuses connections: the 503 never quotes it."""
    from lineage.store import Database
    from lineage.store.roles import role_url

    secret = f"pw-{uuid.uuid4().hex}"
    user = f"probe_{uuid.uuid4().hex[:8]}"
    name = _dbname(db_url)
    with psycopg.connect(pg_root, autocommit=True) as root:
        root.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{secret}' IN ROLE lineage_app")
    url = role_url(db_url, user, name, password=secret)
    try:
        database = Database(url, min_size=1, max_size=2)
        try:
            with _serve(settings, database, database_url=url, derive_workers=0) as server, \
                    httpx.Client(base_url=server.url, timeout=30) as c:
                with psycopg.connect(pg_root, autocommit=True) as root:
                    root.execute(f"ALTER ROLE {user} NOLOGIN")
                    root.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (user,))
                r = c.get("/readyz")
                assert r.status_code == 503 and r.json()["failed"] == ["database"], r.text
                assert secret not in r.text and user not in r.text
        finally:
            database.close()
    finally:
        with psycopg.connect(pg_root, autocommit=True) as root:
            root.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (user,))
            root.execute(f"DROP OWNED BY {user}")
            root.execute(f"DROP ROLE {user}")


@pytest.fixture
def behind(pg_root, settings):
    """A store migrated only to the revision before this version's head."""
    from alembic.script import ScriptDirectory

    from lineage.store import Database
    from lineage.store.migrate import MIGRATIONS, upgrade
    from lineage.store.roles import Roles

    script = ScriptDirectory(str(MIGRATIONS))
    previous = script.get_revision(script.get_current_head()).down_revision
    name = f"lineage_behind_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    urls = clone_database(pg_root, name, "template0")
    upgrade(urls["owner"], previous, roles=Roles())
    database = Database(urls["app"], min_size=1, max_size=2)
    yield database, previous, urls
    database.close()
    drop_database(pg_root, name)


def test_a_store_behind_this_version_is_not_ready(settings, behind):
    from lineage.store.migrate import head

    database, previous, urls = behind
    with _serve(settings, database, database_url=urls["app"], derive_workers=0) as server, \
            httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["failed"] == ["schema"]
        detail = r.json()["checks"]["schema"]["detail"]
        assert f"at revision {previous}" in detail and head() in detail and "lineage db upgrade" in detail
        assert c.get("/healthz").status_code == 200
        # Migrated to head (the positive answer was never cached): ready.
        from lineage.store.migrate import upgrade

        upgrade(urls["owner"])
        assert c.get("/readyz").status_code == 200


def test_a_store_newer_than_this_version_stays_ready_during_a_rolling_upgrade(settings, db, role_urls):
    with psycopg.connect(role_urls["owner"]) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with _serve(settings, db) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/readyz")
        assert r.status_code == 200, r.text
        assert "newer than this version" in r.json()["checks"]["schema"]["detail"]


def test_derivation_lag_over_the_limit_is_not_ready_until_derived(settings, db, tokens):
    from lineage.store.derive import catch_up

    emitter = {"Authorization": f"Bearer {tokens('emit', 'emitter')}"}
    with _serve(settings, db, derive_workers=0, max_derivation_lag=0.2) as server, \
            httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/readyz").status_code == 200  # nothing queued: no lag
        r = c.post("/api/v1/lineage", json=run_event("START", ("ns", "lagging"), str(uuid.uuid4())), headers=emitter)
        assert r.status_code == 201, r.text
        r = until(lambda: (resp := c.get("/readyz")).status_code == 503 and resp, "readyz failing on lag")
        assert r.json()["failed"] == ["derivation"]
        assert "LINEAGE_MAX_DERIVATION_LAG" in r.json()["checks"]["derivation"]["detail"]
        assert "workers" not in r.json()["checks"]  # no derivation threads in this process: nothing to check
        assert catch_up(db, 30)
        r = c.get("/readyz")
        assert r.status_code == 200, r.text


def test_stopped_derivation_threads_are_not_ready(settings, db):
    from lineage.api.app import create_app

    app = create_app(settings.model_copy(update={"derive_workers": 1}), db=db)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/readyz").status_code == 200
        app.state.derivers.stop()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["failed"] == ["workers"], r.text
        assert c.get("/healthz").status_code == 200


def test_probes_need_no_credential_and_ignore_a_bad_one(anon_client):
    for path in ("/healthz", "/readyz"):
        assert anon_client.get(path).status_code == 200
        assert anon_client.get(path, headers={"Authorization": "Bearer lin_forged"}).status_code == 200
