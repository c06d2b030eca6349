"""Erasure through the HTTP API on a real store: the manifest, who may erase, the gate after it,
deletions recorded against the manifest, and re-creation flagged.

Adversarial: a requester cannot erase; erasing twice; a look-alike source name; recording a
deletion for an item that is not on the manifest; a writer that re-creates an erased dataset
under a namespace spelt differently (NFC vs NFD).
"""

from __future__ import annotations

import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))

from gate_helpers import STEWARD, ingest, register  # noqa: E402

from lineage.samples import dataset, run_pair  # noqa: E402
from example_pipeline.sample import ml_pipeline_sample

SOURCE = "dataset:partner-drops:acme/photos"
CURATED = "dataset:curated:training.face_photos_v1"
T = datetime(2026, 11, 3, tzinfo=timezone.utc)


@pytest.fixture
def people(tokens):
    return {
        "steward": {"Authorization": f"Bearer {tokens('erasing-steward', 'steward', principal='dpo@example.com')}"},
        "requester": {"Authorization": f"Bearer {tokens('req', 'requester', principal='data-requests@example.com')}"},
        "emitter": {"Authorization": f"Bearer {tokens('dag', 'emitter', principal='airflow')}"},
        "viewer": {"Authorization": f"Bearer {tokens('v', 'viewer', principal='viewer@example.com')}"},
        "auditor": {"Authorization": f"Bearer {tokens('a', 'auditor', principal='auditor@example.com')}"},
    }


@pytest.fixture
def pipeline(db):
    from lineage.gate.decision import Decision
    from lineage.gate.service import record

    ingest(db, ml_pipeline_sample())
    register(db, "acme-stock-photos.yaml", approve_as=STEWARD)
    with db.connection() as conn:  # the train job passed the gate once: its output is a model
        record(conn, Decision(job="ml-pipeline:train_model.train", purpose="train_ai_system", inputs=(CURATED,), allowed=True))
    return db


def _erase(anon_client, who, source=SOURCE, reason="partner withdrew consent"):
    return anon_client.post("/api/v1/erasures", json={"source": source, "reason": reason}, headers=who)


def _gate(db, *inputs):
    from lineage.gate.service import check_gate

    return check_gate(db, "ml-pipeline:train_model.train", "train_ai_system", list(inputs))


def test_steward_erases_revokes_and_the_manifest_lists_everything_built_from_the_source(pipeline, anon_client, people):
    r = _erase(anon_client, people["steward"])
    assert r.status_code == 201, r.text
    st = r.json()
    kinds = {i["dataset"]: i["kind"] for i in st["items"]}
    assert kinds == {SOURCE: "source", "dataset:raw-zone:raw.acme_photos": "dataset", CURATED: "dataset",
                     "dataset:models:face-embedder": "model"}
    locations = {i["dataset"]: i["location"] for i in st["items"]}
    assert locations[SOURCE] == "s3://partner-drops/acme/photos"
    assert locations["dataset:models:face-embedder"] == "file://models/face-embedder"
    assert st["revokedContracts"] == ["acme-stock-photos@3"]  # registered @1, approved @2, revoked @3
    assert st["state"] == "in_progress" and st["counts"]["outstanding"] == 4
    assert st["manifest"]["models"][0]["id"] == "dataset:models:face-embedder"
    assert "dataset:models:face-embedder" in st["summary"] and "requested by dpo@example.com" in st["summary"]
    contract = anon_client.get("/api/v1/contracts/acme-stock-photos", headers=people["steward"]).json()
    assert contract["status"] == "revoked" and contract["changedBy"] == "dpo@example.com"
    assert "erasure of dataset:partner-drops:acme/photos" in contract["reason"]
    listed = anon_client.get("/api/v1/erasures", headers=people["auditor"]).json()
    assert listed["erasures"][0]["id"] == st["id"] and listed["erasures"][0]["counts"]["outstanding"] == 4


