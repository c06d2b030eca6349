"""Marquez-compatible reads, checked with Marquez's own Python client against a live server."""

from __future__ import annotations

from lineage.samples import run_id
from example_pipeline.sample import ml_pipeline_sample


def _load(client):
    r = client.post("/api/v1/lineage/batch", json=ml_pipeline_sample())
    assert r.json()["stored"] == 8


def test_marquez_python_lists_namespaces_datasets_and_jobs(live_server, client, tokens):
    from marquez_client import MarquezClient

    _load(client)
    # marquez-python sends `Authorization: Bearer <api_key>`; a viewer token is all reads need.
    mq = MarquezClient(url=live_server.url, api_key=tokens("marquez-reader", "viewer"))
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
    assert client.get("/api/v1/namespaces", params={"limit": "ten"}).json()["message"].startswith("query.limit:")
    assert client.get("/api/v1/lineage/upstream", params={"nodeId": "dataset:a:b", "depth": "500"}).status_code == 400
    r = client.get("/api/v1/lineage/downstream", params={"nodeId": "table:x"})
    assert r.status_code == 400 and r.json()["message"].startswith("nodeId:")
    assert client.get("/api/v1/lineage/downstream").json()["message"].startswith("query.nodeId:")
    r = client.get("/api/v1/jobs/runs/not-a-uuid")
    assert r.status_code == 400 and r.json()["message"].startswith("path.id:")


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
    assert page["totalCount"] == 8 and page["totalCountExact"] is True and len(page["events"]) == 3
    times = [e["eventTime"] for e in page["events"]]
    assert times == sorted(times, reverse=True)
    later = client.get("/api/v1/events/lineage", params={"after": "2026-11-01T04:00:00Z"}).json()
    assert later["totalCount"] == 2 and {e["job"]["name"] for e in later["events"]} == {"train_model.train"}


# -- shapes against Marquez's own OpenAPI document (tests/data/marquez) ----------------------
import re  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

import jsonschema  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from lineage.samples import dataset, run_event, run_pair  # noqa: E402

ONE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
_OPENAPI = yaml.safe_load((Path(__file__).parent.parent / "data" / "marquez" / "openapi.yml").read_text())
_COMPONENTS = _OPENAPI["components"]
# Erratum in Marquez's document: DatasetVersion.tags is `type: string`, while Marquez serves a
# list of tags there as it does on Dataset (and marquez-python reads a list).
_COMPONENTS["schemas"]["DatasetVersion"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}

# GraphNode.data is a oneOf resolved by a discriminator, which jsonschema does not implement:
# both branches have no required keys, so any object matches both.  The tests check `data`
# against Dataset or Job by the node's type instead.
_COMPONENTS["schemas"]["GraphNode"]["properties"]["data"] = {"type": "object"}

_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time")
def _one_time_format(value: object) -> bool:
    # Every timestamp the spec marks date-time must be in this server's one format.
    return not isinstance(value, str) or bool(ONE_FORMAT.match(value))


# The document is OpenAPI 3.0 without `nullable`; Marquez itself answers null for absent
# optional values (its own examples: `latestRun: null`, `lastModifiedAt: null`), so a null
# passes any type check here, while `required` still demands the key.
_base = jsonschema.Draft7Validator.TYPE_CHECKER
_NULLABLE = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=_base.redefine_many({
        t: (lambda t: lambda checker, inst: inst is None or _base.is_type(inst, t))(t)
        for t in ("string", "object", "array", "integer", "number", "boolean")
    }),
)


def assert_marquez_shape(body: dict, component: str) -> None:
    schema = {"$ref": f"#/components/schemas/{component}", "components": _COMPONENTS}
    _NULLABLE(schema, format_checker=_formats).validate(body)


