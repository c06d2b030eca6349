"""HTTP ingest against a live server: Marquez-compatible answers, field-naming errors, batches."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest

from lineage.samples import run_event
from example_pipeline.sample import ml_pipeline_sample
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


def test_openlineage_python_http_transport_posts_unchanged(live_server, client, db, tokens):
    """The real client, configured as users configure it: ``auth: {type: api_key, apiKey: ...}``."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import schema_dataset
    from openlineage.client.transport.http import HttpConfig, HttpTransport
    from openlineage.client.uuid import generate_new_uuid

    emitter = tokens("ol-client", "emitter", namespaces=["ol-client"])
    for label, compression in (("plain", None), ("gzip", "gzip")):
        config = {"url": live_server.url, "auth": {"type": "api_key", "apiKey": emitter}}
        if compression:
            config["compression"] = compression
        ol = OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(config)))
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


# -- issue 7: poison events, real producers' events, store errors ------------------------------
def _spec_event(**changes) -> dict:
    event = json.loads((SPEC_DIR / "tests" / "example_full_event.json").read_text())
    event.pop("dataset")  # the example carries a stray `dataset`; a RunEvent is what it means
    event["run"]["runId"] = str(uuid.uuid4())
    event.update(changes)
    return event


def _poison_bodies() -> dict[str, tuple[bytes, str]]:
    base = json.dumps(_spec_event()).encode()
    with_field = lambda raw: base[:-1] + b',"poison":' + raw + b"}"  # noqa: E731
    parent = _spec_event()
    parent["run"]["facets"]["parent"] = {"_producer": "https://p", "_schemaURL": "https://s", "run": "x", "job": {"namespace": "a", "name": "b"}}
    long_name = _spec_event()
    long_name["job"]["name"] = "n" * 3000
    return {
        "nul": (with_field(b'"a\\u0000b"'), "$.poison"),
        "invalid utf-8": (with_field(b'"\xff\xfe"'), "$"),
        "lone surrogate": (with_field(b'"\\ud800"'), "$"),
        "nesting 1000": (with_field(b"[" * 1000 + b"]" * 1000), "$"),
        "1e400": (with_field(b"1e400"), "$.poison"),
        "parent run x": (json.dumps(parent).encode(), "$.run.facets.parent.run"),
        "name 3000 bytes": (json.dumps(long_name).encode(), "$.job.name"),
        "year 10000 in UTC": (json.dumps(_spec_event(eventTime="9999-12-31T23:59:59-14:00")).encode(), "$.eventTime"),
        "year 0 in UTC": (json.dumps(_spec_event(eventTime="0001-01-01T00:00:00+14:00")).encode(), "$.eventTime"),
    }


