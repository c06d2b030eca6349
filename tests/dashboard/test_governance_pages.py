"""The impact, erasures and record pages, and the graph's "erased" mark, in a real Chromium,
against the real endpoints (``/api/v1/lineage/impact``, ``/api/v1/erasures``,
``/api/v1/audit/status``) on the demo's store.

The erasure is made over HTTP by one of the demo's stewards, of a small lineage this module
ingests itself (``erasure-probe``), so the demo's own sources, which the other browser tests
read, keep their contracts.  The record is checkpointed and verified with the CLI, as an
operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.airflow]

ACME_MODEL = "dataset:models:acme/smile-classifier"
ACME_SOURCE = "dataset:partner-drops:acme/photos"
SRC = "dataset:erasure-probe:users/photos"
COPY = "dataset:erasure-probe:users/photos_copy"
HOSTILE = "<img src=x onerror=alert(1)>"


def _event(inputs: list[str], outputs: list[str], job: str) -> dict:
    ds = lambda node: {"namespace": node.split(":")[1], "name": node.split(":", 2)[2]}  # noqa: E731
    return {
        "eventType": "COMPLETE", "eventTime": "2026-11-26T11:00:00Z", "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "erasure-probe", "name": job},
        "inputs": [ds(n) for n in inputs], "outputs": [ds(n) for n in outputs],
    }


@pytest.fixture(scope="module")
def erasure(demo_server) -> dict:
    """Ingest src -> copy, then a steward erases src over HTTP; the manifest."""
    with demo_server.api() as c:
        assert c.post("/api/v1/lineage", json=_event([SRC], [COPY], "copy_photos")).status_code == 201
    steward = (demo_server.home / "tokens" / "demo-steward-dpo").read_text().strip()
    with demo_server.api(steward) as c:
        r = c.post("/api/v1/erasures", json={"source": SRC, "reason": "the users withdrew consent"})
    assert r.status_code == 201, r.text
    return {**r.json(), "steward": steward}


def test_the_erasures_page_lists_an_erasure_with_its_status_as_deletions_are_recorded(page, demo_server, erasure):
    page.sign_in(demo_server.auditor)
    page.open("#/erasures")
    row = page.page.locator(f"table.erasures tr[data-erasure='{erasure['id']}']")
    row.wait_for()
    text = row.inner_text()
    assert "erasure-probe:users/photos" in text and "in progress" in text and "0 of 2" in text
    assert "the users withdrew consent" in text and "dpo@example.com" in text
    row.locator("a", has_text=f"#{erasure['id']}").click()
    page.page.wait_for_selector("table.items")
    items = page.page.inner_text("table.items")
    assert "erasure-probe:users/photos_copy" in items and items.count("outstanding") == 2
    # The Airflow worker (here: the steward, who may too) records each deletion; the pages follow.
    with demo_server.api(erasure["steward"]) as c:
        for it in erasure["items"]:
            r = c.post(f"/api/v1/erasures/{erasure['id']}/items/{it['id']}/deletions", json={"location": f"file:///gone/{it['id']}"})
            assert r.status_code == 201, r.text
    page.page.reload()
    page.page.wait_for_selector("table.items")
    assert "complete" in page.page.inner_text("#erasure-state") and "2 of 2 deleted" in page.page.inner_text("#erasure-state")
    assert page.page.inner_text("table.items").count("deleted") >= 2
    page.open("#/erasures")
    row.wait_for()
    assert "complete" in row.inner_text() and "2 of 2" in row.inner_text()
    page.shot("erasures")
    assert page.errors == []


def test_the_graph_marks_erased_nodes_even_for_a_viewer_who_cannot_read_manifests(page, demo_server, erasure):
    page.sign_in(demo_server.viewer)
    page.open(f"#/graph?node={SRC}&dir=downstream")
    page.page.wait_for_selector("#sigma[data-ready='1']", timeout=30_000)
    attrs = page.page.evaluate("(ids) => ids.map((id) => window.lineageDashboard.graph.getNodeAttributes(id))", [SRC, COPY])
    assert all(a["color"] == "#212121" and a["forceLabel"] for a in attrs), attrs
    attention = page.page.inner_text("#attention")
    assert attention.count("erased") >= 2 and f"erasure #{erasure['id']}" in attention
    page.shot("erased-graph")
    page.page.click("#toggle-view")
    for node in (SRC, COPY):
        assert page.page.locator(f"tr[data-node='{node}'] td").nth(3).inner_text() == "erased"
    job = page.page.locator("tr[data-node='job:erasure-probe:copy_photos'] td").nth(3).inner_text()
    assert job != "erased", "only datasets are erased"
    # A dataset nobody erased is not marked, even one in the same namespace as an erased one.
    page.open(f"#/graph?node={ACME_MODEL}&dir=upstream&depth=5&view=table")
    page.page.wait_for_selector("table.graph-table")
    assert "erased" not in page.page.inner_text("table.graph-table")
    assert page.errors == []


def test_the_impact_page_of_a_source_lists_the_model_trained_on_it(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open(f"#/impact?node={ACME_SOURCE}")
    page.page.wait_for_selector("table.models")
    assert page.page.title() == "Impact · partner-drops:acme/photos — lineage"
    models = page.page.inner_text("table.models")
    assert "models:acme/smile-classifier" in models
    assert "model(s)" in page.page.inner_text("#impact-summary")
    datasets = page.page.inner_text("table.datasets")
    assert "curated:acme/smile_training_set" in datasets and "raw-zone:acme/photos" in datasets
    assert "approved" in page.page.inner_text("main"), "the contracts covering the source are shown"
    page.shot("impact")
    page.page.click(f"table.models >> text=models:acme/smile-classifier")
    page.page.wait_for_selector("text=Covering contracts")
    assert page.page.url.endswith(f"#/dataset?node={ACME_MODEL.replace(':', '%3A').replace('/', '%2F')}")
    assert page.errors == []


def test_the_impact_page_of_an_unknown_node_says_so_without_crashing(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open("#/impact?node=dataset:nowhere:" + HOSTILE)
    page.page.wait_for_selector("main .error, main [role=alert], main .notice")
    assert HOSTILE in page.page.inner_text("main h1")
    assert page.page.locator("img").count() == 0 and page.dialogs == []


def _cli(demo_server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LINEAGE_HOME": str(demo_server.home), "LINEAGE_PORT": demo_server.url.rsplit(":", 1)[1]}
    for k in ("LINEAGE_DATABASE_URL", "LINEAGE_URL", "LINEAGE_TOKEN"):
        env.pop(k, None)  # the demo's own embedded PostgreSQL, found from its home
    return subprocess.run([sys.executable, "-c", "from lineage.cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_record_page_shows_the_last_checkpoint_and_verification(page, demo_server):
    done = _cli(demo_server, "audit", "checkpoint")
    assert done.returncode == 0, done.stderr
    signed = json.loads(done.stdout.strip().splitlines()[-1])
    verified = _cli(demo_server, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    page.sign_in(demo_server.auditor)
    page.open("#/record")
    page.page.wait_for_selector("#record-status")
    assert page.page.title() == "Record status — lineage"
    checkpoint = page.page.inner_text("#last-checkpoint")
    assert f"block #{signed['block']} ({signed['entries']} entries)" in checkpoint
    verification = page.page.inner_text("#last-verification")
    assert verification.startswith("verified") and "0 problem(s)" in verification
    page.shot("record")
    assert page.errors == []


def test_a_viewer_is_told_which_role_the_erasure_and_record_pages_need(page, demo_server, erasure):
    page.sign_in(demo_server.viewer)
    for route, roles in (("#/erasures", "`auditor`"), (f"#/erasure?id={erasure['id']}", "`auditor`"), ("#/record", "`auditor`")):
        page.open(route)
        page.page.wait_for_selector("main [role=status]")
        text = page.page.inner_text("main [role=status]")
        assert "may not" in text and roles in text, (route, text)
        assert page.page.locator("main table").count() == 0, "nothing of the answer is shown"
    assert page.errors == []


def test_an_erasure_number_from_the_url_is_checked_and_shown_as_text(page, demo_server):
    page.sign_in(demo_server.auditor)
    page.open("#/erasure?id=" + HOSTILE)
    page.page.wait_for_selector("main [role=status]")
    assert "is not an erasure number" in page.page.inner_text("main [role=status]")
    page.open("#/erasure?id=999999999")
    page.page.wait_for_selector("main .error, main [role=alert], main .notice")
    assert page.page.locator("img").count() == 0 and page.dialogs == [] and page.errors == []
