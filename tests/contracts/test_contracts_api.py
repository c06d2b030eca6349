"""``/api/v1/contracts`` and ``/api/v1/gate`` over real HTTP against the real store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests_support import real_tokens, principal

ACME = (Path(__file__).resolve().parents[2] / "contracts" / "acme-stock-photos.yaml").read_text()

# Test tokens (see tests_support.real_tokens): the routes take the actor from the token only.
TOKENS = {
    "requester": principal("data-requests@example.com", "requester", credential="token:requests"),
    "ml-lead": principal("ml-lead@example.com", "steward", credential="token:ml-lead"),
    "dpo": principal("dpo@example.com", "steward", credential="token:dpo"),
}
AUTH = {name: {"authorization": f"Bearer {name}"} for name in TOKENS}


@pytest.fixture(autouse=True)
def _auth(app):
    real_tokens(app, TOKENS)


def test_contract_lifecycle_over_http(client, anon_client, db):
    from lineage.events import parse_event
    from example_pipeline.sample import ml_pipeline_sample
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:  # the gate refuses inputs of unknown provenance: record the drops' lineage first
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
    r = anon_client.post("/api/v1/contracts", content=ACME, headers={"content-type": "application/yaml"})
    assert r.status_code == 401  # no token, no write
    r = client.post("/api/v1/contracts", content=ACME, headers={"content-type": "application/yaml", **AUTH["dpo"]})
    assert r.status_code == 403  # a steward is not a requester
    r = client.post("/api/v1/contracts", content=ACME, headers={"content-type": "application/yaml", **AUTH["requester"]})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "proposed" and r.json()["version"] == 1
    assert r.json()["registeredBy"] == "data-requests@example.com" and r.json()["registeredWith"] == "token:requests"
    assert client.post("/api/v1/contracts/acme-stock-photos/approve", headers=AUTH["requester"]).status_code == 403
    r = client.post("/api/v1/contracts/acme-stock-photos/approve", headers=AUTH["ml-lead"])
    assert r.status_code == 403 and "independent steward" in r.json()["message"]
    r = client.post("/api/v1/contracts/acme-stock-photos/approve", json={"reason": "licence checked"}, headers=AUTH["dpo"])
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert (r.json()["changedBy"], r.json()["changedWith"]) == ("dpo@example.com", "token:dpo")
    body = {"job": "ml:train", "purpose": "train_ai_system", "inputs": ["dataset:partner-drops:acme/photos"]}
    r = client.post("/api/v1/gate/check", json=body)
    assert r.status_code == 200 and r.json()["allowed"] is True
    r = client.post("/api/v1/contracts/acme-stock-photos/revoke", json={}, headers=AUTH["dpo"])
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = client.post("/api/v1/contracts/acme-stock-photos/revoke", json={"reason": "withdrawn"}, headers=AUTH["dpo"])
    assert r.json()["status"] == "revoked"
    r = client.post("/api/v1/gate/check", json=body)
    assert r.json()["allowed"] is False and r.json()["reasons"][0]["code"] == "revoked"
    assert "sourceContract" in r.json()["facets"]["dataset:partner-drops:acme/photos"]["facets"]
    history = client.get("/api/v1/contracts/acme-stock-photos").json()["history"]
    assert [(h["action"], h["actor"], h["credential"]) for h in history] == [
        ("register", "data-requests@example.com", "token:requests"),
        ("approve", "dpo@example.com", "token:dpo"),
        ("revoke", "dpo@example.com", "token:dpo"),
    ]
    assert client.get("/api/v1/contracts").json()["totalCount"] == 1
    assert client.get("/api/v1/contracts/acme-stock-photos/suites").json()["suites"][0]["name"] == "acme-stock-photos.photos"
    decisions = client.get("/api/v1/gate/decisions").json()["decisions"]
    assert len(decisions) == 2
    # One timestamp format across the API (the read API's): UTC, microseconds, `Z`.
    stamps = [h["recorded_at"] for h in history] + [d["decidedAt"] for d in decisions] + [r.json()["decidedAt"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t) for t in stamps), stamps


def test_bad_contract_is_a_400_naming_the_line(client):
    r = client.post("/api/v1/contracts", headers=AUTH["requester"], content=ACME.replace("legalBasis\n    value: contract", "legalBasis\n    value: because"))
    assert r.status_code == 400
    assert "request body:" in r.json()["message"] and "legal basis" in r.json()["message"]
    assert client.get("/api/v1/contracts").json()["totalCount"] == 0
    assert client.get("/api/v1/contracts/nope").status_code == 404


LOVE = (Path(__file__).resolve().parents[2] / "contracts" / "lovematch-photos.yaml").read_text()
PROHIBITED = "    value: [train_ai_system, third_party_sharing]\n"


def _bomb() -> str:
    """A billion-laughs document of about 3.6 KB, like the one that stalled the server."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    return text + "#" * (3600 - len(text)) + "\n"


