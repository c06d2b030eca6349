"""Shared fixtures: one real embedded PostgreSQL per session, a fresh migrated database per test.

``db`` is a :class:`lineage.store.Database` on its own database, cloned from a migrated
template (a ``CREATE DATABASE ... TEMPLATE`` costs tens of milliseconds).  ``live_server``
is a real uvicorn server on a free loopback port, serving the app over that database.

Every route but health needs a credential.  ``tokens(name, *roles, ...)`` creates an API token
in the test's database and returns it; ``admin_token`` holds every role, and ``client``
sends it, so tests about something else are not about authentication.  ``anon_client``
sends nothing.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import tests_support`
sys.path.insert(1, str(Path(__file__).parents[1] / "dags"))  # the example pipeline (`import example_pipeline`)

from tests_support import LiveServer, clone_database as _clone, drop_database as _drop  # noqa: E402
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_root() -> str:
    """URL of the session's PostgreSQL superuser (``LINEAGE_TEST_DATABASE_URL`` or an embedded one).

    It only creates the roles and databases: the template is migrated as the owner role, and
    every test's database is used as the application role.  The embedded data directory lives
    outside pytest's rotating tmp dirs: a concurrent pytest session would otherwise delete it
    under the running server.
    """
    url = os.environ.get("LINEAGE_TEST_DATABASE_URL")
    if not url:
        from lineage.store.embedded import embedded_url

        root = tempfile.mkdtemp(prefix="lineage-test-pg-")
        # atexit runs last-registered first: the server (registered inside embedded_url)
        # stops before this removes its directory.
        atexit.register(shutil.rmtree, root, True)
        url = embedded_url(Path(root) / "data")
    from lineage.store.migrate import upgrade
    from lineage.store.roles import Roles, ensure_roles

    with psycopg.connect(url, autocommit=True) as conn:
        ensure_roles(conn, Roles())
    template = f"lineage_template_{os.getpid()}"
    upgrade(_clone(url, template, "template0")["owner"])
    return url


@pytest.fixture
def role_urls(pg_root: str) -> dict[str, str]:
    """``{"owner", "app", "reader"}`` URLs of this test's own database, cloned from the template."""
    name = f"lineage_test_{os.getpid()}_{next(_counter)}"
    yield _clone(pg_root, name, f"lineage_template_{os.getpid()}")
    _drop(pg_root, name)


@pytest.fixture
def db_url(role_urls) -> str:
    """The application role's URL: the whole suite runs with the privileges the server has."""
    return role_urls["app"]


@pytest.fixture
def settings(tmp_path, role_urls):
    from lineage.config import Settings

    return Settings(home=tmp_path / "home", database_url=role_urls["app"], migration_database_url=role_urls["owner"])


@pytest.fixture
def db(settings):
    from lineage.store import Database

    database = Database(settings.database_url.get_secret_value(), min_size=1, max_size=4)
    yield database
    database.close()


@pytest.fixture
def app(settings, db):
    from lineage.api.app import create_app

    return create_app(settings, db=db)


@pytest.fixture
def live_server(app):
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def tokens(db):
    """``tokens(name, *roles, principal=, namespaces=, expires_at=)`` → a new API token (all roles if none)."""
    from lineage.auth import ROLES
    from lineage.auth import tokens as api_tokens

    def make(name: str, *roles: str, principal: str | None = None, namespaces=None, expires_at=None) -> str:
        with db.connection() as conn:
            _, secret = api_tokens.create(conn, name=name, principal=principal or f"{name}@tests.example", roles=roles or ROLES,
                                          namespaces=namespaces, expires_at=expires_at, created_by="tests")
        return secret

    return make


@pytest.fixture
def admin_token(tokens) -> str:
    """A token holding every role, acting as ``tester@example.com``."""
    return tokens("tests-all-roles", principal="tester@example.com")


@pytest.fixture
def auth_headers(admin_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def client(live_server, auth_headers):
    import httpx

    with httpx.Client(base_url=live_server.url, timeout=30, headers=auth_headers) as c:
        yield c


@pytest.fixture
def anon_client(live_server):
    import httpx

    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        yield c
