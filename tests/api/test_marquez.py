"""Marquez-compatible reads, checked with Marquez's own Python client against a live server."""

from __future__ import annotations

from lineage.samples import ml_pipeline_sample, run_id


def _load(client):
    r = client.post("/api/v1/lineage/batch", json=ml_pipeline_sample())
    assert r.json()["stored"] == 8


def test_marquez_python_lists_namespaces_datasets_and_jobs(live_server, client):
    from marquez_client import MarquezClient

    _load(client)
    mq = MarquezClient(url=live_server.url)
    namespaces = mq.list_namespaces()
    assert {n["name"] for n in namespaces["namespaces"]} == {"ml-pipeline", "partner-drops", "raw-zone", "curated", "models"}
    assert namespaces["totalCount"] == 5
    datasets = mq.list_datasets("partner-drops")
    assert [d["name"] for d in datasets["datasets"]] == ["acme/photos", "lovematch/photos"]
    love = mq.get_dataset("partner-drops", "lovematch/photos")  # the client percent-encodes the slash
    assert {f["name"] for f in love["fields"]} >= {"ethnicity", "lat", "lon"}
    jobs = mq.list_jobs("ml-pipeline")
    assert jobs["totalCount"] == 4
    train = mq.get_job("ml-pipeline", "train_model.train")
    assert train["inputs"] == [{"namespace": "curated", "name": "training.face_photos_v1"}]
    assert train["latestRun"]["state"] == "COMPLETED"
    run = mq.get_job_run(train["latestRun"]["id"])
    assert run["state"] == "COMPLETED" and run["durationMs"] == 60000
    versions = mq.list_dataset_versions("models", "face-embedder")
    assert versions["totalCount"] == 1
    assert versions["versions"][0]["createdByRun"]["id"] == run_id("ml-pipeline:train_model.train", 1)


def test_unknown_names_are_404_with_code_and_message(client):
    _load(client)
    for path in ("/api/v1/namespaces/nope", "/api/v1/namespaces/curated/datasets/nope",
                 "/api/v1/namespaces/ml-pipeline/jobs/nope", "/api/v1/jobs/runs/7d3c3b8e-0000-4000-8000-000000000000",
                 "/api/v1/lineage?nodeId=dataset:curated:nope"):
        r = client.get(path)
        assert r.status_code == 404, path
        body = r.json()
        assert body["code"] == 404
        assert ("7d3c3b8e" if "/runs/" in path else "nope") in body["message"]


def test_bad_query_parameters_are_400_naming_the_field(client):
    assert client.get("/api/v1/namespaces", params={"limit": "ten"}).json()["message"].startswith("limit:")
    assert client.get("/api/v1/lineage/upstream", params={"nodeId": "dataset:a:b", "depth": "500"}).status_code == 400
    r = client.get("/api/v1/lineage/downstream", params={"nodeId": "table:x"})
    assert r.status_code == 400 and r.json()["message"].startswith("nodeId:")
    assert client.get("/api/v1/lineage/downstream").json()["message"].startswith("nodeId:")
    assert client.get("/api/v1/jobs/runs/not-a-uuid").status_code == 400


def test_directional_endpoints_return_only_their_direction(client):
    _load(client)
    up = client.get("/api/v1/lineage/upstream", params={"nodeId": "dataset:raw-zone:raw.lovematch_photos"}).json()
    down = client.get("/api/v1/lineage/downstream", params={"nodeId": "dataset:raw-zone:raw.lovematch_photos"}).json()
    assert {n["id"] for n in up["nodes"]} == {
        "dataset:raw-zone:raw.lovematch_photos", "job:ml-pipeline:ingest_partner_drop.lovematch", "dataset:partner-drops:lovematch/photos"}
    assert "dataset:models:face-embedder" in {n["id"] for n in down["nodes"]}
    assert not {n["id"] for n in up["nodes"]} & ({n["id"] for n in down["nodes"]} - {"dataset:raw-zone:raw.lovematch_photos"})
    node = up["nodes"][0]
    assert set(node) == {"id", "type", "namespace", "name"}


def test_marquez_lineage_endpoint_shape(client):
    _load(client)
    r = client.get("/api/v1/lineage", params={"nodeId": "job:ml-pipeline:train_model.train", "depth": 1})
    graph = {n["id"]: n for n in r.json()["graph"]}
    assert set(graph) == {"job:ml-pipeline:train_model.train", "dataset:curated:training.face_photos_v1",
                          "dataset:models:face-embedder", "job:ml-pipeline:build_training_set.curate",
                          "dataset:raw-zone:raw.acme_photos", "dataset:raw-zone:raw.lovematch_photos"}
    assert graph["job:ml-pipeline:train_model.train"]["type"] == "JOB"


def test_events_endpoint_pages_newest_first(client):
    _load(client)
    page = client.get("/api/v1/events/lineage", params={"limit": 3}).json()
    assert page["totalCount"] == 8 and len(page["events"]) == 3
    times = [e["eventTime"] for e in page["events"]]
    assert times == sorted(times, reverse=True)
    later = client.get("/api/v1/events/lineage", params={"after": "2026-11-01T04:00:00Z"}).json()
    assert later["totalCount"] == 2 and {e["job"]["name"] for e in later["events"]} == {"train_model.train"}
