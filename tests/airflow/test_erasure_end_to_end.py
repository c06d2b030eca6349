"""The example scenario erased end to end (issue 10's "Done when").

The demo pipeline runs for both partners with ``dag.test()`` against a live ``lineage serve``;
a steward erases ACME's partner drop over HTTP; the manifest lists the model and its model card;
the ``erase_source`` DAG deletes every file (with the Airflow worker's token, no database
credentials) and records each deletion; status says complete; the gate blocks retraining from
the source and from every dataset built from it; and a DROP event exists for every erased
dataset.  Asserted from the store and the file system, not from Airflow's own report.
"""

from __future__ import annotations

import httpx
import pytest

from lineage.airflow import runner
from example_pipeline.drops import write_drop
from example_pipeline.pipeline import PARTNERS, TRAINING_PURPOSE

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ACME = PARTNERS["acme"]


@pytest.fixture(scope="module")
def erased(module_server, airflow_home):
    settings, db, live_server = module_server
    from lineage.auth import tokens
    from example_pipeline.demo import STEWARDS, setup_contracts, setup_people

    for p in PARTNERS.values():
        write_drop(p, settings.home)
    with db.connection() as conn:
        _, admin = tokens.create(conn, name="erase-admin", principal="admin@tests.example", roles=["admin"], created_by="tests")
        _, auditor = tokens.create(conn, name="erase-auditor", principal="auditor@tests.example", roles=["auditor"], created_by="tests")
    at_server = settings.model_copy(update={"url": live_server.url})
    people = setup_people(at_server, admin)
    setup_contracts(at_server, people)
    env = runner.airflow_env(settings, server_url=live_server.url, airflow_home=airflow_home)
    pipeline = runner.run([d for p in PARTNERS.values() for d in p.dag_ids], env, log_path=settings.home / "logs" / "pipeline.log")
    files = [s.path(settings.home) for s in (ACME.drop, ACME.raw, ACME.training_set, ACME.model, ACME.model_card)]
    assert all(f.exists() for f in files), "the pipeline should have written every file"
    steward = {"Authorization": f"Bearer {people[STEWARDS[0]]}"}
    r = httpx.post(f"{live_server.url}/api/v1/erasures", headers=steward, timeout=60,
                   json={"source": ACME.drop.node_id, "reason": "the partner withdrew consent for every photo"})
    assert r.status_code == 201, r.text
    manifest = r.json()
    erase_run = runner.run(["erase_source"], env, log_path=settings.home / "logs" / "erase.log")
    return {"settings": settings, "db": db, "url": live_server.url, "pipeline": pipeline, "manifest": manifest,
            "erase_run": erase_run, "files": files, "steward": steward, "auditor": {"Authorization": f"Bearer {auditor}"}}


def test_the_manifest_lists_the_model_and_its_card_with_their_locations(erased):
    items = {i["dataset"]: i for i in erased["manifest"]["items"]}
    assert items[ACME.model.node_id]["kind"] == "model"
    assert ACME.model_card.node_id in items
    assert items[ACME.drop.node_id]["kind"] == "source"
    assert {ACME.raw.node_id, ACME.training_set.node_id} <= set(items)
    home = erased["settings"].home.resolve()
    for spec in (ACME.drop, ACME.raw, ACME.training_set, ACME.model, ACME.model_card):
        assert items[spec.node_id]["location"] == spec.path(home).parent.as_uri()
    assert not any("lovematch" in d for d in items), "nothing of the other partner is on the manifest"
    assert erased["manifest"]["revokedContracts"] and erased["manifest"]["revokedContracts"][0].startswith(ACME.contract_id + "@")
    assert ACME.model.node_id in erased["manifest"]["summary"]


def test_the_dag_deletes_every_file_and_status_says_complete(erased):
    run = erased["erase_run"]["runs"][0]
    assert run["state"] == "success", erased["erase_run"]
    for f in erased["files"]:
        assert not f.exists(), f"{f} should have been deleted"
    # The other partner's files are untouched.
    assert PARTNERS["lovematch"].drop.path(erased["settings"].home).exists()
    st = httpx.get(f"{erased['url']}/api/v1/erasures/{erased['manifest']['id']}", headers=erased["auditor"]).json()
    assert st["state"] == "complete", st
    assert st["counts"]["outstanding"] == 0 and st["counts"]["recreated"] == 0
    assert {i["deleted"]["recordedBy"] for i in st["items"]} == {"airflow"}, "recorded by the worker's token"


def test_the_gate_blocks_retraining_from_the_source_and_anything_built_from_it(erased):
    for spec in (ACME.drop, ACME.raw, ACME.training_set, ACME.model):
        r = httpx.post(f"{erased['url']}/api/v1/gate/check", headers=erased["steward"], timeout=60,
                       json={"job": f"ml-pipeline:{ACME.dag_ids[2]}.train", "purpose": TRAINING_PURPOSE, "inputs": [spec.node_id]})
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["allowed"] is False
        assert any(x["code"] == "erased_source" and x["dataset"] == spec.node_id for x in d["reasons"]), d["reasons"]


def test_a_drop_event_exists_for_every_erased_dataset(erased):
    with erased["db"].connection() as conn:
        dropped = {
            f"dataset:{ns}:{name}"
            for ns, name in conn.execute(
                """SELECT o->>'namespace', o->>'name' FROM raw_events e, jsonb_array_elements(e.payload->'outputs') o
                   WHERE o->'facets'->'lifecycleStateChange'->>'lifecycleStateChange' = 'DROP'"""
            )
        }
    assert {i["dataset"] for i in erased["manifest"]["items"]} <= dropped