def test_duplicate_key_erasing_a_prohibition_is_refused_and_nothing_registered(client):
    text = LOVE.replace(PROHIBITED, PROHIBITED + "    value: [third_party_sharing]\n", 1)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s == "    value: [third_party_sharing]")
    r = client.post("/api/v1/contracts", content=text, headers={"x-contract-file": "lovematch.yaml", **AUTH["requester"]})
    assert r.status_code == 400
    assert r.json()["message"].startswith(f"lovematch.yaml:{line}: customProperties[7].value: duplicate key `value`")
    assert client.get("/api/v1/contracts").json()["totalCount"] == 0


def test_alias_bomb_is_a_400_naming_the_line(client):
    bomb = _bomb()
    assert 3500 < len(bomb) < 3700
    r = client.post("/api/v1/contracts", content=bomb, headers=AUTH["requester"])
    assert r.status_code == 400 and r.json()["message"].startswith("request body:1: $: YAML anchors are not allowed")
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/contracts").json()["totalCount"] == 0


def test_unsafe_tag_is_a_400(client):
    r = client.post("/api/v1/contracts", headers=AUTH["requester"], content="id: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    assert r.status_code == 400 and "`!!python/object/apply:os.system` is not allowed" in r.json()["message"]


def test_contract_over_the_size_cap_is_a_413(client):
    body = ACME + "#" * (1024 * 1024)
    r = client.post("/api/v1/contracts", content=body, headers=AUTH["requester"])
    assert r.status_code == 413 and "LINEAGE_MAX_CONTRACT_BYTES" in r.json()["message"]
    # Without a Content-Length (chunked), the cap holds on what was actually read.
    r = client.post("/api/v1/contracts", content=iter([ACME.encode(), b"#" * (1024 * 1024)]), headers=AUTH["requester"])
    assert r.status_code == 413 and "LINEAGE_MAX_CONTRACT_BYTES" in r.json()["message"]
    assert client.get("/api/v1/contracts").json()["totalCount"] == 0


def test_cap_follows_the_setting(settings, db):
    from lineage.api.app import create_app
    from tests_support import LiveServer
    import httpx

    small = settings.model_copy(update={"max_contract_bytes": 2048})
    small_app = create_app(small, db=db)
    real_tokens(small_app, TOKENS)
    with LiveServer(small_app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/api/v1/contracts", content=ACME, headers=AUTH["requester"])  # about 3 KB
        assert r.status_code == 413 and "2048 bytes" in r.json()["message"]


def test_health_answers_while_a_contract_is_being_parsed(client, live_server, monkeypatch):
    """Parsing runs in a worker thread: with a parse held open, other endpoints still answer.

    If parsing ran on the event loop, the held parse would block the loop and the health
    request below could not be answered until the parse was released (it never is first).
    """
    import threading

    import httpx

    from lineage.contracts import document

    entered, release = threading.Event(), threading.Event()
    real = document.load_contract

    def held(*args, **kwargs):
        entered.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(document, "load_contract", held)
    result: dict = {}

    def post() -> None:
        with httpx.Client(base_url=live_server.url, timeout=120) as c:
            result["r"] = c.post("/api/v1/contracts", content=ACME, headers=AUTH["requester"])

    poster = threading.Thread(target=post)
    poster.start()
    try:
        assert entered.wait(60), "the contract was never parsed"
        health = client.get("/api/v1/health", timeout=30)
        listed = client.get("/api/v1/contracts", timeout=30)
        assert not release.is_set()  # both answered while the parse was still held
    finally:
        release.set()
        poster.join(60)
    assert health.status_code == 200 and listed.status_code == 200
    assert result["r"].status_code == 201


def test_only_the_streaming_register_handler_is_async():
    """Every other contracts/gate handler is a plain def, which FastAPI runs in its thread pool."""
    import inspect

    from lineage.api.contracts import gate_router, router

    asyncs = {r.name for r in [*router.routes, *gate_router.routes] if inspect.iscoroutinefunction(r.endpoint)}
    assert asyncs == {"register"}


def test_no_route_takes_an_as_parameter():
    """Issue 8: the actor is the authenticated principal; `as` is gone from the API's schema."""
    import json

    from lineage.api.app import create_app
    from lineage.config import Settings

    schema = json.dumps(create_app(Settings()).openapi())
    assert '"as"' not in schema and '"as_"' not in schema
