"""Graph walks on a real store: direction, depth, as-of, and the up/down symmetry property."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lineage.errors import NotFound
from lineage.events import parse_event, parse_node_id
from lineage.samples import dataset, run_pair
from example_pipeline.sample import ml_pipeline_sample
from lineage.store.graph import downstream, marquez_lineage, original_sources, upstream
from lineage.store.ingest import ingest_events

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _load(db, events):
    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in events])


def _chain(n: int, ns: str = "chain") -> list[dict]:
    """d0 -> job1 -> d1 -> job2 -> ... -> dn"""
    events = []
    for i in range(1, n + 1):
        events += run_pair((ns, f"job{i}"), 1, [dataset(ns, f"d{i-1}")], [dataset(ns, f"d{i}")], T0 + timedelta(minutes=i))
    return events


def test_model_upstream_reaches_both_partner_drops(db):
    _load(db, ml_pipeline_sample())
    with db.connection() as conn:
        g = upstream(conn, parse_node_id("dataset:models:face-embedder"))
    assert original_sources(g) == ["dataset:partner-drops:acme/photos", "dataset:partner-drops:lovematch/photos"]
    assert {"origin": "dataset:curated:training.face_photos_v1", "destination": "job:ml-pipeline:train_model.train"} in g.edges


def test_downstream_is_directional(db):
    _load(db, ml_pipeline_sample())
    with db.connection() as conn:
        g = downstream(conn, parse_node_id("dataset:partner-drops:lovematch/photos"))
    ids = g.node_ids()
    assert "dataset:models:face-embedder" in ids
    # the sibling source feeds the same job but is not downstream of lovematch
    assert "dataset:partner-drops:acme/photos" not in ids
    assert "dataset:raw-zone:raw.acme_photos" not in ids


def test_depth_counts_jobs(db):
    _load(db, _chain(6))
    with db.connection() as conn:
        for depth in range(0, 7):
            g = downstream(conn, parse_node_id("dataset:chain:d0"), depth)
            assert {n["id"] for n in g.nodes if n["type"] == "job"} == {f"job:chain:job{i}" for i in range(1, depth + 1)}
            assert len(g.edges) == 2 * depth
        g = upstream(conn, parse_node_id("job:chain:job6"), 2)
        assert {n["name"] for n in g.nodes if n["type"] == "job"} == {"job6", "job5", "job4"}


def test_unknown_node_is_not_found(db):
    with db.connection() as conn:
        with pytest.raises(NotFound, match="dataset `x:y` not found"):
            upstream(conn, parse_node_id("dataset:x:y"))


def test_as_of_hides_edges_recorded_later(db):
    _load(db, _chain(2))
    with db.connection() as conn:
        cut = conn.execute("SELECT now()").fetchone()[0]
    _load(db, run_pair(("chain", "job3"), 1, [dataset("chain", "d2")], [dataset("chain", "d3")], T0))
    with db.connection() as conn:
        now = downstream(conn, parse_node_id("dataset:chain:d0"))
        then = downstream(conn, parse_node_id("dataset:chain:d0"), as_of=cut)
    assert "dataset:chain:d3" in now.node_ids()
    assert "dataset:chain:d3" not in then.node_ids()
    assert "dataset:chain:d2" in then.node_ids()


def test_cycles_terminate(db):
    events = run_pair(("c", "a"), 1, [dataset("c", "x")], [dataset("c", "y")], T0)
    events += run_pair(("c", "b"), 1, [dataset("c", "y")], [dataset("c", "x")], T0)
    _load(db, events)
    with db.connection() as conn:
        g = downstream(conn, parse_node_id("dataset:c:x"), 50)
    assert g.node_ids() == {"dataset:c:x", "dataset:c:y", "job:c:a", "job:c:b"}


def test_marquez_shape_has_in_and_out_edges(db):
    _load(db, ml_pipeline_sample())
    with db.connection() as conn:
        out = marquez_lineage(conn, parse_node_id("dataset:curated:training.face_photos_v1"), 20)
    nodes = {n["id"]: n for n in out["graph"]}
    curated = nodes["dataset:curated:training.face_photos_v1"]
    assert curated["type"] == "DATASET"
    assert [e["origin"] for e in curated["inEdges"]] == ["job:ml-pipeline:build_training_set.curate"]
    assert [e["destination"] for e in curated["outEdges"]] == ["job:ml-pipeline:train_model.train"]
    assert curated["data"]["fields"][0]["name"] == "photo_uri"
    assert nodes["job:ml-pipeline:train_model.train"]["data"]["latestRunState"] == "COMPLETED"  # Marquez's run state


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_x_upstream_of_y_iff_y_downstream_of_x(db, seed):
    rng = random.Random(seed)
    ns = f"p{uuid.uuid4().hex[:8]}"
    n = 8
    events = []
    for j in range(n):
        ins = [dataset(ns, f"d{rng.randrange(n)}") for _ in range(rng.randint(1, 2))]
        events += run_pair((ns, f"j{j}"), 1, ins, [dataset(ns, f"d{rng.randrange(n)}")], T0)
    _load(db, events)
    with db.connection() as conn:
        names = [r[0] for r in conn.execute(
            "SELECT d.name FROM datasets d JOIN namespaces n ON n.id = d.namespace_id WHERE n.name = %s", (ns,))]
        down = {x: downstream(conn, parse_node_id(f"dataset:{ns}:{x}"), 20).node_ids() for x in names}
        up = {y: upstream(conn, parse_node_id(f"dataset:{ns}:{y}"), 20).node_ids() for y in names}
    for x in names:
        for y in names:
            assert (f"dataset:{ns}:{y}" in down[x]) == (f"dataset:{ns}:{x}" in up[y])
