"""Hostile review of the single-event fast path (lineage/api/fast_ingest.py): with a credential
already in the authenticator's cache, it must never say 201 where the full route would refuse,
and a replay after a failed commit must neither lose nor double the event.

The dangerous requests are driven straight into the ASGI application (one ``http.request``
message holding the whole body, or chunks without ``Content-Length``), so what reaches the
middleware is exactly what the attack needs, not whatever a socket happened to coalesce; the
cache is warmed by a real request through the live server from the same peer address.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import httpx
import pytest

from lineage.samples import dataset, run_event
from tests_support import LiveServer

PEER = ("127.0.0.1", 40000)
LIMIT = 2048


@pytest.fixture
def small(settings, db):
    """A live server whose body limit is small enough to exceed with a valid event."""
    from lineage.api.app import create_app

    app = create_app(settings.model_copy(update={"max_body_bytes": LIMIT}), db=db)
    with LiveServer(app) as server:
        yield app, server


def _count(db, ns: str) -> int:
    with db.connection() as conn:
        return conn.execute("SELECT count(*) FROM raw_events WHERE job_namespace = %s", (ns,)).fetchone()[0]


def _event(ns: str, job: str = "j", pad: int = 0) -> bytes:
    ev = run_event("START", (ns, job), str(uuid.uuid4()))
    if pad:
        ev["run"]["facets"] = {"pad": {"_producer": "https://example.com/p", "_schemaURL": "https://example.com/s#/x", "v": "x" * pad}}
    return json.dumps(ev).encode()


def _warm(server, token: str, ns: str = "warm") -> None:
    """One ordinary request from 127.0.0.1: the credential is now in the cache for that peer."""
    r = httpx.post(f"{server.url}/api/v1/lineage", content=_event(ns, f"w{uuid.uuid4().hex[:6]}"),
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 201, r.text


def _asgi(app, messages: list[dict], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST /api/v1/lineage straight into ``app`` with exactly these receive messages."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v1/lineage", "raw_path": b"/api/v1/lineage", "root_path": "", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": PEER, "server": ("127.0.0.1", 80),
    }
    pending = list(messages)
    sent: list[dict] = []

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # nothing more will come

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}, body


def _one(body: bytes) -> list[dict]:
    return [{"type": "http.request", "body": body, "more_body": False}]


def _auth(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json", **extra}


def test_a_body_over_the_limit_in_one_message_is_413_even_with_a_cached_credential(small, tokens, db):
    app, server = small
    token = tokens("emit-big", "emitter")
    _warm(server, token)
    body = _event("too-big", pad=LIMIT)
    assert len(body) > LIMIT
    status, _, text = _asgi(app, _one(body), _auth(token, **{"content-length": str(len(body))}))
    assert status == 413, text
    status, _, text = _asgi(app, _one(body), _auth(token))  # no Content-Length at all: the same
    assert status == 413, text
    assert _count(db, "too-big") == 0


def test_a_chunked_body_over_the_limit_without_content_length_is_413(small, tokens, db):
    app, server = small
    token = tokens("emit-chunked", "emitter")
    _warm(server, token)
    body = _event("chunked-big", pad=LIMIT)
    chunks = [body[i:i + 512] for i in range(0, len(body), 512)]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    status, _, text = _asgi(app, messages, _auth(token))
    assert status == 413, text
    assert _count(db, "chunked-big") == 0


def test_a_credential_revoked_by_another_process_is_refused_once_the_cache_window_passes(small, tokens, db):
    """The fast path honours a revoked token for FRESH_SECONDS at most: the full path's bound."""
    from lineage.auth import authenticate
    from lineage.store import auth as store

    app, server = small
    token = tokens("emit-revoked", "emitter")
    _warm(server, token)
    with db.connection() as conn:  # as another process would: no invalidate() in this one
        assert store.revoke_token(conn, "emit-revoked", "tests") is not None
    verified = app.state.authenticator._verified
    for key, (principal, at, expires, gen) in list(verified.items()):  # the window has just passed
        verified[key] = (principal, at - authenticate.FRESH_SECONDS, expires, gen)
    status, _, text = _asgi(app, _one(_event("revoked")), _auth(token))
    assert status == 401, text
    assert _count(db, "revoked") == 0


