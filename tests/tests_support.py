"""Helpers shared by tests (imported as ``tests_support``; tests/ is on sys.path via conftest)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import jsonschema

# The official schema travels with the repository (tests/data/openlineage-spec/README.md).
SPEC_DIR = Path(__file__).resolve().parent / "data" / "openlineage-spec"

_schema = json.loads((SPEC_DIR / "OpenLineage.json").read_text())
SPEC_VALIDATOR = jsonschema.Draft202012Validator(_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def with_db(url: str, dbname: str) -> str:
    """``url`` with its database name replaced by ``dbname``."""
    base, _, query = url.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{dbname}" + (f"?{query}" if query else "")


def clone_database(root_url: str, name: str, template: str) -> dict[str, str]:
    """Create database ``name`` from ``template`` (as the superuser at ``root_url``), owned by
    the owner role, and return ``{"owner": url, "app": url, "reader": url}`` for it."""
    import psycopg

    from lineage.store.roles import Roles, role_url

    roles = Roles()
    with psycopg.connect(root_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER "{roles.owner}"')
        # A database's own grants are not copied from its template: repeat migration 0006's.
        conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO "{roles.app}"')
        conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{roles.reader}"')
    return {kind: role_url(root_url, getattr(roles, kind), name) for kind in ("owner", "app", "reader")}


def drop_database(root_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(root_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)



def principal(name: str, *roles: str, credential: str | None = None):
    """An authenticated :class:`~lineage.auth.principal.Principal` for in-process calls (name normalised)."""
    from lineage.auth.principal import Principal, normalise_name

    return Principal(normalise_name(name), credential or f"test:{name}", frozenset(roles))


def real_tokens(app, table: dict) -> None:
    """Give each principal of ``table`` (test key → Principal) a real API token in ``app``'s store.

    Tests write ``Authorization: Bearer KEY`` with their short keys; a thin ASGI layer in
    front of the app swaps each key for its real token before the request reaches the
    server, whose real authentication then verifies it (hash, expiry, revocation, roles).  A
    key not in the table passes through unchanged (and is refused as any bad token is).  The
    principal's credential becomes ``token:NAME`` (NAME from ``token:NAME``, else the key).
    """
    from lineage.auth import tokens as api_tokens

    db = app.state.db
    real: dict[bytes, bytes] = db.__dict__.setdefault("_test_tokens", {})  # two apps on one store share them
    with db.connection() as conn:
        for key, who in table.items():
            header = f"Bearer {key}".encode()
            if header in real:
                continue
            cred = who.credential
            name = cred[len("token:"):] if cred.startswith("token:") else key
            _, secret = api_tokens.create(conn, name=name, principal=who.name, roles=sorted(who.roles), created_by="tests")
            real[header] = f"Bearer {secret}".encode()

    inner = app.build_middleware_stack

    def build():
        downstream = inner()

        async def swap(scope, receive, send):
            if scope["type"] == "http":
                headers = [(k, real.get(v, v) if k == b"authorization" else v) for k, v in scope["headers"]]
                scope = {**scope, "headers": headers}
            await downstream(scope, receive, send)

        return swap

    app.build_middleware_stack = build
    app.middleware_stack = None


def until(predicate, what: str, timeout: float = 30.0, pause: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what`` after ``timeout``."""
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(pause)


def in_thread(fn):
    """Run ``fn`` in a thread: ``(thread, box)``, the box holding ``result`` or ``error``."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


def wait_for_lock(admin, pid: int, what: str = "the writer") -> None:
    """Until backend ``pid`` waits on a lock (seen through ``admin``, an autocommit connection)."""
    for _ in range(600):
        row = admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if not admin.autocommit:
            admin.commit()  # a fresh snapshot of pg_stat_activity next time
        if row and row[0] == "Lock":
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} never waited for the blocker's claim")
