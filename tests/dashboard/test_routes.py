"""The dashboard's page, assets and JSON routes over real HTTP and a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from lineage.samples import dataset, run_event

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _emit(client, job, inputs, outputs, at=T0, facets=None):
    ev = run_event("COMPLETE", ("pipe", job), str(uuid.uuid4()), [dataset(*i) for i in inputs], [dataset(*o) for o in outputs], at=at,
                   extra_run_facets=facets)
    r = client.post("/api/v1/lineage", json=ev)
    assert r.status_code == 201, r.text


@pytest.fixture
def chain(client):
    """drops:src -> pipe:ingest -> raw:a -> pipe:build -> cur:set ; cur:set read by pipe:gate (blocked) and pipe:other."""
    _emit(client, "ingest", [("drops", "src")], [("raw", "a")])
    _emit(client, "build", [("raw", "a")], [("cur", "set")], at=T0 + timedelta(days=2))
    gate = {"contractGate": {"_producer": "https://example.com/t", "_schemaURL": "https://example.com/s#/x", "allowed": False,
                             "purpose": "train_ai_system", "reasons": ["[no_contract] no contract covers `drops:src`"]}}
    _emit(client, "gate", [("cur", "set")], [], at=T0 + timedelta(days=3), facets=gate)
    _emit(client, "other", [("cur", "set")], [("cur", "copy")], at=T0 + timedelta(days=3))
    return client


def _ids(body):
    return {n["id"] for n in body["nodes"]}


def test_the_page_needs_no_credential_and_forbids_foreign_and_inline_script(anon_client):
    r = anon_client.get("/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script defer src=\"static/app.js\"></script>" in r.text and "http" not in r.text.split("<body>")[0].replace("http-equiv", "")
    assert anon_client.get("/ui/static/app.js").status_code == 200
    assert anon_client.get("/").headers["location"] == "/ui/"


def test_the_static_mount_serves_only_its_own_files(anon_client):
    for path in ("/ui/static/../__init__.py", "/ui/static/%2e%2e/routes.py", "/ui/static/..%2Froutes.py", "/ui/static/nope.js"):
        r = anon_client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "def " not in r.text


def test_dashboard_data_needs_the_apis_credential(anon_client, tokens):
    assert anon_client.get("/api/v1/dashboard/search", params={"q": "x"}).status_code == 401
    emitter = {"Authorization": f"Bearer {tokens('e', 'emitter')}"}
    assert anon_client.get("/api/v1/dashboard/search", params={"q": "x"}, headers=emitter).status_code == 403
    viewer = {"Authorization": f"Bearer {tokens('v', 'viewer')}"}
    assert anon_client.get("/api/v1/dashboard/search", params={"q": "x"}, headers=viewer).status_code == 200


def test_the_graph_at_each_depth_is_the_walk_at_that_depth(chain):
    for depth in range(4):
        for direction, start in (("upstream", "dataset:cur:set"), ("downstream", "dataset:drops:src")):
            mine = chain.get("/api/v1/dashboard/graph", params={"nodeId": start, "direction": direction, "depth": depth}).json()
            walk = chain.get(f"/api/v1/lineage/{direction}", params={"nodeId": start, "depth": depth}).json()
            assert _ids(mine) == {n["id"] for n in walk["nodes"]}, (direction, depth)
            assert {(e["source"], e["target"]) for e in mine["edges"]} == {(e["origin"], e["destination"]) for e in walk["edges"]}


def test_the_graph_marks_the_blocked_run_the_uncontracted_origin_and_positions_by_layer(chain):
    body = chain.get("/api/v1/dashboard/graph", params={"nodeId": "dataset:cur:set", "direction": "both", "depth": 3}).json()
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["job:pipe:gate"]["blocked"] is True and nodes["job:pipe:other"]["blocked"] is False
    assert nodes["dataset:drops:src"]["status"] == "missing", "an origin no contract covers"
    assert nodes["dataset:raw:a"]["status"] == "derived"
    for e in body["edges"]:
        assert nodes[e["source"]]["x"] < nodes[e["target"]]["x"], e


def test_as_of_answers_from_the_edges_recorded_by_then(chain):
    # Every edge was recorded "now" (the store's clock), so a date before today shows the start alone.
    past = chain.get("/api/v1/dashboard/graph", params={"nodeId": "dataset:cur:set", "direction": "upstream", "asOf": "2020-01-01T00:00:00Z"}).json()
    assert _ids(past) == {"dataset:cur:set"}
    now = chain.get("/api/v1/dashboard/graph", params={"nodeId": "dataset:cur:set", "direction": "upstream",
                                                       "asOf": (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()}).json()
    assert "dataset:drops:src" in _ids(now)


def test_bad_parameters_are_a_400_naming_the_field(chain):
    cases = [
        ({"nodeId": "dataset:cur:set", "direction": "sideways"}, "query.direction"),
        ({"nodeId": "dataset:cur:set", "depth": "-1"}, "query.depth"),
        ({"nodeId": "dataset:cur:set", "cap": "0"}, "query.cap"),
        ({"nodeId": "dataset:cur:set", "expand": "not-a-node"}, "expand[0]"),
        ({"nodeId": "dataset:cur:set", "asOf": "yesterday"}, "query.asOf"),
        ({"nodeId": "dataset:cur:\x00"}, "query.nodeId"),
        ({"nodeId": "table:cur:set"}, "nodeId"),
    ]
    for params, field in cases:
        r = chain.get("/api/v1/dashboard/graph", params=params)
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    assert chain.get("/api/v1/dashboard/graph", params={"nodeId": "dataset:cur:nope"}).status_code == 404
    assert chain.get("/api/v1/dashboard/graph", params={"nodeId": "dataset:cur:set", "expand": [f"dataset:x:{i}" for i in range(51)]}).status_code == 400


def test_dataset_page_data_lists_its_runs_and_gate_verdicts(chain):
    body = chain.get("/api/v1/dashboard/dataset", params={"nodeId": "dataset:cur:set"}).json()
    roles = {(r["job"]["name"], r["role"]) for r in body["runs"]}
    assert roles == {("build", "output"), ("gate", "input"), ("other", "input")}
    gate = next(r for r in body["runs"] if r["job"]["name"] == "gate")["gate"]
    assert gate["allowed"] is False and gate["reasons"][0]["code"] == "no_contract"
    assert body["contracts"] == []
    assert chain.get("/api/v1/dashboard/dataset", params={"nodeId": "job:pipe:gate"}).status_code == 400


def test_run_page_data_has_the_timeline_and_the_gate(chain):
    runs = chain.get("/api/v1/namespaces/pipe/jobs/gate/runs").json()["runs"]
    body = chain.get(f"/api/v1/dashboard/runs/{runs[0]['id']}").json()
    assert body["job"] == {"namespace": "pipe", "name": "gate"}
    assert [e["eventType"] for e in body["timeline"]] == ["COMPLETE"]
    assert body["gate"]["allowed"] is False
    assert chain.get(f"/api/v1/dashboard/runs/{uuid.uuid4()}").status_code == 404
    assert chain.get("/api/v1/dashboard/runs/not-a-uuid").status_code == 400


def test_search_finds_names_across_namespaces_and_treats_wildcards_as_text(client):
    _emit(client, "j", [("ns1", "photos_100%"), ("ns2", "photos_a")], [("ns3", "photosXa")])
    names = lambda q: [(r["namespace"], r["name"]) for r in client.get("/api/v1/dashboard/search", params={"q": q}).json()["results"]]  # noqa: E731
    assert set(names("photos")) == {("ns1", "photos_100%"), ("ns2", "photos_a"), ("ns3", "photosXa")}
    assert names("%") == [("ns1", "photos_100%")]
    assert names("s_a") == [("ns2", "photos_a")], "`_` is a character, not a wildcard"
    assert names("NS2") == [("ns2", "photos_a")]
    assert client.get("/api/v1/dashboard/search", params={"q": ""}).status_code == 400
    assert client.get("/api/v1/dashboard/search", params={"q": "a\x00"}).status_code == 400
