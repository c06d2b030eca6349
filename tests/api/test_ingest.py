"""HTTP ingest against a live server: Marquez-compatible answers, field-naming errors, batches."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest

from lineage.samples import dataset, ml_pipeline_sample, run_event
from tests_support import SPEC_DIR, SPEC_VALIDATOR


def _count(db, table: str = "raw_events") -> int:
    with db.connection() as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_single_event_is_201_with_empty_body(client, db):
    r = client.post("/api/v1/lineage", json=ml_pipeline_sample()[0])
    assert r.status_code == 201 and r.content == b""
    assert _count(db) == 1


def test_same_event_twice_is_stored_once(client, db):
    event = ml_pipeline_sample()[0]
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert _count(db) == 1


def test_gzip_body_is_accepted(client, db):
    body = gzip.compress(json.dumps(ml_pipeline_sample()[1]).encode())
    r = client.post("/api/v1/lineage", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 201
    assert _count(db) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        (lambda e: e["run"].__setitem__("runId", "123"), "$.run.runId"),
        (lambda e: e.__setitem__("eventTime", "not a time"), "$.eventTime"),
        (lambda e: e.__setitem__("eventType", "DONE"), "$.eventType"),
        (lambda e: e.pop("job"), "$.job"),
    ],
)
def test_bad_event_is_400_naming_the_field_and_stores_nothing(client, db, body, field):
    event = ml_pipeline_sample()[0]
    body(event)
    r = client.post("/api/v1/lineage", json=event)
    assert r.status_code == 400
    payload = r.json()
    assert payload["code"] == 400
    assert payload["errors"][0]["field"] == field
    assert field in payload["message"]
    assert _count(db) == 0 and _count(db, "runs") == 0


def test_malformed_json_and_bad_gzip_are_400(client):
    r = client.post("/api/v1/lineage", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "$"
    r = client.post("/api/v1/lineage", content=b"plain", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["message"]


def test_oversized_body_is_413(client, app):
    limit = app.state.settings.max_body_bytes
    r = client.post("/api/v1/lineage", content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    bomb = gzip.compress(b" " * (limit + 10))
    r = client.post("/api/v1/lineage", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_batch_stores_valid_events_and_reports_rejects_by_index(client, db):
    events = ml_pipeline_sample()
    bad = dict(events[2], run={"runId": "nope"})
    batch = [events[0], events[1], bad, events[3], events[0]]
    r = client.post("/api/v1/lineage/batch", json=batch)
    assert r.status_code == 200
    report = r.json()
    assert report["stored"] == 3 and report["duplicates"] == 1
    assert report["rejected"] == [{"index": 2, "errors": [{"field": "$.run.runId", "reason": "must be a UUID"}]}]
    assert _count(db) == 3


def test_batch_accepts_ndjson_and_reports_bad_lines(client, db):
    lines = [json.dumps(e) for e in ml_pipeline_sample()[:3]]
    lines.insert(1, "{broken")
    r = client.post("/api/v1/lineage/batch", content="\n".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"})
    report = r.json()
    assert report["stored"] == 3
    assert [x["index"] for x in report["rejected"]] == [1]


def test_openlineage_python_http_transport_posts_unchanged(live_server, client, db):
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import schema_dataset
    from openlineage.client.transport.http import HttpCompression, HttpConfig, HttpTransport
    from openlineage.client.uuid import generate_new_uuid

    for label, compression in (("plain", None), ("gzip", HttpCompression.GZIP)):
        ol = OpenLineageClient(transport=HttpTransport(HttpConfig(url=live_server.url, compression=compression)))
        run = Run(runId=str(generate_new_uuid()))
        job = Job(namespace="ol-client", name=f"job-{label}")
        schema = schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="int")])
        for state in (RunState.START, RunState.COMPLETE):
            ol.emit(RunEvent(
                eventType=state, eventTime="2026-11-26T10:00:00.000Z" if state == RunState.START else "2026-11-26T10:01:00.000Z",
                run=run, job=job, producer="https://example.com/producer",
                inputs=[InputDataset(namespace="db", name="src", facets={"schema": schema})],
                outputs=[OutputDataset(namespace="db", name=f"dst-{label}")],
            ))
    r = client.get("/api/v1/lineage/upstream", params={"nodeId": "dataset:db:dst-plain"})
    assert "dataset:db:src" in {n["id"] for n in r.json()["nodes"]}
    r = client.get("/api/v1/namespaces/ol-client/jobs/job-gzip")
    assert r.status_code == 200
    job = r.json()
    assert job["latestRun"]["state"] == "COMPLETED"
    # every stored event is spec-valid
    for event in client.get("/api/v1/events/lineage", params={"limit": 100}).json()["events"]:
        SPEC_VALIDATOR.validate(event)


def test_spec_example_event_is_accepted(client):
    example = json.loads((SPEC_DIR / "tests" / "example_full_event.json").read_text())
    assert client.post("/api/v1/lineage", json=example).status_code == 201
    assert client.get("/api/v1/namespaces/food_delivery/jobs/dbt").status_code == 200


def test_facet_examples_from_the_spec_are_accepted_on_datasets(client):
    """Each example facet payload in the spec, placed on an input dataset, is accepted and stored."""
    examples = sorted((SPEC_DIR / "tests").glob("*DatasetFacet/*.json"))
    assert examples
    for i, path in enumerate(examples):
        facet = json.loads(path.read_text())
        if not isinstance(facet, dict) or "_producer" not in facet:
            facet = {"_producer": "https://example.com", "_schemaURL": "https://example.com/schema", **(facet if isinstance(facet, dict) else {})}
        event = run_event("START", ("spec", "facets"), str(uuid.uuid4()), [{"namespace": "db", "name": f"t{i}", "facets": {"example": facet}}])
        r = client.post("/api/v1/lineage", json=event)
        assert r.status_code == 201, (path, r.text)
