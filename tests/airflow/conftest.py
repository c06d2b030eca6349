"""Fixtures for Airflow tests: one migrated Airflow metadata database (SQLite) per session.

Airflow reads its configuration at import, so DAGs run in a child process configured by
:func:`lineage.airflow.runner.airflow_env`; the pytest process itself never imports Airflow's
configured core.
"""

from __future__ import annotations

import itertools

import pytest

_modules = itertools.count()


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    from lineage.airflow import runner
    from lineage.config import Settings

    home = tmp_path_factory.mktemp("airflow")
    env = runner.airflow_env(Settings(home=home / "unused"), airflow_home=home)
    with (home / "migrate.log").open("ab") as log:
        runner.ensure_migrated(env, log)
    return home


@pytest.fixture(scope="module")
def module_server(pg_root, tmp_path_factory):
    """``(settings, db, live_server)`` on a fresh database, shared by one module's tests.

    The pipeline run behind it takes ~20 s, so the module's tests read one run's results.
    """
    import os

    from tests_support import LiveServer, clone_database, drop_database
    from lineage.api.app import create_app
    from lineage.config import Settings
    from lineage.store import Database

    name = f"lineage_airflow_{os.getpid()}_{next(_modules)}"
    url = clone_database(pg_root, name, f"lineage_template_{os.getpid()}")["app"]  # as the server connects
    db = Database(url, min_size=1, max_size=4)
    from lineage.auth import tokens

    with db.connection() as conn:  # Airflow's transport sends an emitter token, as in production
        _, emitter = tokens.create(conn, name="airflow", principal="airflow", roles=["emitter"], created_by="tests")
    settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=url, token=emitter)
    try:
        with LiveServer(create_app(settings, db=db)) as server:
            yield settings, db, server
    finally:
        db.close()
        drop_database(pg_root, name)