def test_a_scoped_token_cannot_send_outside_its_namespaces_through_the_fast_path(small, tokens, db):
    app, server = small
    token = tokens("emit-scoped", "emitter", namespaces=["mine"])
    _warm(server, token, ns="mine")
    status, _, text = _asgi(app, _one(_event("theirs")), _auth(token))
    assert status == 403, text
    ds = {"eventTime": "2026-11-03T00:00:00Z", "producer": "https://example.com/p",
          "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
          "dataset": dataset("mine", "d", [("a", "int")])}
    status, _, text = _asgi(app, _one(json.dumps(ds).encode()), _auth(token))
    assert status == 403, text
    assert _count(db, "theirs") == 0
    status, _, _ = _asgi(app, _one(_event("mine")), _auth(token))
    assert status == 201


def test_a_viewer_token_in_the_cache_cannot_emit(small, tokens, db):
    app, server = small
    token = tokens("only-view", "viewer")
    r = httpx.get(f"{server.url}/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200  # the viewer's credential is now cached for this peer
    status, _, text = _asgi(app, _one(_event("viewer-emit")), _auth(token))
    assert status == 403, text
    assert _count(db, "viewer-emit") == 0


def test_proxy_identity_from_an_untrusted_peer_or_sent_twice_is_never_fast_accepted(settings, db):
    from lineage.api.app import create_app
    from lineage.auth import grants

    with db.connection() as conn:
        grants.grant(conn, "alice@example.com", "emitter", "tests")
    app = create_app(settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]}), db=db)
    with LiveServer(app) as server:
        r = httpx.post(f"{server.url}/api/v1/lineage", content=_event("proxied"), timeout=30,
                       headers={"X-Forwarded-User": "alice@example.com", "Content-Type": "application/json"})
        assert r.status_code == 201, r.text  # alice, through the trusted proxy, is cached for 127.0.0.1
        hdr = {"content-type": "application/json", "x-forwarded-user": "alice@example.com"}
        scope_headers = [(b"content-type", b"application/json"), (b"x-forwarded-user", b"alice@example.com"),
                         (b"x-forwarded-user", b"alice@example.com")]
        status = _asgi_raw(app, scope_headers, _event("twice"))
        assert status == 401  # sent twice by a trusted peer: refused, as the route does
        untrusted = ("10.9.9.9", 5000)
        status = _asgi_raw(app, [(k.encode(), v.encode()) for k, v in hdr.items()], _event("untrusted"), client=untrusted)
        assert status == 401
    assert _count(db, "twice") == 0 and _count(db, "untrusted") == 0


def _asgi_raw(app, headers: list[tuple[bytes, bytes]], body: bytes, client=PEER) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/lineage", "raw_path": b"/api/v1/lineage", "root_path": "", "query_string": b"",
             "headers": headers, "client": client, "server": ("127.0.0.1", 80)}
    sent: list[dict] = []
    done = [False]

    async def receive():
        if not done[0]:
            done[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m for m in sent if m["type"] == "http.response.start")["status"]


@pytest.mark.parametrize("encoding, body, status", [
    ("gzip", "gzip-ok", 201),
    ("deflate", "plain", 400),
    ("br", "plain", 400),
    ("gzip", "plain", 400),  # declared gzip, sent plain: the route's 400, not a fast 201
])
def test_content_encodings_get_the_routes_answer(small, tokens, db, encoding, body, status):
    app, server = small
    token = tokens(f"emit-enc-{encoding}-{body}", "emitter")
    _warm(server, token)
    ns = f"enc-{encoding}-{body}"
    raw = _event(ns)
    data = gzip.compress(raw) if body == "gzip-ok" else raw
    got, _, text = _asgi(app, _one(data), _auth(token, **{"content-encoding": encoding}))
    assert got == status, text
    assert _count(db, ns) == (1 if status == 201 else 0)


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"   "])
def test_an_empty_body_or_a_json_array_is_the_routes_400(small, tokens, body):
    app, server = small
    token = tokens("emit-empty", "emitter")
    _warm(server, token)
    status, _, text = _asgi(app, _one(body), _auth(token))
    assert status == 400, text
    assert json.loads(text)["errors"][0]["field"]


def test_an_array_holding_one_valid_event_is_not_stored_as_that_event(small, tokens, db):
    app, server = small
    token = tokens("emit-array", "emitter")
    _warm(server, token)
    status, _, text = _asgi(app, _one(b"[" + _event("in-array") + b"]"), _auth(token))
    assert status == 400, text
    assert _count(db, "in-array") == 0


