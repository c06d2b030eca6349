"""``GET /api/v1/audit/status``: the head, the queue, the last checkpoint and verification."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage.audit import checkpoint as cp
from lineage.audit.seal import seal_all
from lineage.audit.status import record_verification


def test_status_shows_head_checkpoint_and_verification(client, db, settings, monkeypatch):
    monkeypatch.delenv("LINEAGE_AUDIT_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("LINEAGE_AUDIT_KEY_FILE", raising=False)
    with db.connection() as conn:
        seal_all(conn)
    paths = cp.AuditPaths.from_env(settings.home)
    with db.connection() as conn:
        signed = cp.make(conn, Ed25519PrivateKey.generate())
    cp.write(paths, signed)
    record_verification(paths, {"ok": False, "first": "altered: role_grants (id=1): ..."})
    body = client.get("/api/v1/audit/status").json()
    assert body["head"]["block"] >= signed["block"] and body["lastCheckpoint"]["blockHash"] == signed["blockHash"]
    assert body["lastVerification"]["ok"] is False and "role_grants" in body["lastVerification"]["first"]
    assert isinstance(body["queued"], int)


def test_status_of_an_empty_ledger(anon_client, tokens, live_server):
    import httpx

    token = tokens("auditor-only", "auditor")
    r = httpx.get(f"{live_server.url}/api/v1/audit/status", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert set(r.json()) == {"head", "queued", "lastCheckpoint", "lastVerification"}