def test_gate_blocks_the_source_and_everything_built_from_it_after_erasure(pipeline, anon_client, people, db):
    unrelated = _gate(db, "dataset:partner-drops:lovematch/photos")
    assert "erased_source" not in [x.code for x in unrelated.reasons]
    assert _erase(anon_client, people["steward"]).status_code == 201
    for inp in (SOURCE, "dataset:raw-zone:raw.acme_photos", CURATED):
        d = _gate(db, inp)
        assert not d.allowed
        erased = [x for x in d.reasons if x.code == "erased_source"]
        assert erased and erased[0].dataset == inp and SOURCE in {x.source for x in erased}
    # Logged: the decision log holds the refusal with its reason.
    log = anon_client.get("/api/v1/gate/decisions", headers=people["auditor"]).json()
    rows = log if isinstance(log, list) else log.get("decisions", [])
    assert any(any(x["code"] == "erased_source" for x in row["reasons"]) for row in rows)


def test_a_requester_cannot_erase_and_nothing_is_recorded(pipeline, anon_client, people):
    assert _erase(anon_client, people["requester"]).status_code == 403
    assert _erase(anon_client, people["emitter"]).status_code == 403
    assert _erase(anon_client, {}).status_code == 401
    assert anon_client.get("/api/v1/erasures", headers=people["auditor"]).json()["totalCount"] == 0
    assert anon_client.get("/api/v1/contracts/acme-stock-photos", headers=people["steward"]).json()["status"] == "approved"


def test_erasing_twice_is_a_conflict_naming_the_first(pipeline, anon_client, people):
    first = _erase(anon_client, people["steward"]).json()
    again = _erase(anon_client, people["steward"], source="partner-drops:acme/photos")
    assert again.status_code == 409 and f"erasure #{first['id']}" in again.text
    assert anon_client.get("/api/v1/erasures", headers=people["auditor"]).json()["totalCount"] == 1


def test_a_look_alike_source_erases_nothing(pipeline, anon_client, people, db):
    look_alike = "dataset:partner-drops:acme/ph\u043etos"  # Cyrillic o
    r = _erase(anon_client, people["steward"], source=look_alike)
    assert r.status_code == 404
    assert anon_client.get("/api/v1/erasures", headers=people["auditor"]).json()["totalCount"] == 0
    assert "erased_source" not in [x.code for x in _gate(db, CURATED).reasons]
    # Bad input is a 400 naming the field, never a 500.
    assert _erase(anon_client, people["steward"], source="not-a-node").status_code == 400
    blank = _erase(anon_client, people["steward"], reason="   ")
    assert blank.status_code == 400 and "reason" in blank.text
    assert _erase(anon_client, people["steward"], source="dataset:x:\u0000").status_code == 400


def test_deletions_are_recorded_only_for_items_on_the_manifest(pipeline, anon_client, people, db):
    st = _erase(anon_client, people["steward"]).json()
    item = st["items"][0]["id"]
    url = f"/api/v1/erasures/{st['id']}/items/{item}/deletions"
    assert anon_client.post(url, json={"note": "x"}, headers=people["viewer"]).status_code == 403
    assert anon_client.post(url, json={"note": "x"}, headers=people["requester"]).status_code == 403
    first = anon_client.post(url, json={"location": st["items"][0]["location"]}, headers=people["emitter"])
    assert first.status_code == 201 and first.json()["state"] == "deleted" and first.json()["deleted"]["recordedBy"] == "airflow"
    again = anon_client.post(url, json={"note": "again"}, headers=people["emitter"])
    assert again.status_code == 200 and again.json()["deleted"]["detail"] == {"location": st["items"][0]["location"]}
    # An item id that exists on no manifest, and one of another manifest, are 404s: nothing recorded.
    other_source = "dataset:partner-drops:lovematch/photos"
    other = _erase(anon_client, people["steward"], source=other_source).json()
    foreign = next(i["id"] for i in other["items"] if i["dataset"] == other_source)
    assert anon_client.post(f"/api/v1/erasures/{st['id']}/items/{foreign}/deletions", json={}, headers=people["emitter"]).status_code == 404
    assert anon_client.post(f"/api/v1/erasures/{st['id']}/items/999999/deletions", json={}, headers=people["emitter"]).status_code == 404
    assert anon_client.post(f"/api/v1/erasures/999999/items/{item}/deletions", json={}, headers=people["emitter"]).status_code == 404
    assert anon_client.post(url, json={"surprise": 1}, headers=people["emitter"]).status_code in (400, 422)
    now = anon_client.get(f"/api/v1/erasures/{st['id']}", headers=people["emitter"]).json()
    assert now["counts"]["deleted"] == 1 and now["state"] == "in_progress"
    assert anon_client.get(f"/api/v1/erasures/{other['id']}", headers=people["auditor"]).json()["counts"]["deleted"] == 0
    # The application role cannot rewrite the record.
    import psycopg

    with db.connection() as conn, pytest.raises(psycopg.Error):
        conn.execute("UPDATE erasure_item_events SET recorded_by = 'someone else'")
    with db.connection() as conn, pytest.raises(psycopg.Error):
        conn.execute("DELETE FROM erasure_items")


