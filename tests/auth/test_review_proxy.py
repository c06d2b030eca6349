"""Hostile review of the trusted-proxy identity: who the peer is must be the TCP peer.

uvicorn rewrites the ASGI client address from ``X-Forwarded-For`` when the connection comes
from ``--forwarded-allow-ips`` (127.0.0.1 by default).  Anyone on the machine (an Airflow
worker holding only an emitter token, say) could then claim to be a trusted proxy elsewhere
and name any person in the identity header.  ``lineage serve`` runs uvicorn with
:data:`lineage.api.security.SERVE_OPTIONS`, which turn that rewriting off.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from lineage.api.security import SERVE_OPTIONS
from lineage.auth import grants
from tests_support import _free_port


class _Served:
    """The app served with the options `lineage serve` uses."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **SERVE_OPTIONS))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _served(settings, db, trusted):
    from lineage.api.app import create_app

    return _Served(create_app(settings.model_copy(update={"trusted_proxies": trusted}), db=db))


@pytest.mark.parametrize("forwarded", [
    {"X-Forwarded-For": "10.0.0.5"},
    {"X-Forwarded-For": "::ffff:10.0.0.5"},
    {"X-Forwarded-For": "203.0.113.9, 10.0.0.5"},
    {"Forwarded": "for=10.0.0.5"},
])
def test_regression_a_spoofed_forwarded_for_does_not_make_a_local_client_the_proxy(settings, db, forwarded):
    with db.connection() as conn:
        grants.grant(conn, "dpo@example.com", "steward", "admin")
    with _served(settings, db, ["10.0.0.5"]) as server:
        r = httpx.get(f"{server.url}/api/v1/auth/whoami", headers={**forwarded, "X-Forwarded-User": "dpo@example.com"})
        assert r.status_code == 401, r.text


def test_the_proxy_on_the_same_host_still_vouches_with_forwarded_for_set(settings, db):
    """A local proxy appends the real client to X-Forwarded-For; the peer is still the proxy."""
    with db.connection() as conn:
        grants.grant(conn, "bob@example.com", "auditor", "admin")
    with _served(settings, db, ["127.0.0.1"]) as server:
        r = httpx.get(f"{server.url}/api/v1/auth/whoami", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-User": "bob@example.com"})
        assert r.status_code == 200 and r.json()["name"] == "bob@example.com", r.text


def test_regression_a_second_identity_header_is_refused(settings, db):
    """A proxy that appends its header instead of replacing the client's would be believed for
    whichever value comes first; two values are refused instead."""
    with db.connection() as conn:
        grants.grant(conn, "bob@example.com", "auditor", "admin")
    with _served(settings, db, ["127.0.0.1"]) as server:
        headers = [("X-Forwarded-User", "dpo@example.com"), ("X-Forwarded-User", "bob@example.com")]
        r = httpx.get(f"{server.url}/api/v1/auth/whoami", headers=headers)
        assert r.status_code == 401 and "more than once" in r.json()["message"], r.text


def test_regression_an_admin_cannot_mint_themselves_a_token_with_more_roles(live_server, tokens):
    """An admin-only principal minted a steward token acting as itself (or its +alias)."""
    admin = tokens("only-admin", "admin", principal="it-admin@example.com")
    h = {"Authorization": f"Bearer {admin}"}
    for who in ("it-admin@example.com", "IT-Admin+x@example.com"):
        r = httpx.post(f"{live_server.url}/api/v1/auth/tokens", headers=h, json={"name": f"self-{len(who)}", "principal": who, "roles": ["steward"]})
        assert r.status_code == 403 and "themselves" in r.json()["message"], r.text
        r = httpx.post(f"{live_server.url}/api/v1/auth/grants", headers=h, json={"principal": who, "role": "steward"})
        assert r.status_code == 403, r.text
    r = httpx.post(f"{live_server.url}/api/v1/auth/tokens", headers=h, json={"name": "rotated", "principal": "it-admin@example.com", "roles": ["admin"]})
    assert r.status_code == 201, r.text  # the roles it holds already: a rotation
    r = httpx.post(f"{live_server.url}/api/v1/auth/tokens", headers=h, json={"name": "airflow", "principal": "airflow@example.com", "roles": ["emitter"]})
    assert r.status_code == 201, r.text