def test_a_client_gone_mid_body_stores_nothing_and_is_no_500(small, tokens, db):
    app, server = small
    token = tokens("emit-gone", "emitter")
    _warm(server, token)
    body = _event("gone")
    messages = [{"type": "http.request", "body": body[:40], "more_body": True}, {"type": "http.disconnect"}]
    status, _, _ = _asgi(app, messages, _auth(token))
    assert status != 201 and status < 500
    assert _count(db, "gone") == 0


def test_the_fast_201_carries_the_same_headers_as_the_routes(small, tokens):
    app, server = small
    token = tokens("emit-headers", "emitter")
    cold = httpx.post(f"{server.url}/api/v1/lineage", content=_event("hdr"), timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    warm = httpx.post(f"{server.url}/api/v1/lineage", content=_event("hdr"), timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert cold.status_code == warm.status_code == 201
    assert cold.content == warm.content == b""
    strip = lambda h: {k: v for k, v in h.items() if k not in ("date",)}  # noqa: E731
    assert strip(cold.headers) == strip(warm.headers)


def test_a_failed_group_commit_is_replayed_through_the_route_and_stored_once(small, tokens, db):
    """The first commit fails (store unreachable): the route submits again; one row."""
    from concurrent.futures import Future

    from lineage.errors import StoreUnavailable

    app, server = small
    token = tokens("emit-replay", "emitter")
    _warm(server, token)
    real = app.state.committer.submit
    calls = []

    def flaky(event):
        calls.append(event)
        if len(calls) == 1:
            fut: Future = Future()
            fut.set_exception(StoreUnavailable("the lineage store is unreachable (tests)"))
            return fut
        return real(event)

    app.state.committer.submit = flaky
    try:
        status, _, text = _asgi(app, _one(_event("replayed")), _auth(token))
    finally:
        app.state.committer.submit = real
    assert status == 201, text
    assert len(calls) == 2 and _count(db, "replayed") == 1


def test_a_commit_that_keeps_failing_is_a_503_and_stores_nothing(small, tokens, db):
    from concurrent.futures import Future

    from lineage.errors import StoreUnavailable

    app, server = small
    token = tokens("emit-down", "emitter")
    _warm(server, token)
    real = app.state.committer.submit

    def down(event):
        fut: Future = Future()
        fut.set_exception(StoreUnavailable("the lineage store is unreachable (tests)"))
        return fut

    app.state.committer.submit = down
    try:
        status, headers, text = _asgi(app, _one(_event("down")), _auth(token))
    finally:
        app.state.committer.submit = real
    assert status == 503 and headers.get("retry-after") == "1", text
    assert _count(db, "down") == 0


def test_a_request_cancelled_while_its_commit_is_pending_is_not_replayed(small, tokens):
    """Cancelling the request (the server shutting it down) must end it, not run the full
    route and submit the event a second time behind the caller's back."""
    from concurrent.futures import Future

    app, server = small
    token = tokens("emit-cancelled", "emitter")
    _warm(server, token)
    real = app.state.committer.submit
    calls: list = []

    def never(event):
        calls.append(event)
        fut: Future = Future()  # the first commit does not come back
        if len(calls) > 1:  # a replay (the bug) is answered at once, so the test fails rather than hangs
            from lineage.errors import StoreUnavailable

            fut.set_exception(StoreUnavailable("tests"))
        return fut

    body = _event("cancelled")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/lineage", "raw_path": b"/api/v1/lineage", "root_path": "", "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in _auth(token).items()], "client": PEER,
             "server": ("127.0.0.1", 80)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    async def attack():
        task = asyncio.ensure_future(app(scope, receive, send))
        while not calls:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    app.state.committer.submit = never
    try:
        asyncio.run(attack())
    finally:
        app.state.committer.submit = real
    assert len(calls) == 1 and not sent


def test_a_declared_length_over_the_limit_is_413_whatever_arrives(small, tokens, db):
    """A server that does not hold the body to Content-Length (or a proxy that rewrites it)
    must not make the two paths disagree: the route refuses on the declared length alone."""
    app, server = small
    token = tokens("emit-declared", "emitter")
    _warm(server, token)
    status, _, text = _asgi(app, _one(_event("declared")), _auth(token, **{"content-length": str(LIMIT + 1)}))
    assert status == 413, text
    assert _count(db, "declared") == 0
