"""End to end: the DAGs run with ``dag.test()`` against a live ``lineage serve`` and real store.

Asserted from the store, not from Airflow: every transfer produced START and COMPLETE with
the right inputs and outputs and their facets; the blocked run has a FAIL event carrying the
gate's reasons; the model's upstream lineage reaches the partner drop.  A second run with the
server down and the registry unreachable shows that tasks still run, the gate still blocks,
and the spool replays every event.  No Airflow process gets the database's credentials.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from lineage.airflow import runner
from example_pipeline.drops import write_drop
from example_pipeline.pipeline import PARTNERS, job_names
from lineage.airflow.runner import NAMESPACE

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ACME, LOVE = PARTNERS["acme"], PARTNERS["lovematch"]


def _events(db) -> dict[str, list[dict]]:
    """Run events in the store, by job name, in event-time order."""
    by_job: dict[str, list[dict]] = defaultdict(list)
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT job_namespace, job_name, payload FROM raw_events WHERE kind = 'run' ORDER BY event_time, id"
        ).fetchall()
    for ns, name, payload in rows:
        assert ns == NAMESPACE
        by_job[name].append(payload)
    return by_job


def _ids(datasets: list[dict]) -> list[str]:
    return sorted(f"{d['namespace']}:{d['name']}" for d in datasets)


def _of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["eventType"] == kind]


@pytest.fixture(scope="module")
def pipeline_run(module_server, airflow_home):
    """The whole pipeline, both partners, run once for the module's tests: (result, events)."""
    settings, db, live_server = module_server
    from lineage.auth import tokens
    from example_pipeline.demo import setup_contracts, setup_people

    for p in PARTNERS.values():
        write_drop(p, settings.home)
    with db.connection() as conn:
        _, admin = tokens.create(conn, name="e2e-admin", principal="admin@tests.example", roles=["admin"], created_by="tests")
    # The demo's workflow through the HTTP API: a requester registers, two stewards approve.
    at_server = settings.model_copy(update={"url": live_server.url})
    setup_contracts(at_server, setup_people(at_server, admin))
    env = runner.airflow_env(settings, server_url=live_server.url, airflow_home=airflow_home)
    dag_ids = [d for p in PARTNERS.values() for d in p.dag_ids]
    result = runner.run(dag_ids, env, log_path=settings.home / "logs" / "e2e.log")
    return result, _events(db), settings


def test_every_transfer_reports_start_and_complete_with_its_datasets(pipeline_run):
    result, events, settings = pipeline_run
    states = {r["dag_id"]: r["state"] for r in result["runs"]}
    assert states == {
        **{d: "success" for d in ACME.dag_ids},
        LOVE.dag_ids[0]: "success",
        LOVE.dag_ids[1]: "success",
        LOVE.dag_ids[2]: "failed",
    }, (settings.home / "logs" / "e2e.log").read_text()[-3000:]

    expected = {
        job_names(ACME)["transfer"]: ([ACME.drop.id], [ACME.raw.id]),
        job_names(ACME)["curate"]: ([ACME.raw.id], [ACME.training_set.id]),
        job_names(ACME)["train"]: ([ACME.training_set.id], [ACME.model_card.id, ACME.model.id]),
        job_names(LOVE)["transfer"]: ([LOVE.drop.id], [LOVE.raw.id]),
        job_names(LOVE)["curate"]: ([LOVE.raw.id], [LOVE.training_set.id]),
    }
    for job, (inputs, outputs) in expected.items():
        starts, completes = _of_type(events[job], "START"), _of_type(events[job], "COMPLETE")
        assert len(starts) == 1 and len(completes) == 1, (job, [e["eventType"] for e in events[job]])
        start, complete = starts[0], completes[0]
        assert start["run"]["runId"] == complete["run"]["runId"]
        assert _ids(complete["inputs"]) == sorted(inputs) and _ids(complete["outputs"]) == sorted(outputs), job
        for ds in complete["inputs"] + complete["outputs"]:
            facets = ds["facets"]
            assert {"dataSource", "ownership", "version"} <= set(facets), (job, ds["name"], sorted(facets))
            assert facets["dataSource"]["uri"].startswith("file://")
        for ds in complete["outputs"]:
            if ds["name"].endswith(("photos", "training_set")):
                assert ds["facets"]["schema"]["fields"], ds["name"]
                assert ds["outputFacets"]["outputStatistics"]["rowCount"] == ACME.rows
        # no operator source code in any event
        assert "sourceCode" not in json.dumps(start) and "sourceCode" not in json.dumps(complete)

    drop = _of_type(events[job_names(ACME)["transfer"]], "COMPLETE")[0]["inputs"][0]
    assert drop["facets"]["contract"]["id"] == ACME.contract_id
    assert {o["name"] for o in drop["facets"]["ownership"]["owners"]} == {"partner:acme"}
    # the dataset version is the content hash: the raw copy is byte-identical to the drop
    raw = _of_type(events[job_names(ACME)["transfer"]], "COMPLETE")[0]["outputs"][0]
    assert raw["facets"]["version"]["datasetVersion"] == drop["facets"]["version"]["datasetVersion"]