@pytest.mark.parametrize("name", list(_poison_bodies()))
def test_poison_event_is_a_400_naming_the_field_and_reads_still_work(client, db, name):
    body, field = _poison_bodies()[name]
    r = client.post("/api/v1/lineage", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == field
    assert "SELECT" not in r.text and "INSERT" not in r.text
    assert _count(db) == 0
    assert client.get("/api/v1/namespaces").status_code == 200


def test_poison_events_in_a_batch_are_rejected_by_index_and_the_rest_stored(client, db):
    poison = [body for body, _ in _poison_bodies().values()]
    good = [json.dumps(_spec_event()).encode() for _ in range(3)]
    items = [good[0], *poison[:4], good[1], *poison[4:], good[2]]
    for ctype, body in (("application/x-ndjson", b"\n".join(items)), ("application/json", b"[" + b",".join(items) + b"]")):
        r = client.post("/api/v1/lineage/batch", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 200, r.text
        report = r.json()
        assert [x["index"] for x in report["rejected"]] == [i for i in range(len(items)) if items[i] in poison]
        assert report["stored"] + report["duplicates"] == 3
    assert _count(db) == 3


def test_openlineage_python_client_example_is_stored_with_its_normalisations(client, db):
    """eventTime without an offset and a date-only nominalStartTime, as the Python client's docs serialise them."""
    event = run_event("START", ("ol", "example"), str(uuid.uuid4()))
    event["eventTime"] = "2021-11-03T10:53:52.427343"
    event["run"]["facets"]["nominalTime"]["nominalStartTime"] = "2020-01-01"
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    with db.connection() as conn:
        event_time, notes, payload = conn.execute("SELECT event_time, normalizations, payload FROM raw_events").fetchone()
    assert event_time.isoformat() == "2021-11-03T10:53:52.427343+00:00"
    assert len(notes) == 2 and notes[0].startswith("$.eventTime: no UTC offset") and "midnight UTC" in notes[1]
    assert payload["eventTime"] == "2021-11-03T10:53:52.427343Z"
    SPEC_VALIDATOR.validate(payload)


def test_one_event_in_two_spellings_is_stored_once(client, db):
    rid = str(uuid.uuid4())
    a = run_event("START", ("ns", "j"), rid)
    b = json.loads(json.dumps(a))
    a["eventTime"], b["eventTime"] = "2026-11-01T10:00:00Z", "2026-11-01T12:00:00.000+02:00"
    b["run"]["runId"] = rid.upper()
    assert client.post("/api/v1/lineage", json=a).status_code == 201
    assert client.post("/api/v1/lineage", json=b).status_code == 201
    assert _count(db) == 1


def test_a_value_the_database_refuses_is_a_400_without_sql(app, client, db, monkeypatch):
    """Defence in depth: if validation lets through something PostgreSQL refuses, the answer
    is a 400 naming `$`, and in a batch only that event is rejected."""
    import lineage.store.ingest as ingest_module

    real = ingest_module._raw_row

    def poisoned(ev):
        row = list(real(ev))
        if ev.job_name == "refused":
            row[8] = row[8][:-1] + ',"x":"\\u0000"}'  # jsonb refuses \u0000: SQLSTATE 22P05
        return tuple(row)

    monkeypatch.setattr(ingest_module, "_raw_row", poisoned)
    bad = run_event("START", ("ns", "refused"), str(uuid.uuid4()))
    r = client.post("/api/v1/lineage", json=bad)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "$"
    assert "SQLSTATE 22P05" in r.text and "INSERT" not in r.text and "COPY" not in r.text
    good = [run_event("START", ("ns", f"ok{i}"), str(uuid.uuid4())) for i in range(2)]
    r = client.post("/api/v1/lineage/batch", json=[good[0], bad, good[1]])
    assert r.status_code == 200
    assert r.json()["stored"] == 2 and [x["index"] for x in r.json()["rejected"]] == [1]
    assert _count(db) == 2


def test_openlineage_python_http_transport_without_a_valid_token_is_refused(live_server, tokens):
    import requests
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    viewer = tokens("only-viewer", "viewer")
    event = run_event("START", ("ol-client", "j"), str(uuid.uuid4()))
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    ev = RunEvent(eventType=RunState.START, eventTime=event["eventTime"], run=Run(runId=event["run"]["runId"]),
                  job=Job(namespace="ol-client", name="j"), producer="https://example.com/producer")
    for auth, status in (({"type": "api_key", "apiKey": viewer}, 403), ({"type": "api_key", "apiKey": "lin_000000000000_" + "x" * 43}, 401), (None, 401)):
        config = {"url": live_server.url, **({"auth": auth} if auth else {})}
        with pytest.raises(requests.HTTPError) as err:
            OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(config))).emit(ev)
        assert err.value.response.status_code == status


def test_a_lost_connection_is_a_503_with_retry_after_and_no_sql(settings, auth_headers):
    """The server side drops the pooled connection (as a restart or failover would)."""
    import psycopg

    from lineage.api.app import create_app
    from lineage.store import Database
    from tests_support import LiveServer

    url = settings.database_url.get_secret_value()
    db = Database(url, min_size=1, max_size=1, timeout=2)
    quiet = settings.model_copy(update={"derive_workers": 0})  # no worker to meet the dead connection first
    try:
        with LiveServer(create_app(quiet, db=db)) as server, httpx.Client(base_url=server.url, timeout=30, headers=auth_headers) as c:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            r = c.post("/api/v1/lineage", json=run_event("START", ("ns", "j"), str(uuid.uuid4())))
    finally:
        db.close()
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after") == "1"
    assert "SELECT" not in r.text and "terminat" not in r.text