def test_recreating_an_erased_dataset_under_another_unicode_spelling_is_flagged(db, anon_client, people):
    nfc_ns, nfd_ns = unicodedata.normalize("NFC", "café-drops"), unicodedata.normalize("NFD", "café-drops")
    assert nfc_ns != nfd_ns
    ingest(db, run_pair(("etl", "land"), 1, [dataset(nfc_ns, "photos")], [dataset("lake", "photos_copy")], T))
    # The source erased by its NFD spelling: the same dataset.
    st = _erase(anon_client, people["steward"], source=f"dataset:{nfd_ns}:photos").json()
    assert st["source"] == f"dataset:{nfc_ns}:photos"
    assert {i["dataset"] for i in st["items"]} == {f"dataset:{nfc_ns}:photos", "dataset:lake:photos_copy"}
    # The erasure's own DROP event (an output carrying lifecycleStateChange DROP) is no re-creation.
    drop = dataset("lake", "photos_copy")
    drop["facets"]["lifecycleStateChange"] = {"_producer": "https://example.com/p", "_schemaURL":
        "https://openlineage.io/spec/facets/1-0-1/LifecycleStateChangeDatasetFacet.json#/$defs/LifecycleStateChangeDatasetFacet",
        "lifecycleStateChange": "DROP"}
    ingest(db, run_pair(("etl", "erase_source.erase_item"), 1, [], [drop], T))
    assert anon_client.get(f"/api/v1/erasures/{st['id']}", headers=people["auditor"]).json()["counts"]["recreated"] == 0
    # A writer brings it back, spelt NFD, and another writes the erased copy again.
    ingest(db, run_pair(("etl", "resurrect"), 1, [dataset("elsewhere", "x")], [dataset(nfd_ns, "photos")], T))
    ingest(db, run_pair(("etl", "land"), 2, [dataset("elsewhere", "x")], [dataset("lake", "photos_copy")], T))
    now = anon_client.get(f"/api/v1/erasures/{st['id']}", headers=people["auditor"]).json()
    assert now["state"] == "recreated" and now["counts"]["recreated"] == 2
    flagged = {i["dataset"]: i["recreated"] for i in now["items"]}
    assert flagged[f"dataset:{nfc_ns}:photos"][0]["detail"]["job"] == "etl:resurrect"
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT job_name, allowed, reasons FROM gate_decisions WHERE reasons @> '[{\"code\": \"erased_dataset_written\"}]'"
        ).fetchall()
    assert sorted(r[0] for r in rows) == ["land", "resurrect"] and not any(r[1] for r in rows)
    # Replaying the same events flags nothing twice.
    ingest(db, run_pair(("etl", "resurrect"), 1, [dataset("elsewhere", "x")], [dataset(nfd_ns, "photos")], T))
    assert anon_client.get(f"/api/v1/erasures/{st['id']}", headers=people["auditor"]).json()["counts"]["recreated"] == 2
    # The gate refuses the re-created dataset, under either spelling.
    d = _gate(db, f"dataset:{nfd_ns}:photos")
    assert "erased_source" in [x.code for x in d.reasons]
