"""``/api/v1/contracts`` and ``/api/v1/gate`` over real HTTP against the real store."""

from __future__ import annotations

from pathlib import Path

import pytest

ACME = (Path(__file__).resolve().parents[2] / "contracts" / "acme-stock-photos.yaml").read_text()


def test_contract_lifecycle_over_http(client, db):
    from lineage.events import parse_event
    from lineage.samples import ml_pipeline_sample
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:  # the gate refuses inputs of unknown provenance: record the drops' lineage first
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
    r = client.post("/api/v1/contracts", content=ACME, headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "proposed" and r.json()["version"] == 1
    r = client.post("/api/v1/contracts/acme-stock-photos/approve", json={"as": "ml-lead@example.com"})
    assert r.status_code == 403 and "independent steward" in r.json()["message"]
    r = client.post("/api/v1/contracts/acme-stock-photos/approve", json={"as": "dpo@example.com", "reason": "licence checked"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    body = {"job": "ml:train", "purpose": "train_ai_system", "inputs": ["dataset:partner-drops:acme/photos"]}
    r = client.post("/api/v1/gate/check", json=body)
    assert r.status_code == 200 and r.json()["allowed"] is True
    r = client.post("/api/v1/contracts/acme-stock-photos/revoke", json={"as": "dpo@example.com"})
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = client.post("/api/v1/contracts/acme-stock-photos/revoke", json={"as": "dpo@example.com", "reason": "withdrawn"})
    assert r.json()["status"] == "revoked"
    r = client.post("/api/v1/gate/check", json=body)
    assert r.json()["allowed"] is False and r.json()["reasons"][0]["code"] == "revoked"
    assert "sourceContract" in r.json()["facets"]["dataset:partner-drops:acme/photos"]["facets"]
    history = client.get("/api/v1/contracts/acme-stock-photos").json()["history"]
    assert [h["action"] for h in history] == ["register", "approve", "revoke"]
    assert client.get("/api/v1/contracts").json()["totalCount"] == 1
    assert client.get("/api/v1/contracts/acme-stock-photos/suites").json()["suites"][0]["name"] == "acme-stock-photos.photos"
    assert len(client.get("/api/v1/gate/decisions").json()["decisions"]) == 2


def test_bad_contract_is_a_400_naming_the_line(client):
    r = client.post("/api/v1/contracts", content=ACME.replace("legalBasis\n    value: contract", "legalBasis\n    value: because"))
    assert r.status_code == 400
    assert "request body:" in r.json()["message"] and "legal basis" in r.json()["message"]
    assert client.get("/api/v1/contracts").json()["totalCount"] == 0
    assert client.get("/api/v1/contracts/nope").status_code == 404
