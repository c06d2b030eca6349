"""Every route × every role and every kind of bad credential: 401 and 403 exactly where they belong.

The table below is the authorisation decision for each route, written out here independently
of :mod:`lineage.api.security`, and the first test enumerates ``app.routes``: a route added
without a row here fails, so no route can ship without a decision.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from lineage.auth import ROLES
from lineage.samples import dataset, run_event

PUBLIC = "public"
ANY = "any authenticated"
READ = {"viewer", "auditor", "steward", "requester"}

# (method, path) -> the roles that may call it (PUBLIC: no credential needed; ANY: any valid one).
DECISIONS: dict[tuple[str, str], object] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/api/v1/health"): PUBLIC,
    # Probes and metrics: kubelets and scrapers hold no credential (metrics: LINEAGE_METRICS_PUBLIC,
    # default true; labels hold fixed values only, see tests/test_metrics.py).
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/v1/auth/whoami"): ANY,
    ("POST", "/api/v1/auth/tokens"): {"admin"},
    ("GET", "/api/v1/auth/tokens"): {"admin"},
    ("POST", "/api/v1/auth/tokens/{name}/revoke"): {"admin"},
    ("POST", "/api/v1/auth/grants"): {"admin"},
    ("POST", "/api/v1/auth/grants/revoke"): {"admin"},
    ("GET", "/api/v1/auth/grants"): {"admin"},
    ("POST", "/api/v1/lineage"): {"emitter"},
    ("POST", "/api/v1/lineage/batch"): {"emitter"},
    ("GET", "/api/v1/lineage"): READ,
    ("GET", "/api/v1/lineage/upstream"): READ,
    ("GET", "/api/v1/lineage/downstream"): READ,
    ("GET", "/api/v1/namespaces"): READ,
    ("GET", "/api/v1/namespaces/{namespace}"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/datasets"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{dataset}"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{dataset}/versions"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{dataset}/versions/{version}"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/jobs"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}"): READ,
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}/runs"): READ,
    ("GET", "/api/v1/runs/{id}"): READ,
    ("GET", "/api/v1/jobs/runs/{id}"): READ,
    ("GET", "/api/v1/events"): READ,
    ("GET", "/api/v1/events/lineage"): READ,
    ("GET", "/api/v1/jobs"): READ,
    ("GET", "/api/v1/tags"): READ,
    ("GET", "/api/v1/sources"): READ,
    ("GET", "/api/v1/sources/{source}"): READ,
    ("GET", "/api/v1/jobs/runs/{id}/facets"): READ,
    ("GET", "/api/v1/stats/lineage-events"): READ,
    ("GET", "/api/v1/stats/{what}"): READ,
    ("GET", "/api/v1/column-lineage"): READ,
    ("GET", "/api/v1/search"): READ,
    ("GET", "/api/v2beta/search/jobs"): READ,
    ("GET", "/api/v2beta/search/datasets"): READ,
    ("PUT", "/api/v1/tags/{tag}"): {"steward"},
    ("POST", "/api/v1/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"): {"steward"},
    ("PUT", "/api/v1/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"): {"steward"},
    ("DELETE", "/api/v1/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"): {"steward"},
    ("POST", "/api/v1/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"): {"steward"},
    ("PUT", "/api/v1/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"): {"steward"},
    ("DELETE", "/api/v1/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"): {"steward"},
    ("POST", "/api/v1/namespaces/{namespace}/jobs/{job}/tags/{tag}"): {"steward"},
    ("PUT", "/api/v1/namespaces/{namespace}/jobs/{job}/tags/{tag}"): {"steward"},
    ("DELETE", "/api/v1/namespaces/{namespace}/jobs/{job}/tags/{tag}"): {"steward"},
    ("DELETE", "/api/v1/namespaces/{namespace}/datasets/{dataset}"): {"steward"},
    ("DELETE", "/api/v1/namespaces/{namespace}/jobs/{job}"): {"steward"},
    ("POST", "/api/v1/contracts"): {"requester"},
    ("GET", "/api/v1/contracts"): READ,
    ("GET", "/api/v1/contracts/{contract_id}"): READ,
    ("GET", "/api/v1/contracts/{contract_id}/suites"): READ,
    ("POST", "/api/v1/contracts/{contract_id}/approve"): {"steward"},
    ("POST", "/api/v1/contracts/{contract_id}/revoke"): {"steward"},
    ("POST", "/api/v1/contracts/expire"): {"steward"},
    ("POST", "/api/v1/gate/check"): {"emitter", "steward"},
    ("POST", "/api/v1/gate/complete"): {"emitter", "steward"},
    ("GET", "/api/v1/gate/decisions"): {"auditor", "steward"},
    ("POST", "/api/v1/governance/ties"): {"admin"},
    ("GET", "/api/v1/governance/ties"): {"admin", "auditor"},
    ("POST", "/api/v1/governance/ties/{tie_id}/revoke"): {"admin"},
    ("POST", "/api/v1/governance/owners"): {"admin"},
    ("GET", "/api/v1/governance/owners"): {"admin", "auditor"},
    ("POST", "/api/v1/governance/owners/{owner_id}/revoke"): {"admin"},
    # The dashboard: its page (and /ui/static assets, a mount not listed here) hold no data and
    # need no credential; every datum comes from routes that check the API's own credentials.
    ("GET", "/"): PUBLIC,
    ("GET", "/ui/"): PUBLIC,
    ("GET", "/api/v1/dashboard/graph"): READ,
    ("GET", "/api/v1/dashboard/dataset"): READ,
    ("GET", "/api/v1/dashboard/runs/{id}"): READ,
    ("GET", "/api/v1/dashboard/search"): READ,
    ("GET", "/api/v1/lineage/impact"): READ,
    ("POST", "/api/v1/erasures"): {"steward"},
    ("GET", "/api/v1/erasures"): {"auditor", "steward", "emitter"},
    ("GET", "/api/v1/erasures/{erasure_id}"): {"auditor", "steward", "emitter"},
    ("POST", "/api/v1/erasures/{erasure_id}/items/{item_id}/deletions"): {"emitter", "steward"},
    ("GET", "/api/v1/audit/status"): {"auditor", "admin"},
}

_PARAMS = {"name": "no-such-token", "namespace": "ns", "dataset": "ds", "job": "j", "version": str(uuid.uuid4()),
           "id": str(uuid.uuid4()), "contract_id": "no-such-contract",
           "tie_id": "999999", "owner_id": "999999", "erasure_id": "999999", "item_id": "999999",
           "source": "default", "what": "jobs", "tag": "PII", "field": "f"}


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _PARAMS[m.group(1)], path)


def _routes(app) -> set[tuple[str, str]]:
    return {(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or ()) if m != "HEAD"}


def test_every_route_has_a_decision(app):
    routes = _routes(app)
    assert routes - DECISIONS.keys() == set(), "routes without an authorisation decision in this table"
    assert DECISIONS.keys() - routes == set(), "decisions for routes that no longer exist"


def _call(c: httpx.Client, method: str, path: str, headers: dict) -> httpx.Response:
    body = None
    if path == "/api/v1/lineage":
        body = run_event("START", ("ns", "j"), str(uuid.uuid4()))
    elif path == "/api/v1/lineage/batch":
        body = [run_event("START", ("ns", "j"), str(uuid.uuid4()))]
    kwargs = {"json": body} if method == "POST" and body is not None else {"content": b"{}"} if method == "POST" else {}
    params = {"nodeId": "dataset:ns:ds"} if path.startswith("/api/v1/lineage") and method == "GET" else None
    if method == "GET" and path in ("/api/v1/column-lineage", "/api/v1/search", "/api/v2beta/search/jobs",
                                    "/api/v2beta/search/datasets", "/api/v1/jobs/runs/{id}/facets"):
        params = {"nodeId": "dataset:ns:ds", "q": "x", "type": "run"}
    return c.request(method, _url(path), headers=headers, params=params, **kwargs)


@pytest.fixture
def credentials(tokens, db, role_urls):
    """Name -> Authorization headers: one token per role, and every kind of bad credential."""
    creds = {role: {"Authorization": f"Bearer {tokens(f'only-{role}', role)}"} for role in ROLES}
    expired = tokens("expired", *ROLES, expires_at=datetime.now(timezone.utc) + timedelta(seconds=1))
    revoked = tokens("revoked", *ROLES)
    right_id = tokens("victim", *ROLES)
    from lineage.auth import tokens as api_tokens

    with db.connection() as conn:
        api_tokens.revoke(conn, "revoked", "tests")
    # Let time pass for the `expired` token: only the owner, with the revoke-only trigger off
    # for this one statement, can move an expiry (the application role never can).
    import psycopg

    with psycopg.connect(role_urls["owner"]) as conn:
        conn.execute("ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_revoke_only")
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'expired'")
        conn.execute("ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_revoke_only")
    token_id = right_id.split("_")[1]
    bad = {
        "no token": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "malformed": {"Authorization": "Bearer lin_not-a-token"},
        "right id, wrong secret": {"Authorization": f"Bearer lin_{token_id}_{'A' * 43}"},
        "not bearer": {"Authorization": f"Basic {right_id}"},
        "empty bearer": {"Authorization": "Bearer"},
    }
    return creds, bad


@pytest.mark.parametrize("method, path", sorted(DECISIONS))
def test_route_against_every_role_and_bad_credential(anon_client, credentials, method, path):
    creds, bad = credentials
    allowed = DECISIONS[(method, path)]
    for label, headers in bad.items():
        r = _call(anon_client, method, path, headers)
        if allowed == PUBLIC:
            assert r.status_code not in (401, 403), (label, r.status_code, r.text)
        else:
            assert r.status_code == 401, (label, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer"), label
    for role in ROLES:
        r = _call(anon_client, method, path, creds[role])
        if allowed in (PUBLIC, ANY) or role in allowed:  # type: ignore[operator]
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            needed = sorted(allowed)  # type: ignore[arg-type]
            assert all(f"`{n}`" in r.json()["message"] for n in needed), r.text


def test_openapi_declares_bearer_on_every_protected_operation(anon_client):
    doc = anon_client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = DECISIONS.get((method.upper(), path)) == PUBLIC
            assert ("security" in op) != public, (method, path)


# -- namespace scope: the laundering event -------------------------------------------------------


@pytest.fixture
def scoped(tokens):
    return {"Authorization": f"Bearer {tokens('airflow-ml', 'emitter', namespaces=['ml-pipeline'])}"}


def _stored(db) -> list[tuple[str, str]]:
    with db.connection() as conn:
        return [tuple(r) for r in conn.execute("SELECT job_namespace, job_name FROM raw_events ORDER BY id")]


def test_a_scoped_emitter_sends_for_its_namespace(anon_client, scoped, db):
    r = anon_client.post("/api/v1/lineage", json=run_event("START", ("ml-pipeline", "train"), str(uuid.uuid4())), headers=scoped)
    assert r.status_code == 201, r.text
    assert _stored(db) == [("ml-pipeline", "train")]


def test_a_forged_event_for_another_namespace_is_refused_naming_the_field(anon_client, scoped, db):
    # The laundering attempt: a token for the ML pipeline claims a partner's job wrote a dataset.
    forged = run_event("COMPLETE", ("partner-drops", "ingest"), str(uuid.uuid4()), outputs=[dataset("curated", "clean")])
    r = anon_client.post("/api/v1/lineage", json=forged, headers=scoped)
    assert r.status_code == 403
    assert r.json()["errors"] == [{"field": "$.job.namespace", "reason": r.json()["errors"][0]["reason"]}]
    assert "`partner-drops` is outside this token's scope (`ml-pipeline`)" in r.json()["message"]
    assert _stored(db) == []


def test_a_scoped_batch_stores_what_is_in_scope_and_rejects_the_rest_by_index(anon_client, scoped, db):
    batch = [
        run_event("START", ("ml-pipeline", "a"), str(uuid.uuid4())),
        run_event("START", ("partner-drops", "forged"), str(uuid.uuid4())),
        {"eventTime": "2026-11-26T10:00:00Z", "producer": "https://example.com/p",
         "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
         "dataset": {"namespace": "curated", "name": "clean"}},
        run_event("START", ("ml-pipeline", "b"), str(uuid.uuid4())),
        "not even an event",
    ]
    r = anon_client.post("/api/v1/lineage/batch", json=batch, headers=scoped)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["stored"] == 2
    rejected = {x["index"]: x["errors"][0] for x in report["rejected"]}
    assert sorted(rejected) == [1, 2, 4]
    assert rejected[1]["field"] == rejected[2]["field"] == "$.job.namespace"
    assert "DatasetEvent" in rejected[2]["reason"]
    assert sorted(_stored(db)) == [("ml-pipeline", "a"), ("ml-pipeline", "b")]  # a batch's storage order is not its order


def test_a_dataset_event_from_a_scoped_token_is_refused_and_from_an_unscoped_one_stored(anon_client, scoped, tokens, db):
    event = {"eventTime": "2026-11-26T10:00:00Z", "producer": "https://example.com/p",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
             "dataset": {"namespace": "curated", "name": "clean"}}
    r = anon_client.post("/api/v1/lineage", json=event, headers=scoped)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "$.job.namespace"
    unscoped = {"Authorization": f"Bearer {tokens('any-ns', 'emitter')}"}
    assert anon_client.post("/api/v1/lineage", json=event, headers=unscoped).status_code == 201


def test_authentication_comes_before_body_validation(anon_client):
    """A stranger learns nothing about what a valid body looks like: 401, not 400."""
    for path in ("/api/v1/lineage", "/api/v1/contracts", "/api/v1/gate/check", "/api/v1/auth/tokens"):
        assert anon_client.post(path, content=b"{broken").status_code == 401


def test_a_valid_token_for_a_principal_without_any_role_is_still_authenticated(anon_client, tokens):
    who = anon_client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {tokens('ro', 'viewer', principal='Ro@Example.COM')}"})
    assert who.json() == {"name": "ro@example.com", "credential": "token:ro", "roles": ["viewer"], "namespaces": None}
