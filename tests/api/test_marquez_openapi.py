"""Every Marquez-compatible route's answers, validated against Marquez's own OpenAPI document.

Two stores: the demo pipeline's events (``example_pipeline.sample.ml_pipeline_sample``, the events the
demo's DAGs emit) with tags, a soft delete and column lineage added; and a store filled by the
benchmark workload generator (``benchmarks/workload.py``, a small size).  For each store the
test lists every GET route of the Marquez routers, calls each with real parameters and
validates the answer against the operation's 200 schema in ``tests/data/marquez/openapi.yml``
(``$ref`` resolved, types, ``required`` and ``enum`` checked, nulls allowed as Marquez serves
them; see ``test_marquez.py``).  Routes the document does not describe (``/jobs`` across
namespaces, ``/stats/*``, ``/api/v2beta/search/*``) are checked against the component Marquez
serves there where it has one (``JobList``), and otherwise listed as undocumented; the counts
are printed and asserted so that no route is skipped silently.

Errata applied to Marquez's document (each one where Marquez's own server answers otherwise):
``GraphNode.type`` also takes ``DATASET_FIELD`` (column-lineage nodes); ``FacetsResult.facets``
is a map of facets, not one facet; ``SearchResult`` fields declared ``type:`` with no value are
untyped.
"""

from __future__ import annotations

import copy
import re
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from lineage.samples import dataset, run_pair
from example_pipeline.sample import ml_pipeline_sample
from tests.api import test_marquez as tm

_SPEC = tm._OPENAPI
_schemas = tm._COMPONENTS["schemas"]
_schemas["NodeType"]["enum"] = ["JOB", "DATASET", "DATASET_FIELD"]
_schemas["FacetsResult"]["properties"]["facets"] = {"type": "object", "additionalProperties": {"type": "object"}}
for prop in _schemas["SearchResult"]["properties"].values():
    if "type" in prop and prop["type"] is None:
        del prop["type"]

# Routes this server adds that Marquez's document lacks, with the component checked (or None).
UNDOCUMENTED = {"/jobs": "JobList", "/stats/lineage-events": None, "/stats/{what}": None,
                "/api/v2beta/search/jobs": None, "/api/v2beta/search/datasets": None, "/runs/{id}": "Run", "/events": None}


def _operation_schema(path: str) -> dict | None:
    op = _SPEC["paths"].get(path, {}).get("get")
    if op is None:
        return None
    content = op["responses"]["200"].get("content", {}).get("application/json")
    return content["schema"] if content else None


def _validate(body, schema: dict) -> None:
    tm._NULLABLE({**copy.deepcopy(schema), "components": tm._COMPONENTS}, format_checker=tm._formats).validate(body)


def _marquez_routes(app) -> list[str]:
    from lineage.api import marquez, marquez_more

    paths = []
    for r in marquez.router.routes + marquez_more.router.routes + marquez_more.v2_router.routes:
        if "GET" in r.methods:
            paths.append(r.path)
    paths.append("/api/v1/lineage")
    return sorted(set(paths))


def _fill_demo(client) -> dict:
    assert client.post("/api/v1/lineage/batch", json=ml_pipeline_sample()).json()["stored"] == 8
    a = dataset("cl", "a", [("id", "int")])
    b = dataset("cl", "b", [("id", "int")])
    b["facets"]["columnLineage"] = {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
                                    "fields": {"id": {"inputFields": [{"namespace": "cl", "name": "a", "field": "id"}]}}}
    assert client.post("/api/v1/lineage/batch", json=run_pair(("cl", "j"), 1, [a], [b],
                                                              datetime(2026, 11, 5, tzinfo=timezone.utc))).json()["stored"] == 2
    client.put("/api/v1/tags/PII", json={"description": "personal"})
    client.post("/api/v1/namespaces/curated/datasets/training.face_photos_v1/tags/PII")
    client.post("/api/v1/namespaces/ml-pipeline/jobs/train_model.train/tags/PII")
    client.delete("/api/v1/namespaces/raw-zone/datasets/raw.acme_photos")
    return {"namespace": "ml-pipeline", "dataset_ns": "curated", "dataset": "training.face_photos_v1",
            "job": "train_model.train", "field": "datasetField:cl:b:id"}


