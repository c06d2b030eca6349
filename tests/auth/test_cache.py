"""The positive cache of verified credentials never outlives a revocation made through the server.

``Authenticator`` remembers a verified credential for ``FRESH_SECONDS`` (2 s) to spare a store
round trip per request.  What must hold:

* a token revoked through the API is refused on the very next request to the same server,
  though it was verified (and cached) a moment before;
* a role grant revoked through the API takes effect on the very next request (proxy identity);
* a revocation made *around* the process (straight in the store) is honoured within the
  documented bound, ``FRESH_SECONDS``, and not later — checked on a controlled clock, not by
  sleeping;
* a cached credential is never used past its own expiry, and only the exact credential that
  was verified is ever answered from the cache.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from lineage.auth import authenticate as authn
from lineage.auth import tokens as api_tokens
from lineage.auth.errors import Unauthenticated
from lineage.store import auth as store
from tests_support import LiveServer

READ = "/api/v1/contracts"


def _get(url: str, token: str, **headers) -> int:
    return httpx.get(url + READ, headers={"Authorization": f"Bearer {token}", **headers}, timeout=10).status_code


def test_a_token_revoked_through_the_api_is_refused_on_the_very_next_request(live_server, tokens):
    admin, reader = tokens("admin", "admin"), tokens("reader", "viewer")
    for _ in range(3):  # verified and cached
        assert _get(live_server.url, reader) == 200
    r = httpx.post(f"{live_server.url}/api/v1/auth/tokens/reader/revoke", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert r.status_code == 200, r.text
    refused = httpx.get(live_server.url + READ, headers={"Authorization": f"Bearer {reader}"}, timeout=10)
    assert refused.status_code == 401 and "was revoked" in refused.json()["message"]


def test_a_grant_revoked_through_the_api_applies_on_the_very_next_request(settings, db, tokens):
    from lineage.api.app import create_app
    from lineage.auth import grants

    proxied = settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    admin = tokens("admin", "admin")
    with db.connection() as conn:
        grants.grant(conn, "alice@example.com", "viewer", "tests")
    with LiveServer(create_app(proxied, db=db)) as server:
        person = {"X-Forwarded-User": "alice@example.com"}
        for _ in range(3):
            assert httpx.get(server.url + READ, headers=person, timeout=10).status_code == 200
        r = httpx.post(f"{server.url}/api/v1/auth/grants/revoke", json={"principal": "alice@example.com", "role": "viewer"},
                       headers={"Authorization": f"Bearer {admin}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert httpx.get(server.url + READ, headers=person, timeout=10).status_code == 403


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(authn, "time", fake)
    return fake


def _auth(settings, db, token: str):
    return authn.Authenticator(settings).authenticate, (db.connection, f"Bearer {token}", None, "127.0.0.1")


def test_a_revocation_made_around_this_process_is_honoured_within_fresh_seconds(settings, db, tokens, clock):
    token = tokens("airflow", "emitter")
    authenticate, args = _auth(settings, db, token)
    assert authenticate(*args).name == "airflow@tests.example"
    with db.connection() as conn:  # another process revokes it: this one is not told
        assert store.revoke_token(conn, "airflow", "elsewhere") is not None
    clock.now += authn.FRESH_SECONDS - 0.01
    assert authenticate(*args).name == "airflow@tests.example", "within the bound the cached verification stands"
    clock.now += 0.01
    with pytest.raises(Unauthenticated, match="was revoked"):
        authenticate(*args)


def test_revoking_through_this_process_empties_the_cache_at_once(settings, db, tokens, clock):
    token = tokens("airflow", "emitter")
    authenticate, args = _auth(settings, db, token)
    authenticate(*args)
    with db.connection() as conn:
        api_tokens.revoke(conn, "airflow", "admin@tests.example")
    with pytest.raises(Unauthenticated, match="was revoked"):
        authenticate(*args)  # same instant: no time has passed


def test_a_cached_credential_is_not_used_past_its_expiry(settings, db, tokens, clock, monkeypatch):
    soon = datetime.now(timezone.utc) + timedelta(minutes=5)
    token = tokens("short", "emitter", expires_at=soon)
    authenticate, args = _auth(settings, db, token)
    authenticate(*args)
    monkeypatch.setattr(authn, "_now", lambda: soon + timedelta(seconds=1))
    monkeypatch.setattr(api_tokens, "datetime", _Later(soon + timedelta(seconds=1)))
    with pytest.raises(Unauthenticated, match="expired"):
        authenticate(*args)


class _Later:
    """Stands in for ``datetime`` in the token module: ``now()`` is past the expiry."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self, tz=None):
        return self.at


def test_only_the_exact_credential_is_answered_from_the_cache(settings, db, tokens, clock):
    token = tokens("airflow", "emitter")
    authenticate, args = _auth(settings, db, token)
    authenticate(*args)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")  # same id, one character of secret changed
    with pytest.raises(Unauthenticated, match="not valid"):
        authenticate(db.connection, f"Bearer {forged}", None, "127.0.0.1")
    with pytest.raises(Unauthenticated):
        authenticate(db.connection, None, None, "127.0.0.1")


def test_a_credential_the_store_refused_is_not_revived_by_an_outage(settings, db, tokens, clock):
    """Revoked elsewhere, refused once the cache went stale, then the store goes away: the
    outage fallback must not answer with the verification from before the revocation."""
    from lineage.errors import StoreUnavailable

    token = tokens("airflow", "emitter")
    authenticate = authn.Authenticator(settings).authenticate
    args = (f"Bearer {token}", None, "127.0.0.1")
    authenticate(db.connection, *args)
    with db.connection() as conn:
        store.revoke_token(conn, "airflow", "elsewhere")
    clock.now += authn.FRESH_SECONDS
    with pytest.raises(Unauthenticated, match="was revoked"):
        authenticate(db.connection, *args)

    def unreachable():
        raise StoreUnavailable("the lineage store is unreachable (test)")

    with pytest.raises(StoreUnavailable):
        authenticate(unreachable, *args)
