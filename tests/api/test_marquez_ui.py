"""What the Marquez web UI reads and writes beyond the basic lists: tags, jobs across
namespaces, stats, facets, column lineage, search, soft delete, and the anonymous viewer."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import pytest

from lineage.samples import dataset, run_event, run_id, run_pair
from example_pipeline.sample import ml_pipeline_sample


def _load(client):
    assert client.post("/api/v1/lineage/batch", json=ml_pipeline_sample()).json()["stored"] == 8


def _col(fields: dict[str, list[tuple[str, str, str]]], ttype="IDENTITY") -> dict:
    return {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
            "fields": {out: {"inputFields": [{"namespace": ns, "name": n, "field": f,
                                              "transformations": [{"type": "DIRECT", "subtype": ttype}]} for ns, n, f in ins]}
                       for out, ins in fields.items()}}


def _column_events(client):
    at = datetime(2026, 11, 5, tzinfo=timezone.utc)
    a = dataset("cl", "a", [("id", "int"), ("email", "text")])
    b = dataset("cl", "b", [("id", "int"), ("email_hash", "text")])
    b["facets"]["columnLineage"] = _col({"id": [("cl", "a", "id")], "email_hash": [("cl", "a", "email")]}, "TRANSFORMATION")
    c = dataset("cl", "c", [("key", "int")])
    c["facets"]["columnLineage"] = _col({"key": [("cl", "b", "id")]})
    events = run_pair(("cl", "ab"), 1, [a], [b], at) + run_pair(("cl", "bc"), 1, [b], [c], at + timedelta(hours=1))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 4


def test_jobs_carry_tags_latest_run_and_latest_runs_in_marquez_states(client):
    _load(client)
    job = client.get("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").json()
    assert job["tags"] == [] and job["latestRun"]["state"] == "COMPLETED"
    assert [r["id"] for r in job["latestRuns"]] == [job["latestRun"]["id"]]
    for j in client.get("/api/v1/namespaces/ml-pipeline/jobs").json()["jobs"]:
        assert isinstance(j["tags"], list) and j["latestRun"]["state"] in {"NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}


def test_graph_job_nodes_carry_latest_run_state(client):
    _load(client)
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:ml-pipeline:train_model.train"}).json()["graph"]
    jobs = [n for n in graph if n["type"] == "JOB"]
    assert jobs and all(n["data"]["latestRun"]["state"] == "COMPLETED" for n in jobs)
    assert all(n["data"]["tags"] == [] for n in graph)


def test_jobs_across_namespaces_page_and_filter_by_run_state(client):
    _load(client)
    fail = run_event("FAIL", ("other", "broken"), str(uuid.uuid4()), [], [], datetime(2026, 11, 6, tzinfo=timezone.utc))
    assert client.post("/api/v1/lineage", json=fail).status_code == 201
    everything = client.get("/api/v1/jobs", params={"limit": 100}).json()
    assert everything["totalCount"] == 5 and len(everything["jobs"]) == 5
    page = client.get("/api/v1/jobs", params={"limit": 2, "offset": 4}).json()
    assert page["totalCount"] == 5 and len(page["jobs"]) == 1
    failed = client.get("/api/v1/jobs", params={"runState": "FAILED"}).json()
    assert [j["name"] for j in failed["jobs"]] == ["broken"] and failed["totalCount"] == 1
    assert client.get("/api/v1/jobs", params={"lastRunStates": "COMPLETED"}).json()["totalCount"] == 4
    r = client.get("/api/v1/jobs", params={"runState": "COMPLETE; DROP TABLE jobs"})
    assert r.status_code == 400 and r.json()["message"].startswith("runState:")


def test_stats_answer_buckets_for_day_and_week_and_refuse_a_bad_zone(client):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    events = run_pair(("stats", "job"), 1, [], [dataset("stats", "out")], now - timedelta(minutes=30))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    day = client.get("/api/v1/stats/lineage-events", params={"period": "DAY", "timezone": "Europe/Paris"}).json()
    assert len(day) == 24 and sum(b["start"] for b in day) == 1 and sum(b["complete"] for b in day) == 1
    week = client.get("/api/v1/stats/jobs", params={"period": "WEEK", "timezone": "UTC"}).json()
    assert len(week) == 7 and sum(b["count"] for b in week) == 1
    for what in ("datasets", "sources"):
        assert len(client.get(f"/api/v1/stats/{what}", params={"period": "DAY"}).json()) == 24
    r = client.get("/api/v1/stats/jobs", params={"period": "DAY", "timezone": "Mars/Olympus"})
    assert r.status_code == 400 and r.json()["message"].startswith("timezone:")
    assert client.get("/api/v1/stats/jobs", params={"period": "YEAR"}).status_code == 400
    assert client.get("/api/v1/stats/nope").status_code in (400, 404)


def test_run_facets_by_type(client):
    _load(client)
    rid = run_id("ml-pipeline:train_model.train", 1)
    run = client.get(f"/api/v1/jobs/runs/{rid}/facets", params={"type": "run"}).json()
    assert run["runId"] == rid and "nominalTime" in run["facets"]
    assert client.get(f"/api/v1/jobs/runs/{rid}/facets", params={"type": "job"}).json()["runId"] == rid
    assert client.get(f"/api/v1/jobs/runs/{rid}/facets", params={"type": "both"}).status_code == 400
    assert client.get(f"/api/v1/jobs/runs/{uuid.uuid4()}/facets", params={"type": "run"}).status_code == 404


def test_sources_list_and_one(client):
    events = run_pair(("src", "job"), 1, [], [dataset("postgres://db:5432", "public.t", source="postgres")],
                      datetime(2026, 11, 5, tzinfo=timezone.utc))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    sources = client.get("/api/v1/sources").json()
    assert [s["name"] for s in sources["sources"]] == ["postgres"]
    one = client.get("/api/v1/sources/postgres").json()
    assert one["type"] == "POSTGRES" and one["connectionUrl"] == "postgres://db:5432"
    assert client.get("/api/v1/sources/nope").status_code == 404


def test_column_lineage_from_the_facet_both_directions_and_by_depth(client):
    _column_events(client)
    up = client.get("/api/v1/column-lineage", params={"nodeId": "datasetField:cl:c:key"}).json()["graph"]
    ids = {n["id"] for n in up}
    assert ids == {"datasetField:cl:c:key", "datasetField:cl:b:id", "datasetField:cl:a:id"}
    key = next(n for n in up if n["id"] == "datasetField:cl:c:key")
    assert key["data"]["inputFields"][0]["field"] == "id" and key["data"]["fieldType"] == "int"
    assert key["inEdges"] == [{"origin": "datasetField:cl:b:id", "destination": "datasetField:cl:c:key"}]
    shallow = client.get("/api/v1/column-lineage", params={"nodeId": "datasetField:cl:c:key", "depth": 1}).json()["graph"]
    assert {n["id"] for n in shallow} == {"datasetField:cl:c:key", "datasetField:cl:b:id"}
    down = client.get("/api/v1/column-lineage", params={"nodeId": "datasetField:cl:a:id", "withDownstream": "true"}).json()
    assert "datasetField:cl:c:key" in {n["id"] for n in down["graph"]}
    no_down = client.get("/api/v1/column-lineage", params={"nodeId": "datasetField:cl:a:id"}).json()
    assert no_down["graph"] == []
    whole = client.get("/api/v1/column-lineage", params={"nodeId": "dataset:cl:b"}).json()["graph"]
    hashed = next(n for n in whole if n["id"] == "datasetField:cl:b:email_hash")
    assert hashed["data"]["transformationType"] == "DIRECT" and hashed["data"]["transformationDescription"] == "TRANSFORMATION"
    assert client.get("/api/v1/namespaces/cl/datasets/b").json()["columnLineage"][0]["name"] == "email_hash"
    r = client.get("/api/v1/column-lineage", params={"nodeId": "datasetField:cl"})
    assert r.status_code == 400 and r.json()["message"].startswith("nodeId:")


def test_column_lineage_is_rebuilt_by_the_replay(client, db):
    from lineage.store.ingest import rebuild

    from lineage.store.derive import catch_up

    _column_events(client)
    assert catch_up(db, 30)  # HTTP ingest derives after acknowledging; this test reads the tables directly
    with db.connection() as conn:
        before = conn.execute("SELECT out_field, in_field, recorded_at FROM column_lineage ORDER BY 1, 2").fetchall()
        rebuild(conn)
        after = conn.execute("SELECT out_field, in_field, recorded_at FROM column_lineage ORDER BY 1, 2").fetchall()
    assert len(before) == 3 and before == after


def test_a_malformed_column_lineage_facet_is_skipped_not_an_error(client):
    out = dataset("bad", "x", [("f", "int")])
    out["facets"]["columnLineage"] = {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
                                      "fields": {"f": {"inputFields": [{"namespace": "bad"}, "str", 5, {"namespace": "n", "name": "m", "field": 7}]},
                                                 "g": "not an object", "h": {"inputFields": "no"}}}
    ev = run_event("COMPLETE", ("bad", "job"), str(uuid.uuid4()), [], [out])
    assert client.post("/api/v1/lineage", json=ev).status_code == 201
    assert client.get("/api/v1/column-lineage", params={"nodeId": "dataset:bad:x"}).json() == {"graph": []}


def test_search_ranks_whole_name_then_prefix_then_contains_and_pages(client):
    at = datetime(2026, 11, 5, tzinfo=timezone.utc)
    outs = [dataset("s", n) for n in ("photos", "photos_v2", "raw_photos", "unrelated")]
    assert client.post("/api/v1/lineage/batch", json=run_pair(("s", "photos_job"), 1, [], outs, at)).json()["stored"] == 2
    body = client.get("/api/v1/search", params={"q": "Photos"}).json()
    assert [r["name"] for r in body["results"]] == ["photos", "photos_job", "photos_v2", "raw_photos"]
    assert body["totalCount"] == 4 and body["results"][0]["nodeId"] == "dataset:s:photos"
    assert body["results"][1]["type"] == "JOB"
    page = client.get("/api/v1/search", params={"q": "photos", "limit": 2, "offset": 2}).json()
    assert [r["name"] for r in page["results"]] == ["photos_v2", "raw_photos"]
    only_jobs = client.get("/api/v1/search", params={"q": "photos", "filter": "job"}).json()
    assert [r["name"] for r in only_jobs["results"]] == ["photos_job"]
    by_name = client.get("/api/v1/search", params={"q": "photos", "sort": "name"}).json()
    assert [r["name"] for r in by_name["results"]] == ["photos", "photos_job", "photos_v2", "raw_photos"]
    assert client.get("/api/v1/search", params={"q": "ph%tos"}).json()["totalCount"] == 4
    # `_` is a literal underscore (Marquez's one-character wildcard would scan every name).
    assert client.get("/api/v1/search", params={"q": "ph_tos"}).json()["totalCount"] == 0
    assert [r["name"] for r in client.get("/api/v1/search", params={"q": "tos_v2"}).json()["results"]] == ["photos_v2"]
    # Fewer than three literal characters: a prefix search (no index finds "contains `ra`").
    short = client.get("/api/v1/search", params={"q": "ra"}).json()
    assert [r["name"] for r in short["results"]] == ["raw_photos"] and short["totalCount"] == 1
    assert client.get("/api/v1/search", params={"q": "hotos", "namespace": "nope"}).json()["totalCount"] == 0
    assert client.get("/api/v1/search", params={"q": "hotos", "after": "2026-11-06"}).json()["totalCount"] == 0
    assert client.get("/api/v1/search", params={"q": "hotos", "before": "2026-11-06"}).json()["totalCount"] == 4
    for q in ("\\", "%", "_", "'; DROP TABLE datasets; --", "a" * 1024):
        assert client.get("/api/v1/search", params={"q": q}).status_code == 200, q
    assert client.get("/api/v1/search", params={"q": ""}).status_code == 400
    assert client.get("/api/v1/search", params={"q": "a" * 1025}).status_code == 400


def test_v2beta_search_escapes_names_in_highlights(client):
    evil = "<img src=x onerror=alert(1)>photos"
    ev = run_event("COMPLETE", ("s", "<b>photos</b>"), str(uuid.uuid4()), [], [dataset("s", evil)])
    assert client.post("/api/v1/lineage", json=ev).status_code == 201
    ds = client.get("/api/v2beta/search/datasets", params={"q": "photos"}).json()
    assert ds["hits"][0]["name"] == evil
    assert "<img" not in ds["highlights"][0]["name"][0] and "<em>photos</em>" in ds["highlights"][0]["name"][0]
    jobs = client.get("/api/v2beta/search/jobs", params={"q": "photos"}).json()
    assert jobs["hits"][0]["eventType"] == "COMPLETE" and "<b>" not in jobs["highlights"][0]["name"][0]


def test_tags_are_defined_then_added_and_removed_with_who_and_when(client, db):
    _load(client)
    assert client.get("/api/v1/tags").json() == {"tags": [], "totalCount": 0}
    r = client.post("/api/v1/namespaces/curated/datasets/training.face_photos_v1/tags/PII")
    assert r.status_code == 404 and "PUT /api/v1/tags/PII" in r.json()["message"]
    assert client.put("/api/v1/tags/PII", json={"description": "personal data"}).status_code == 200
    assert client.get("/api/v1/tags").json()["tags"] == [{"name": "PII", "description": "personal data"}]
    love = quote("lovematch/photos", safe="")
    assert client.post(f"/api/v1/namespaces/partner-drops/datasets/{love}/tags/PII").json()["tags"] == ["PII"]
    assert client.put(f"/api/v1/namespaces/partner-drops/datasets/{love}/fields/ethnicity/tags/PII").status_code == 200
    ds = client.get(f"/api/v1/namespaces/partner-drops/datasets/{love}").json()
    assert {f["name"]: f["tags"] for f in ds["fields"]}["ethnicity"] == ["PII"]
    assert client.post(f"/api/v1/namespaces/partner-drops/datasets/{love}/fields/nope/tags/PII").status_code == 404
    assert client.post("/api/v1/namespaces/ml-pipeline/jobs/train_model.train/tags/PII").json()["tags"] == ["PII"]
    assert client.delete("/api/v1/namespaces/ml-pipeline/jobs/train_model.train/tags/PII").json()["tags"] == []
    with db.connection() as conn:
        rows = conn.execute("SELECT target, action, recorded_by FROM tag_changes ORDER BY id").fetchall()
    assert rows == [("dataset", "add", "tester@example.com"), ("field", "add", "tester@example.com"),
                    ("job", "add", "tester@example.com"), ("job", "remove", "tester@example.com")]
    r = client.put("/api/v1/tags/x", content=b"{not json")
    assert r.status_code == 400 and r.json()["message"].startswith("$:")


def test_soft_delete_hides_keeps_history_and_a_newer_event_brings_it_back(client, db):
    _load(client)
    before = client.get("/api/v1/namespaces/ml-pipeline/jobs").json()["totalCount"]
    r = client.delete("/api/v1/namespaces/ml-pipeline/jobs/train_model.train")
    assert r.status_code == 200 and r.json()["name"] == "train_model.train"
    assert client.get("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").status_code == 404
    assert client.get("/api/v1/namespaces/ml-pipeline/jobs").json()["totalCount"] == before - 1
    assert client.delete("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").status_code == 404
    assert client.get("/api/v1/search", params={"q": "train_model"}).json()["totalCount"] == 0
    graph = client.get("/api/v1/lineage", params={"nodeId": "dataset:curated:training.face_photos_v1"}).json()["graph"]
    assert "job:ml-pipeline:train_model.train" not in {n["id"] for n in graph}
    assert all(e["destination"] != "job:ml-pipeline:train_model.train" for n in graph for e in n["outEdges"])
    assert client.delete("/api/v1/namespaces/models/datasets/face-embedder").json()["deleted"] is True
    assert client.get("/api/v1/namespaces/models/datasets/face-embedder").status_code == 404
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 8
        assert conn.execute("SELECT recorded_by FROM node_deletions ORDER BY id").fetchall() == [("tester@example.com",)] * 2
    late = run_pair(("ml-pipeline", "train_model.train"), 7, [], [], datetime.now(timezone.utc) + timedelta(seconds=1))
    assert client.post("/api/v1/lineage/batch", json=late).json()["stored"] == 2
    assert client.get("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").status_code == 200


def test_append_only_records_refuse_update_and_delete_by_the_application(db):
    import psycopg

    with db.connection() as conn:
        conn.execute("INSERT INTO node_deletions (kind, namespace, name, recorded_by) VALUES ('job', 'a', 'b', 'me')")
    for table in ("tag_definitions", "tag_changes", "node_deletions"):
        with pytest.raises(psycopg.Error), db.connection() as conn:
            conn.execute(f"DELETE FROM {table}")
        with pytest.raises(psycopg.Error), db.connection() as conn:
            conn.execute(f"UPDATE {table} SET recorded_by = 'someone else'")


# -- who may write, and the anonymous viewer ---------------------------------------------------
WRITES = [
    ("PUT", "/api/v1/tags/PII"),
    ("POST", "/api/v1/namespaces/curated/datasets/training.face_photos_v1/tags/PII"),
    ("PUT", "/api/v1/namespaces/curated/datasets/training.face_photos_v1/tags/PII"),
    ("DELETE", "/api/v1/namespaces/curated/datasets/training.face_photos_v1/tags/PII"),
    ("POST", "/api/v1/namespaces/curated/datasets/training.face_photos_v1/fields/id/tags/PII"),
    ("DELETE", "/api/v1/namespaces/curated/datasets/training.face_photos_v1/fields/id/tags/PII"),
    ("POST", "/api/v1/namespaces/ml-pipeline/jobs/train_model.train/tags/PII"),
    ("DELETE", "/api/v1/namespaces/ml-pipeline/jobs/train_model.train/tags/PII"),
    ("DELETE", "/api/v1/namespaces/curated/datasets/training.face_photos_v1"),
    ("DELETE", "/api/v1/namespaces/ml-pipeline/jobs/train_model.train"),
    ("POST", "/api/v1/lineage"),
]


@pytest.fixture
def anonymous_server(settings, db):
    from lineage.api.app import create_app
    from tests.tests_support import LiveServer

    with LiveServer(create_app(settings.model_copy(update={"anonymous_viewer": True}), db=db)) as server:
        yield server


def test_anonymous_viewer_is_off_by_default(anon_client):
    assert anon_client.get("/api/v1/namespaces").status_code == 401


def test_anonymous_viewer_reads_but_never_writes(anonymous_server, client, tokens):
    _load(client)
    with httpx.Client(base_url=anonymous_server.url, timeout=30) as anon:
        for path in ("/api/v1/namespaces", "/api/v1/jobs", "/api/v1/tags", "/api/v1/search?q=photos",
                     "/api/v1/lineage?nodeId=job:ml-pipeline:train_model.train"):
            assert anon.get(path).status_code == 200, path
        # Reads that need more than `viewer` stay closed.
        assert anon.get("/api/v1/gate/decisions").status_code == 403
        assert anon.get("/api/v1/auth/tokens").status_code == 403
        for method, path in WRITES:
            r = anon.request(method, path, json={"description": "x"} if method == "PUT" else None)
            assert r.status_code == 401, (method, path, r.status_code)
        # A presented but bad credential is still refused, not downgraded to anonymous.
        assert anon.get("/api/v1/namespaces", headers={"Authorization": "Bearer lin_forged"}).status_code == 401
        # A viewer token reads and cannot write either.
        viewer = {"Authorization": f"Bearer {tokens('v', 'viewer')}"}
        for method, path in WRITES[:-1]:
            assert anon.request(method, path, headers=viewer).status_code == 403, (method, path)
    assert client.get("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").status_code == 200
    assert client.get("/api/v1/tags").json()["tags"] == []


def test_the_marquez_ui_works_through_the_identity_header_of_a_trusted_proxy(settings, db, client, tokens):
    from lineage.api.app import create_app
    from tests.tests_support import LiveServer

    _load(client)
    proxied = settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    with LiveServer(create_app(proxied, db=db)) as server, httpx.Client(base_url=server.url, timeout=30) as ui:
        assert ui.get("/api/v1/jobs").status_code == 401
        alice = {"X-Forwarded-User": "alice@example.com"}
        # The proxy names the person; their roles come from the role grants (none yet: 403).
        assert ui.get("/api/v1/jobs", headers=alice).status_code == 403
        assert client.post("/api/v1/auth/grants", json={"principal": "alice@example.com", "role": "viewer"}).status_code == 201
        assert ui.get("/api/v1/jobs", headers=alice).json()["totalCount"] == 4
        assert ui.put("/api/v1/tags/PII", headers=alice).status_code == 403
        assert client.post("/api/v1/auth/grants", json={"principal": "alice@example.com", "role": "steward"}).status_code == 201
        assert ui.put("/api/v1/tags/PII", headers=alice).status_code == 200
        assert ui.delete("/api/v1/namespaces/ml-pipeline/jobs/train_model.train", headers=alice).status_code == 200
    with db.connection() as conn:
        assert conn.execute("SELECT recorded_by FROM node_deletions").fetchall() == [("alice@example.com",)]


def test_huge_and_odd_names_in_column_lineage_tags_and_deletes_are_handled_not_500(client):
    long_field = "f" * 5000  # no index holds a 5,000-byte key: keys are hashed
    out = dataset("odd", "x/y", [(long_field, "int"), ("a:b", "int")])
    out["facets"]["columnLineage"] = _col({long_field: [("odd", "src", "id")], "a:b": [("odd", "src", "x:y")]})
    ev = run_event("COMPLETE", ("odd", "job"), str(uuid.uuid4()), [dataset("odd", "src", [("id", "int")])], [out])
    assert client.post("/api/v1/lineage", json=ev).status_code == 201
    graph = client.get("/api/v1/column-lineage", params={"nodeId": f"datasetField:odd:x/y:{long_field}"}).json()["graph"]
    assert {n["data"]["field"] for n in graph} == {long_field, "id"}
    ds = quote("x/y", safe="")
    assert client.put("/api/v1/tags/T").status_code == 200
    assert client.post(f"/api/v1/namespaces/odd/datasets/{ds}/fields/{quote(long_field)}/tags/T").status_code == 200
    assert client.post(f"/api/v1/namespaces/odd/datasets/{ds}/fields/{quote('a:b', safe='')}/tags/T").status_code == 200
    fields = {f["name"]: f["tags"] for f in client.get(f"/api/v1/namespaces/odd/datasets/{ds}").json()["fields"]}
    assert fields[long_field] == ["T"] and fields["a:b"] == ["T"]
    assert client.put("/api/v1/tags/" + "t" * 256).status_code == 400
    assert client.put("/api/v1/tags/T", json={"description": 5}).status_code == 400
    assert client.put("/api/v1/tags/T", json=["x"]).status_code == 400
    assert client.put("/api/v1/tags/%20").status_code == 400
    assert client.delete(f"/api/v1/namespaces/odd/datasets/{ds}").status_code == 200
    # Tagging a deleted dataset is a 404, as reading it is.
    assert client.post(f"/api/v1/namespaces/odd/datasets/{ds}/tags/T").status_code == 404


def test_a_node_with_events_dated_in_the_future_cannot_be_hidden_and_nothing_is_recorded(client, db):
    future = datetime.now(timezone.utc) + timedelta(days=3)
    assert client.post("/api/v1/lineage/batch", json=run_pair(("fut", "job"), 1, [], [dataset("fut", "d")], future)).json()["stored"] == 2
    r = client.delete("/api/v1/namespaces/fut/jobs/job")
    assert r.status_code == 400 and "later than now" in r.json()["message"]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM node_deletions").fetchone()[0] == 0