def _timestamps(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "facets":  # facets are served as the producer sent them
                yield from _timestamps(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _timestamps(v, key)
    elif isinstance(value, str) and (key.endswith("At") or key.endswith("Time")):
        yield key, value


def test_answers_validate_against_marquez_openapi_schemas(client):
    _load(client)
    love = quote("lovematch/photos", safe="")
    run = client.get("/api/v1/namespaces/ml-pipeline/jobs/train_model.train").json()["latestRun"]["id"]
    version = client.get("/api/v1/namespaces/models/datasets/face-embedder").json()["currentVersion"]
    checks = [
        ("/api/v1/namespaces", "NamespaceList"),
        ("/api/v1/namespaces/curated", "Namespace"),
        ("/api/v1/namespaces/partner-drops/datasets", "DatasetList"),
        (f"/api/v1/namespaces/partner-drops/datasets/{love}", "Dataset"),
        ("/api/v1/namespaces/models/datasets/face-embedder/versions", "DatasetVersionList"),
        (f"/api/v1/namespaces/models/datasets/face-embedder/versions/{version}", "DatasetVersion"),
        ("/api/v1/namespaces/ml-pipeline/jobs", "JobList"),
        ("/api/v1/namespaces/ml-pipeline/jobs/train_model.train", "Job"),
        ("/api/v1/namespaces/ml-pipeline/jobs/train_model.train/runs", "RunList"),
        (f"/api/v1/jobs/runs/{run}", "Run"),
        ("/api/v1/events/lineage", "LineageEventList"),
        ("/api/v1/lineage?nodeId=dataset:curated:training.face_photos_v1", "LineageGraph"),
    ]
    for path, component in checks:
        r = client.get(path)
        assert r.status_code == 200, path
        assert_marquez_shape(r.json(), component)
    # GraphNode.data is a oneOf that a discriminator resolves; jsonschema has no discriminator.
    for node in client.get("/api/v1/lineage", params={"nodeId": "dataset:curated:training.face_photos_v1"}).json()["graph"]:
        assert_marquez_shape(node["data"], "Dataset" if node["type"] == "DATASET" else "Job")


def test_a_wrong_timestamp_format_fails_the_shape_check():
    # The oracle above can fail: `+00:00` and missing microseconds are not the one format.
    body = {"name": "n", "createdAt": "2026-11-01T02:00:00+00:00", "updatedAt": "2026-11-01T02:00:00.000000Z", "ownerName": "x"}
    with pytest.raises(jsonschema.ValidationError):
        assert_marquez_shape(body, "Namespace")


def test_every_timestamp_in_every_answer_has_one_format(client):
    _load(client)
    run = run_id("ml-pipeline:train_model.train", 1)
    paths = ["/api/v1/namespaces", "/api/v1/namespaces/curated/datasets", "/api/v1/namespaces/ml-pipeline/jobs",
             "/api/v1/namespaces/ml-pipeline/jobs/train_model.train/runs", f"/api/v1/jobs/runs/{run}",
             "/api/v1/namespaces/models/datasets/face-embedder/versions",
             "/api/v1/lineage?nodeId=job:ml-pipeline:train_model.train"]
    seen = 0
    for path in paths:
        for key, value in _timestamps(client.get(path).json()):
            assert ONE_FORMAT.match(value), (path, key, value)
            seen += 1
    assert seen > 20


def _job_event(name: str, job_facets: dict, at: datetime) -> dict:
    ev = run_event("COMPLETE", ("types", name), str(uuid.uuid4()), [], [dataset("types", f"{name}.out")], at)
    ev["job"]["facets"] = job_facets
    return ev


def test_job_type_uses_marquez_values(client):
    at = datetime(2026, 11, 2, tzinfo=timezone.utc)
    jt = lambda **body: {"jobType": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", **body}}  # noqa: E731
    events = [
        _job_event("stream", jt(processingType="STREAMING", integration="FLINK", jobType="JOB"), at),
        _job_event("service", jt(processingType="BATCH", integration="CUSTOM", jobType="SERVICE"), at),
        _job_event("task", jt(processingType="BATCH", integration="AIRFLOW", jobType="TASK"), at),
        _job_event("plain", {}, at),
    ]
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 4
    jobs = {j["name"]: j["type"] for j in client.get("/api/v1/namespaces/types/jobs").json()["jobs"]}
    assert jobs == {"stream": "STREAM", "service": "SERVICE", "task": "BATCH", "plain": "BATCH"}
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:types:stream"}).json()["graph"]
    assert {n["id"]: n["data"].get("type") for n in graph}["job:types:stream"] == "STREAM"


def test_run_dataset_versions_carry_their_version(client):
    _load(client)
    curate = client.get(f"/api/v1/jobs/runs/{run_id('ml-pipeline:build_training_set.curate', 1)}").json()
    train = client.get(f"/api/v1/jobs/runs/{run_id('ml-pipeline:train_model.train', 1)}").json()
    ingest = client.get(f"/api/v1/jobs/runs/{run_id('ml-pipeline:ingest_partner_drop.acme', 1)}").json()
    written = curate["outputDatasetVersions"][0]["datasetVersionId"]
    assert set(written) == {"namespace", "name", "version"}
    # The version the curate run wrote is the one the train run read, and the dataset's current one.
    assert train["inputDatasetVersions"][0]["datasetVersionId"] == written
    current = client.get("/api/v1/namespaces/curated/datasets/training.face_photos_v1").json()["currentVersion"]
    assert current == written["version"]
    ver = client.get(f"/api/v1/namespaces/curated/datasets/training.face_photos_v1/versions/{written['version']}").json()
    assert ver["id"] == written and ver["createdByRun"]["id"] == curate["id"]
    # A partner drop no recorded run wrote still has a version, and it resolves.
    origin = ingest["inputDatasetVersions"][0]["datasetVersionId"]
    assert origin["name"] == "acme/photos" and uuid.UUID(origin["version"])
    r = client.get(f"/api/v1/namespaces/partner-drops/datasets/{quote('acme/photos', safe='')}/versions/{origin['version']}")
    assert r.status_code == 200 and r.json()["createdByRun"] is None
    assert client.get(f"/api/v1/namespaces/partner-drops/datasets/{quote('acme/photos', safe='')}/versions/{uuid.uuid4()}").status_code == 404


def _many_runs(client, n: int) -> list[str]:
    t0 = datetime(2026, 11, 3, tzinfo=timezone.utc)
    events = []
    for i in range(n):
        # Pairs of runs share a start time, so the key needs its tie-breaker.
        events += run_pair(("paging", "job"), i, [], [dataset("paging", "out")], t0 + timedelta(minutes=i // 2))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2 * n
    return [run_id("paging:job", i) for i in range(n)]


def _all_pages(client, path: str, key: str, limit: int, **extra) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **extra, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, params=params).json()
        items += body[key]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            return items
        assert pages < 100


def test_runs_versions_and_events_page_by_key_without_gaps_or_repeats(client):
    ids = _many_runs(client, 25)
    runs = _all_pages(client, "/api/v1/namespaces/paging/jobs/job/runs", "runs", 10)
    assert sorted(r["id"] for r in runs) == sorted(ids)
    assert [r["createdAt"] for r in runs] == sorted((r["createdAt"] for r in runs), reverse=True)
    versions = _all_pages(client, "/api/v1/namespaces/paging/datasets/out/versions", "versions", 7)
    assert len({v["version"] for v in versions}) == len(versions) == 25
    events = _all_pages(client, "/api/v1/events/lineage", "events", 9)
    assert len(events) == 50 and len({(e["run"]["runId"], e["eventType"]) for e in events}) == 50
    asc = _all_pages(client, "/api/v1/events/lineage", "events", 9, sortDirection="asc")
    assert [e["eventTime"] for e in asc] == sorted(e["eventTime"] for e in events)


def test_a_page_by_key_is_not_shifted_by_newer_runs(client):
    _many_runs(client, 6)
    first = client.get("/api/v1/namespaces/paging/jobs/job/runs", params={"limit": 3}).json()
    # A newer run arrives between two page requests: offset paging would repeat an item.
    late = run_pair(("paging", "job"), 99, [], [], datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert client.post("/api/v1/lineage/batch", json=late).json()["stored"] == 2
    second = client.get("/api/v1/namespaces/paging/jobs/job/runs", params={"limit": 3, "cursor": first["nextCursor"]}).json()
    assert not {r["id"] for r in first["runs"]} & {r["id"] for r in second["runs"]}
    assert len(second["runs"]) == 3 and second["nextCursor"] is None and second["totalCount"] == 7


def test_bad_cursors_are_400_naming_the_parameter(client):
    _many_runs(client, 3)
    path = "/api/v1/namespaces/paging/jobs/job/runs"
    good = client.get(path, params={"limit": 1}).json()["nextCursor"]
    for bad in ("x", "!!!", "WyJub3QiXQ", good[:-3], "W251bGwsbnVsbF0"):
        r = client.get(path, params={"cursor": bad})
        assert r.status_code == 400 and r.json()["message"].startswith("cursor:"), bad
    r = client.get(path, params={"cursor": good, "offset": 2})
    assert r.status_code == 400 and r.json()["message"].startswith("offset:")
    # A runs cursor handed to the events list is refused, not a 500.
    assert client.get("/api/v1/events/lineage", params={"cursor": good}).status_code == 400


def test_total_count_is_the_number_matching_on_every_list_even_past_the_last_page(client):
    _load(client)
    lists = {
        "/api/v1/namespaces": ("namespaces", 5),
        "/api/v1/namespaces/partner-drops/datasets": ("datasets", 2),
        "/api/v1/namespaces/ml-pipeline/jobs": ("jobs", 4),
        "/api/v1/namespaces/ml-pipeline/jobs/train_model.train/runs": ("runs", 1),
        "/api/v1/namespaces/models/datasets/face-embedder/versions": ("versions", 1),
        "/api/v1/events/lineage": ("events", 8),
    }
    for path, (key, n) in lists.items():
        for offset in (0, 1, n, n + 1000, 2**63 - 1):
            body = client.get(path, params={"offset": offset, "limit": 1}).json()
            assert body["totalCount"] == n, (path, offset)
            assert len(body[key]) == (1 if offset < n else 0), (path, offset)


def test_growing_lists_count_exactly_up_to_the_cap_then_estimate(client, monkeypatch):
    from lineage.store import reads

    _load(client)
    monkeypatch.setattr(reads, "COUNT_CAP", 5)
    body = client.get("/api/v1/events/lineage", params={"limit": 2}).json()
    assert body["totalCountExact"] is False and body["totalCount"] >= 6
    small = client.get("/api/v1/events/lineage", params={"after": "2026-11-01T04:00:00Z"}).json()
    assert small["totalCountExact"] is True and small["totalCount"] == 2


@pytest.mark.parametrize("namespace, name", [
    ("s3://bucket:9000/zone", "acme/photos"),
    ("postgres://db:5432", "public.a:b"),
    ("pct", "50%off/%2F"),
    ("pct", "50%off//"),
    ("sp ace", "ünï cödé/名前"),
])
def test_names_with_slash_colon_and_percent_round_trip(client, live_server, admin_token, namespace, name):
    from marquez_client import MarquezClient

    events = run_pair((namespace, f"job/{name}"), 1, [], [dataset(namespace, name)], datetime(2026, 11, 4, tzinfo=timezone.utc))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    ns, ds, job = (quote(x, safe="") for x in (namespace, name, f"job/{name}"))
    assert client.get(f"/api/v1/namespaces/{ns}").json()["name"] == namespace
    assert client.get(f"/api/v1/namespaces/{ns}/datasets/{ds}").json()["name"] == name
    assert client.get(f"/api/v1/namespaces/{ns}/datasets/{ds}/versions").json()["totalCount"] == 1
    assert client.get(f"/api/v1/namespaces/{ns}/jobs/{job}").json()["name"] == f"job/{name}"
    assert client.get(f"/api/v1/namespaces/{ns}/jobs/{job}/runs").json()["totalCount"] == 1
    mq = MarquezClient(url=live_server.url, api_key=admin_token)
    assert mq.get_dataset(namespace, name)["id"] == {"namespace": namespace, "name": name}


def test_an_encoded_slash_is_not_a_literal_percent_2f(client):
    at = datetime(2026, 11, 4, tzinfo=timezone.utc)
    events = run_pair(("ns", "j"), 1, [], [dataset("ns", "x/y"), dataset("ns", "x%2Fy")], at)
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    assert client.get("/api/v1/namespaces/ns/datasets/x%2Fy").json()["name"] == "x/y"
    assert client.get("/api/v1/namespaces/ns/datasets/x%252Fy").json()["name"] == "x%2Fy"
    # An unencoded slash is two segments: no such route.
    r = client.get("/api/v1/namespaces/ns/datasets/x/y")
    assert r.status_code == 404 and set(r.json()) == {"code", "message"}


def test_unknown_routes_and_methods_answer_code_and_message(client):
    r = client.get("/api/v1/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == 404 and "/api/v1/no/such/route" in r.json()["message"]
    assert "detail" not in r.json()
    r = client.delete("/api/v1/namespaces")
    assert r.status_code == 405 and r.json()["code"] == 405


def test_times_before_year_1000_keep_the_one_format_and_their_cursors_page(client):
    # Years 1-999 fit PostgreSQL and Python, so ingest stores them; glibc's strftime("%Y")
    # writes such a year without padding ("50-06-01..."), which is not ISO 8601 and made the
    # server refuse its own nextCursor, so paging stopped dead at the first old item.
    years = [50, 999, 2026]
    events = []
    for i, year in enumerate(years):
        events += run_pair(("old", "job"), i, [], [dataset("old", "out")], datetime(year, 6, 1, tzinfo=timezone.utc))
    assert client.post("/api/v1/lineage/batch", json=events).json()["stored"] == 6
    for path in ("/api/v1/namespaces", "/api/v1/namespaces/old/jobs", "/api/v1/namespaces/old/jobs/job/runs",
                 "/api/v1/namespaces/old/datasets", "/api/v1/namespaces/old/datasets/out/versions",
                 f"/api/v1/jobs/runs/{run_id('old:job', 0)}", "/api/v1/lineage?nodeId=job:old:job"):
        for key, value in _timestamps(client.get(path).json()):
            assert ONE_FORMAT.match(value), (path, key, value)
    runs = _all_pages(client, "/api/v1/namespaces/old/jobs/job/runs", "runs", 1)
    assert [r["id"] for r in runs] == [run_id("old:job", i) for i in (2, 1, 0)]
    assert runs[-1]["createdAt"] == "0050-06-01T00:00:00.000000Z"
    versions = _all_pages(client, "/api/v1/namespaces/old/datasets/out/versions", "versions", 1)
    assert len({v["version"] for v in versions}) == 3
    for direction in ("asc", "desc"):
        events = _all_pages(client, "/api/v1/events/lineage", "events", 1, sortDirection=direction)
        assert len(events) == 6, direction


def test_a_cursor_only_continues_the_list_and_direction_it_came_from(client):
    # Versions and events both key on (time, bigint id): a cursor of one used to be taken by
    # the other (and a descending events cursor by an ascending request), silently answering
    # a page that continues nothing.  Each cursor now names its list and direction.
    _many_runs(client, 3)
    versions = "/api/v1/namespaces/paging/datasets/out/versions"
    runs = "/api/v1/namespaces/paging/jobs/job/runs"
    events = "/api/v1/events/lineage"
    cursors = {
        "versions": client.get(versions, params={"limit": 1}).json()["nextCursor"],
        "runs": client.get(runs, params={"limit": 1}).json()["nextCursor"],
        "desc": client.get(events, params={"limit": 1}).json()["nextCursor"],
        "asc": client.get(events, params={"limit": 1, "sortDirection": "asc"}).json()["nextCursor"],
    }
    assert all(cursors.values())
    own = {"versions": (versions, {}), "runs": (runs, {}), "desc": (events, {}), "asc": (events, {"sortDirection": "asc"})}
    for kind, cursor in cursors.items():
        for other, (path, extra) in own.items():
            r = client.get(path, params={"limit": 1, "cursor": cursor, **extra})
            if other == kind:
                assert r.status_code == 200, (kind, r.text)
            else:
                assert r.status_code == 400 and r.json()["message"].startswith("cursor:"), (kind, other, r.text)
