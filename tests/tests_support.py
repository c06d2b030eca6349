"""Helpers shared by tests (imported as ``tests_support``; tests/ is on sys.path via conftest)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import jsonschema
from fastapi import HTTPException, Request  # at module level: the overrides' annotations resolve here

# The official schema travels with the repository (tests/data/openlineage-spec/README.md).
SPEC_DIR = Path(__file__).resolve().parent / "data" / "openlineage-spec"

_schema = json.loads((SPEC_DIR / "OpenLineage.json").read_text())
SPEC_VALIDATOR = jsonschema.Draft202012Validator(_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def with_db(url: str, dbname: str) -> str:
    """``url`` with its database name replaced by ``dbname``."""
    base, _, query = url.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{dbname}" + (f"?{query}" if query else "")


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


def fake_auth(app, tokens: dict) -> None:
    """Authenticate the contract and governance routes of ``app`` by a table of test tokens.

    ``tokens`` maps a bearer token to a Principal.  Each route dependency built by
    ``lineage.api.security.require`` is overridden with one that reads ``Authorization:
    Bearer TOKEN``: no or an unknown token is a 401, a principal without the route's role a
    403, as the real module answers.  The token format is this test's own, so these tests do not
    depend on how the real module issues or verifies tokens.
    """
    from lineage.api import contracts, governance

    guards = {
        contracts.as_requester: ("requester",),
        contracts.as_steward: ("steward",),
        governance.as_admin: ("admin",),
        governance.as_reader: ("admin", "auditor"),
    }
    def guard(roles: tuple[str, ...]):
        def authenticate(request: Request):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            who = tokens.get(token) if scheme.lower() == "bearer" else None
            if who is None:
                raise HTTPException(status_code=401, detail="no valid token")
            if not who.has(*roles):
                raise HTTPException(status_code=403, detail=f"needs one of the roles {', '.join(roles)}")
            return who

        return authenticate

    for dependency, roles in guards.items():
        app.dependency_overrides[dependency] = guard(roles)
