"""The dashboard in a real headless Chromium, on the demo's own store.

Each test signs in by pasting a token (as a person would), uses the pages with the mouse or the
keyboard, and reads what a person would read; screenshots land in tests/dashboard/output/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOSTILE = "<img src=x onerror=alert(1)>"  # the name conftest's demo_server gives a source

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.airflow]

LOVE_SET = "dataset:curated:lovematch/smile_training_set"
LOVE_SOURCE = "dataset:partner-drops:lovematch/photos"
ACME_MODEL = "dataset:models:acme/smile-classifier"
ACME_SOURCE = "dataset:partner-drops:acme/photos"


def _graph_ready(p) -> None:
    p.page.wait_for_selector("#sigma[data-ready='1']", timeout=30_000)


def _node_attrs(p, node: str) -> dict:
    return p.page.evaluate("(id) => window.lineageDashboard.graph.getNodeAttributes(id)", node)


def _click_node(p, node: str) -> None:
    """Click a node where sigma drew it on the canvas (a real mouse click, not a DOM shortcut)."""
    xy = p.page.evaluate("""(id) => {
        const r = window.lineageDashboard.renderer, a = r.getNodeDisplayData(id);
        const v = r.framedGraphToViewport(a); const box = document.getElementById('sigma').getBoundingClientRect();
        return [box.left + v.x, box.top + v.y]; }""", node)
    p.page.mouse.click(xy[0], xy[1])


def test_a_bad_token_is_refused_and_a_good_one_is_kept_only_for_the_tab(page, demo_server):
    page.page.goto(f"{demo_server.url}/ui/")
    page.page.wait_for_selector("#token")
    assert page.page.title() == "Sign in — lineage"
    page.page.fill("#token", "lin_not-a-token")
    page.page.click("#signin button[type=submit]")
    page.page.wait_for_selector("[role=alert] >> text=refused")
    page.sign_in(demo_server.viewer)
    assert page.page.inner_text("#who").startswith("viewer@example.com (viewer)")
    stored = page.page.evaluate("() => [sessionStorage.getItem('lineage.token'), localStorage.length, document.cookie]")
    assert stored == [demo_server.viewer, 0, ""], "the token lives in sessionStorage only"
    # A new tab (context) of the same browser knows nothing of it.
    other = page.context.browser.new_context()
    try:
        o = other.new_page()
        o.goto(f"{demo_server.url}/ui/#/contracts")
        o.wait_for_selector("#token")
    finally:
        other.close()


def test_the_demo_models_graph_shows_where_it_came_from_under_an_approved_contract(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open(f"#/graph?node={ACME_MODEL}&dir=upstream&depth=5")
    _graph_ready(page)
    assert page.page.title() == "Graph · models:acme/smile-classifier — lineage"
    assert _node_attrs(page, ACME_SOURCE)["color"] == "#2e7d32", "the approved source is drawn green"
    assert page.page.inner_text("#attention") == "", "nothing on an allowed model's lineage needs attention"
    page.shot("acme-model-graph")
    page.page.click("#toggle-view")
    row = page.page.locator(f"tr[data-node='{ACME_SOURCE}']")
    assert row.locator("td").nth(3).inner_text() == "approved"
    assert page.page.url.endswith("view=table"), "the view is part of the shareable URL"


def test_the_prohibited_source_stands_out_and_leads_to_the_blocked_run_and_its_reasons(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open(f"#/graph?node={LOVE_SET}&dir=both")
    _graph_ready(page)
    attention = page.page.inner_text("#attention")
    assert "blocking source partner-drops:lovematch/photos — purpose_not_permitted, purpose_prohibited (under lovematch-photos@3, approved)" in attention
    assert "blocked run ml-pipeline:train_model__lovematch.contract_gate" in attention
    source = _node_attrs(page, LOVE_SOURCE)
    assert source["color"] == "#d50000" and source["forceLabel"] is True, "the prohibited source is red and always labelled"
    assert _node_attrs(page, "job:ml-pipeline:train_model__lovematch.contract_gate")["color"] == "#d50000"
    assert _node_attrs(page, "job:ml-pipeline:build_training_set__lovematch.curate_features")["color"] != "#d50000"
    # Clicking the source on the canvas shows it in the panel, with its contract and sensitive categories.
    _click_node(page, LOVE_SOURCE)
    panel = page.page.locator("#node-panel")
    panel.locator("text=blocking (purpose_not_permitted, purpose_prohibited)").wait_for()
    assert "user.location.precise" in panel.inner_text() and "lovematch-photos@3" in panel.inner_text()
    path = page.shot("lovematch-blocked-graph")
    DOCS.mkdir(exist_ok=True)
    shutil.copy(path, DOCS / "dashboard.png")
    # Through to the blocked run and the gate's reason, clause by clause.
    page.page.click("#attention >> text=ml-pipeline:train_model__lovematch.contract_gate")
    page.page.wait_for_selector("#gate-decision")
    assert page.page.title().startswith("Run · ")
    gate = page.page.inner_text("#gate-decision")
    assert "BLOCKED" in gate and "train_ai_system" in gate
    assert "contract `lovematch-photos@3` prohibits `train_ai_system`" in gate
    assert "customProperties[prohibitedPurposes].train_ai_system" in gate
    assert "partner-drops:lovematch/photos" in gate
    timeline = page.page.inner_text("table.timeline")
    assert timeline.index("START") < timeline.index("FAIL")
    page.shot("lovematch-blocked-run")


def test_a_contracts_history_says_who_did_what_when_and_why(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open("#/contracts")
    page.page.click("text=lovematch-photos@3")
    page.page.wait_for_selector("table.history")
    assert page.page.title() == "Contract · lovematch-photos — lineage"
    rows = page.page.locator("table.history tbody tr").all_inner_texts()
    text = "\n".join(rows)
    assert "data-requests@example.com" in text and "register" in text
    # Special categories: two different stewards, the first an endorsement.
    assert re.search(r"dpo@example\.com.*\bendorse\b.*reviewed consent evidence", text, re.S)
    assert re.search(r"privacy-counsel@example\.com.*\bapprove\b.*approved", text, re.S)
    page.shot("lovematch-contract-history")


def test_a_hostile_dataset_name_is_shown_as_text_everywhere(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open("#/search?q=onerror")
    page.page.wait_for_selector("table.results")
    results = page.page.inner_text("table.results")
    assert HOSTILE in results
    page.page.click(f"table.results >> text={HOSTILE}")
    page.page.wait_for_selector("text=Covering contracts")
    assert page.page.title() == f"Dataset · partner-drops:{HOSTILE} — lineage"
    assert page.page.inner_text("h1") == f"Dataset {HOSTILE}"
    page.open(f"#/graph?node=dataset:partner-drops:{HOSTILE}&dir=downstream&view=table")
    page.page.wait_for_selector("table.graph-table")
    assert HOSTILE in page.page.inner_text("table.graph-table")
    assert "probe__<b>bold</b>" in page.page.inner_text("table.graph-table")
    assert page.page.locator("img").count() == 0 and page.page.locator("b").count() == 0, "no markup from data"
    assert page.dialogs == [] and page.errors == []
    page.shot("hostile-name")


def test_show_more_and_expand_grow_the_graph_and_keep_the_url_shareable(page, demo_server):
    page.sign_in(demo_server.viewer)
    # Two jobs read the ACME training set; with a cap of one, the second is behind "+1 more".
    page.open("#/graph?node=dataset:curated:acme/smile_training_set&dir=downstream&depth=1&cap=1&view=table")
    page.page.wait_for_selector("table.graph-table")
    table = page.page.inner_text("table.graph-table")
    assert "+1 more" in table and "train_model__acme.train" not in table
    page.page.click("table.graph-table >> text=+1 more")
    page.page.click("#show-more")
    page.page.wait_for_selector("table.graph-table >> text=train_model__acme.train")
    assert "more=dataset" in page.page.url
    # Depth 0 shows the node alone; it is a frontier and expands one step.
    page.open(f"#/graph?node={ACME_SOURCE}&dir=downstream&depth=0&view=table")
    page.page.wait_for_selector("#expand")
    assert page.page.locator("table.graph-table tbody tr").count() == 1
    page.page.click("#expand")
    page.page.wait_for_selector("table.graph-table >> text=ingest_partner_drop__acme.transfer_drop")
    shared = page.page.url
    assert "expand=" in shared
    # Someone opening the same URL sees the same answer.
    other = _open_as_viewer(page, shared)
    assert "ingest_partner_drop__acme.transfer_drop" in other


def _open_as_viewer(page, url: str) -> str:
    ctx = page.context.browser.new_context()
    try:
        p = ctx.new_page()
        p.goto(url.split("#")[0])
        p.fill("#token", page.server.viewer)
        p.click("#signin button[type=submit]")
        p.wait_for_selector("#who >> text=(")
        p.goto(url)
        p.wait_for_selector("table.graph-table")
        return p.inner_text("table.graph-table")
    finally:
        ctx.close()


def test_the_table_view_works_from_the_keyboard(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open(f"#/graph?node={LOVE_SET}&dir=upstream&view=table")
    page.page.wait_for_selector("table.graph-table")
    button = page.page.locator(f"tr[data-node='{LOVE_SOURCE}'] button")
    button.focus()
    page.page.keyboard.press("Enter")
    page.page.locator("#node-panel >> text=Open dataset page").focus()
    page.page.keyboard.press("Enter")
    page.page.wait_for_selector("text=Covering contracts")
    assert page.page.title() == "Dataset · partner-drops:lovematch/photos — lineage"


def test_the_decision_log_is_for_auditors_blocked_first(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open("#/decisions")
    page.page.wait_for_selector("[role=status]")
    assert "`auditor`" in page.page.inner_text("main"), "a viewer is told which role reads the log"
    page.page.evaluate("() => sessionStorage.clear()")
    page.sign_in(demo_server.auditor)
    page.open("#/decisions")
    page.page.wait_for_selector("main table")
    verdicts = page.page.locator("main table tbody tr td:nth-child(2)").all_inner_texts()
    assert verdicts and "blocked" in verdicts and "allowed" in verdicts
    assert verdicts == sorted(verdicts, key=lambda v: v != "blocked"), "blocked decisions come first"
    page.open("#/decisions?show=blocked&q=prohibits")
    page.page.wait_for_selector("main table")
    rows = page.page.locator("main table tbody tr").all_inner_texts()
    assert rows and all("purpose_prohibited" in r for r in rows)


def test_pages_for_endpoints_this_server_lacks_say_so_and_show_the_answer_once_it_has_them(page, demo_server):
    with demo_server.api() as c:
        paths = c.get("/openapi.json").json()["paths"]
    page.sign_in(demo_server.auditor)
    for route, endpoint in (("#/erasures", "/api/v1/erasures"), ("#/record", "/api/v1/audit/status"),
                            (f"#/impact?node={LOVE_SOURCE}", "/api/v1/lineage/impact")):
        page.open(route)
        page.page.wait_for_selector("main h1")
        page.page.wait_for_selector("main .unavailable, main table, main dl.facts, main .empty")
        if endpoint in paths:  # once the server has it, the page shows its answer instead
            assert page.page.locator("main .unavailable").count() == 0, route
        else:
            assert "not available on this server" in page.page.inner_text("main .unavailable"), route
    assert page.errors == []


def test_nothing_is_fetched_from_another_origin(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open(f"#/graph?node={LOVE_SET}&dir=both")
    _graph_ready(page)
    own = urlsplit(demo_server.url).netloc
    assert page.requests and all(urlsplit(u).netloc == own for u in page.requests if not u.startswith("data:")), page.requests


def test_the_allowed_training_sets_page_shows_the_gate_and_its_quality_check(page, demo_server):
    page.sign_in(demo_server.viewer)
    page.open("#/dataset?node=dataset:curated:acme/smile_training_set")
    page.page.wait_for_selector("text=Gate and quality results")
    results = page.page.locator("section", has=page.page.locator("h2", has_text="Gate and quality results")).inner_text()
    assert "allowed" in results and "train_ai_system" in results and "1 passed, 0 failed" in results
    page.page.click("section:has(h2:text('Gate and quality results')) tbody tr >> nth=0 >> a >> nth=0")
    page.page.wait_for_selector("table.checks")
    checks = page.page.inner_text("table.checks")
    assert "source_contract_id" in checks and "passed" in checks
    assert "ALLOWED" in page.page.inner_text("#gate-decision")