def _fill_workload(client) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from workload import Workload

    wl = Workload(layers=4, width=2, runs=2)
    events = list(wl.events(0, 2 * wl.events_per_pipeline))
    r = client.post("/api/v1/lineage/batch", json=events).json()
    assert r["stored"] == len(events) and not r["rejected"]
    pipe = wl.pipeline(1)
    job, out = pipe.jobs[-1], pipe.jobs[-1].outputs[0]
    # The workload sends no columnLineage facet: one more event of its last job adds one.
    src = job.inputs[0]
    ev = copy.deepcopy(events[-1])
    ev["run"]["runId"] = str(uuid.uuid4())
    target = next(o for o in ev["outputs"] if o["name"] == out.name)
    target["facets"]["columnLineage"] = {
        "_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
        "fields": {out.columns[0][0]: {"inputFields": [{"namespace": src.namespace, "name": src.name, "field": src.columns[0][0]}]}}}
    assert client.post("/api/v1/lineage", json=ev).status_code == 201
    assert client.put("/api/v1/tags/GOLD").status_code == 200
    assert client.post(f"/api/v1/namespaces/{quote(job.namespace, safe='')}/jobs/{job.name}/tags/GOLD").status_code == 200
    return {"namespace": job.namespace, "dataset_ns": out.namespace, "dataset": out.name, "job": job.name,
            "field": f"datasetField:{out.namespace}:{out.name}:{out.columns[0][0]}"}


def _url(client, path: str, k: dict) -> str:
    q = lambda s: quote(s, safe="")  # noqa: E731
    ds_path = f"/api/v1/namespaces/{q(k['dataset_ns'])}/datasets/{q(k['dataset'])}"
    job_path = f"/api/v1/namespaces/{q(k['namespace'])}/jobs/{q(k['job'])}"
    run = client.get(job_path).json()["latestRun"]["id"]
    version = client.get(ds_path).json()["currentVersion"]
    source = client.get("/api/v1/sources").json()["sources"][0]["name"]
    values = {"namespace": q(k["namespace"]), "dataset": q(k["dataset"]), "job": q(k["job"]), "id": run,
              "version": version, "source": q(source), "what": "jobs"}
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    if "/datasets" in path:
        url = url.replace(f"/namespaces/{q(k['namespace'])}/datasets", f"/namespaces/{q(k['dataset_ns'])}/datasets")
    params = {
        "/api/v1/jobs/runs/{id}/facets": "?type=job",
        "/api/v1/column-lineage": f"?nodeId={q(k['field'])}&withDownstream=true",
        "/api/v1/lineage": f"?nodeId={q('dataset:' + k['dataset_ns'] + ':' + k['dataset'])}",
        "/api/v1/search": "?q=a", "/api/v2beta/search/jobs": "?q=a", "/api/v2beta/search/datasets": "?q=a",
        "/api/v1/stats/lineage-events": "?period=WEEK&timezone=Europe/Paris", "/api/v1/stats/{what}": "?period=DAY",
    }
    return url + params.get(path, "")


@pytest.mark.parametrize("store", ["demo", "workload"])
def test_every_marquez_route_answers_in_marquez_shape(app, client, store, capsys):
    keys = _fill_demo(client) if store == "demo" else _fill_workload(client)
    routes = _marquez_routes(app)
    checked, undocumented, responses = [], [], 0
    for path in routes:
        url = _url(client, path, keys)
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        spec_path = path.removeprefix("/api/v1")
        schema = _operation_schema(spec_path)
        if schema is None and UNDOCUMENTED.get(spec_path):
            schema = {"$ref": f"#/components/schemas/{UNDOCUMENTED[spec_path]}"}
        if schema is None:
            assert spec_path in UNDOCUMENTED, f"{path}: neither in Marquez's document nor listed as undocumented"
            undocumented.append(path)
            continue
        body = r.json()
        _validate(body, schema)
        responses += 1
        # Lists: every item again on its own (an empty list would validate anything).
        for key in ("datasets", "jobs", "runs", "versions", "namespaces", "tags", "sources", "results", "graph"):
            if isinstance(body, dict) and key in body and ("totalCount" in body or key == "graph"):
                assert body[key], (url, key)
        if spec_path == "/lineage":
            for node in body["graph"]:
                _validate(node["data"], {"$ref": f"#/components/schemas/{'Dataset' if node['type'] == 'DATASET' else 'Job'}"})
                responses += 1
        checked.append(path)
    print(f"\n[{store}] Marquez routes: {len(routes)} GET routes called; {len(checked)} validated against "
          f"openapi.yml with {responses} responses/objects; {len(undocumented)} not in Marquez's document: {undocumented}")
    assert len(checked) + len(undocumented) == len(routes) and len(checked) >= 20