def test_blocked_run_fails_at_the_gate_with_its_reasons(pipeline_run):
    _, events, _ = pipeline_run
    gate = events[job_names(LOVE)["gate"]]
    [fail] = _of_type(gate, "FAIL")
    facet = fail["run"]["facets"]["contractGate"]
    assert facet["allowed"] is False and facet["purpose"] == "train_ai_system"
    assert any("purpose_prohibited" in r and "lovematch-photos" in r for r in facet["reasons"]), facet["reasons"]
    assert "BLOCKED" in fail["run"]["facets"]["errorMessage"]["message"]
    [inp] = fail["inputs"]
    assert inp["facets"]["sourceContract"]["allowed"] is False
    assert job_names(LOVE)["train"] not in events, "nothing may train after a refusal"

    [ok] = _of_type(events[job_names(ACME)["gate"]], "COMPLETE")
    assert ok["run"]["facets"]["contractGate"]["allowed"] is True


def test_model_lineage_reaches_the_partner_drop(pipeline_run, module_server):
    from lineage.events.ids import NodeId
    from lineage.store import graph

    db = module_server[1]
    with db.connection() as conn:
        up = graph.upstream(conn, NodeId("dataset", "models", ACME.model.name))
        down = graph.downstream(conn, NodeId("dataset", "partner-drops", LOVE.drop.name))
    assert graph.original_sources(up) == [ACME.drop.node_id]
    assert ACME.training_set.node_id in up.node_ids()
    assert not any(n.startswith("dataset:models:") for n in down.node_ids())


def test_events_match_the_openlineage_spec(pipeline_run):
    from tests_support import SPEC_VALIDATOR

    _, events, _ = pipeline_run
    for job, evs in events.items():
        for e in evs:
            errors = sorted(SPEC_VALIDATOR.iter_errors(e), key=str)
            assert not errors, (job, e["eventType"], errors[0].message)


def test_server_down_tasks_run_gate_blocks_and_the_spool_replays_every_event(live_server, db, settings, airflow_home, tokens):
    from lineage.airflow.spool import replay, status
    from lineage.airflow.transport import HttpSender

    write_drop(ACME, settings.home)
    env = runner.airflow_env(settings, server_url="http://127.0.0.1:9", airflow_home=airflow_home)
    assert not set(runner.DATABASE_VARIABLES) & set(runner.child_env(env)), "no Airflow process holds the database's credentials"
    result = runner.run(list(ACME.dag_ids), env, log_path=settings.home / "logs" / "outage.log")
    states = {r["dag_id"]: r["state"] for r in result["runs"]}
    assert states == {ACME.dag_ids[0]: "success", ACME.dag_ids[1]: "success", ACME.dag_ids[2]: "failed"}
    refusal = result["gate"][job_names(ACME)["train"]]
    assert refusal["allowed"] is False and "could not be reached" in refusal["decision"], refusal

    assert status(settings.spool_dir).pending >= 8
    done = replay(settings.spool_dir, HttpSender(live_server.url, api_key=tokens("replayer", "emitter")))
    assert (done.rejected, done.malformed, done.stopped) == (0, [], None)
    assert status(settings.spool_dir).pending == 0
    events = _events(db)
    for job in (job_names(ACME)["transfer"], job_names(ACME)["curate"]):
        assert [e["eventType"] for e in events[job]] == ["START", "COMPLETE"]
    [fail] = _of_type(events[job_names(ACME)["gate"]], "FAIL")
    assert any("could not be reached" in r for r in fail["run"]["facets"]["contractGate"]["reasons"])
