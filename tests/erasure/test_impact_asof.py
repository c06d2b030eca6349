"""Impact and point-in-time queries on a real store.

Impact: every dataset, job, run and model downstream at any depth, one query; a model is what
a job the gate allowed for training wrote.  As of: the graph, the runs and the governing
contract status as they had been recorded at a moment, before a later run and a later
revocation.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))

from gate_helpers import STEWARD, ingest, register  # noqa: E402

from lineage.errors import NotFound  # noqa: E402
from lineage.events import parse_node_id  # noqa: E402
from lineage.samples import dataset, run_id, run_pair  # noqa: E402
from example_pipeline.sample import ml_pipeline_sample
from lineage.store.impact import contracts_as_of, impact  # noqa: E402
from lineage.store import graph  # noqa: E402

ACME = parse_node_id("dataset:partner-drops:acme/photos")
TRAIN = "ml-pipeline:train_model.train"


def _now(db):
    with db.connection() as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def _allow_training(db, job: str = TRAIN, purpose: str = "train_ai_system", allowed: bool = True):
    from lineage.gate.decision import Decision
    from lineage.gate.service import record

    with db.connection() as conn:
        record(conn, Decision(job=job, purpose=purpose, inputs=("dataset:curated:training.face_photos_v1",), allowed=allowed))


def test_impact_lists_every_kind_at_any_depth_and_the_models_training_runs(db):
    ingest(db, ml_pipeline_sample())
    _allow_training(db)
    with db.connection() as conn:
        got = impact(conn, ACME).as_dict()
    assert got["datasets"] == ["dataset:curated:training.face_photos_v1", "dataset:models:face-embedder", "dataset:raw-zone:raw.acme_photos"]
    assert got["jobs"] == ["job:ml-pipeline:build_training_set.curate", "job:ml-pipeline:ingest_partner_drop.acme", "job:ml-pipeline:train_model.train"]
    assert {r["job"] for r in got["runs"]} == set(got["jobs"])
    assert got["counts"] == {"datasets": 3, "jobs": 3, "runs": 3, "models": 1}
    assert got["models"] == [{"id": "dataset:models:face-embedder", "trainingRuns": [run_id("ml-pipeline:train_model.train", 1)]}]


def test_no_model_without_an_allowed_training_decision(db):
    ingest(db, ml_pipeline_sample())
    _allow_training(db, allowed=False)  # a refusal is not training
    _allow_training(db, purpose="essential.service")  # nor is another purpose
    _allow_training(db, purpose="train_ai_systemx")  # nor a key that merely starts the same
    with db.connection() as conn:
        assert impact(conn, ACME).models == {}


def test_impact_survives_a_cycle_and_unknown_nodes_are_404(db):
    events = run_pair(("c", "a"), 1, [dataset("c", "x")], [dataset("c", "y")], ml_start())
    events += run_pair(("c", "b"), 1, [dataset("c", "y")], [dataset("c", "x")], ml_start())
    ingest(db, events)
    with db.connection() as conn:
        got = impact(conn, parse_node_id("dataset:c:x"))
        assert got.datasets == ["dataset:c:y"]  # x itself, written back by b, is the start
        assert got.jobs == ["job:c:a", "job:c:b"]
        with pytest.raises(NotFound):
            impact(conn, parse_node_id("dataset:c:nope"))


def ml_start():
    from datetime import datetime, timezone

    return datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_as_of_answers_as_before_a_later_run_and_a_later_revocation(db):
    from lineage.contracts import registry

    ingest(db, ml_pipeline_sample())
    register(db, "acme-stock-photos.yaml", approve_as=STEWARD)
    _allow_training(db)
    before = _now(db)
    # Later: a new job reads the model and writes a report; and the contract is revoked.
    ingest(db, run_pair(("ml-pipeline", "report"), 1, [dataset("models", "face-embedder")], [dataset("reports", "faces")], ml_start()))
    with db.connection() as conn:
        registry.revoke(conn, "acme-stock-photos", STEWARD, "partner withdrew consent")
    with db.connection() as conn:
        then, now = impact(conn, ACME, before), impact(conn, ACME)
        assert "dataset:reports:faces" in now.datasets and "dataset:reports:faces" not in then.datasets
        assert "job:ml-pipeline:report" in now.jobs and "job:ml-pipeline:report" not in then.jobs
        assert len(now.runs) == len(then.runs) + 1
        assert [c["status"] for c in contracts_as_of(conn, ACME, before)] == ["approved"]
        assert [c["status"] for c in contracts_as_of(conn, ACME)] == ["revoked"]
        # The graph walk agrees, and a node first recorded later did not exist then.
        assert "dataset:reports:faces" not in graph.downstream(conn, ACME, 20, before).node_ids()
        assert graph.downstream(conn, parse_node_id("dataset:reports:faces"), 20, before).edges == []
        with pytest.raises(NotFound):
            impact(conn, parse_node_id("dataset:reports:faces"), before)
        # Before anything was recorded, not even the source existed.
        with pytest.raises(NotFound):
            impact(conn, ACME, before - timedelta(days=3650))
        assert contracts_as_of(conn, ACME, before - timedelta(days=3650)) == []


def test_impact_over_http_with_as_of(client, db):
    ingest(db, ml_pipeline_sample())
    before = _now(db)
    ingest(db, run_pair(("ml-pipeline", "report"), 1, [dataset("models", "face-embedder")], [dataset("reports", "faces")], ml_start()))
    r = client.get("/api/v1/lineage/impact", params={"nodeId": str(ACME), "asOf": before.isoformat()})
    assert r.status_code == 200, r.text
    assert "dataset:reports:faces" not in r.json()["datasets"]
    assert r.json()["asOf"] is not None
    now = client.get("/api/v1/lineage/impact", params={"nodeId": str(ACME)}).json()
    assert "dataset:reports:faces" in now["datasets"]
    assert client.get("/api/v1/lineage/impact", params={"nodeId": "nope"}).status_code == 400
    bad = client.get("/api/v1/lineage/impact", params={"nodeId": str(ACME), "asOf": "yesterday"})
    assert bad.status_code == 400 and "asOf" in bad.text
    assert client.get("/api/v1/lineage/impact", params={"nodeId": "dataset:x:unknown"}).status_code == 404


def test_decision_log_as_of_shows_what_was_logged_by_then(client, db):
    _allow_training(db, job="ml-pipeline:first")
    between = _now(db)
    _allow_training(db, job="ml-pipeline:second")
    jobs = lambda params: [d["job"] for d in client.get("/api/v1/gate/decisions", params=params).json()["decisions"]]  # noqa: E731
    assert jobs({}) == ["ml-pipeline:second", "ml-pipeline:first"]
    assert jobs({"asOf": between.isoformat()}) == ["ml-pipeline:first"]
    assert client.get("/api/v1/gate/decisions", params={"asOf": "not a time"}).status_code == 400


def _cli(args, settings):
    import os
    import subprocess

    env = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value()}
    return subprocess.run([sys.executable, "-m", "lineage.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_impact_now_and_as_of_and_its_errors(db, settings):
    import json

    ingest(db, ml_pipeline_sample())
    register(db, "acme-stock-photos.yaml", approve_as=STEWARD)
    _allow_training(db)
    before = _now(db)
    from lineage.contracts import registry

    with db.connection() as conn:
        registry.revoke(conn, "acme-stock-photos", STEWARD, "withdrawn")
    now = _cli(["impact", str(ACME)], settings)
    assert now.returncode == 0, now.stderr
    assert "3 dataset(s), 3 job(s), 3 run(s), 1 model(s)" in now.stdout and "acme-stock-photos@3: revoked" in now.stdout
    assert "model dataset:models:face-embedder trained by" in now.stdout
    then = json.loads(_cli(["impact", str(ACME), "--as-of", before.isoformat(), "--json"], settings).stdout)
    assert [c["status"] for c in then["contracts"]] == ["approved"]
    bad = _cli(["impact", str(ACME), "--as-of", "last tuesday"], settings)
    assert bad.returncode == 2 and "--as-of" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli(["impact", "dataset:nowhere:nothing"], settings)
    assert missing.returncode == 2 and "not found" in missing.stderr
    log = _cli(["gate", "log", "--as-of", (before - timedelta(days=1)).isoformat(), "--json"], settings)
    assert log.returncode == 0 and json.loads(log.stdout) == []
