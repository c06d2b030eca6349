"""The graph explorer's pure rules (lineage/dashboard/view.py) and the layout (layout.py)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings, strategies as st

from lineage.dashboard import layout as lay
from lineage.dashboard import view


def _n(kind: str, name: str) -> dict:
    return {"id": f"{kind}:ns:{name}", "type": kind, "namespace": "ns", "name": name}


def _e(o: str, d: str) -> dict:
    return {"origin": o, "destination": d}


def _fan(k: int):
    """dataset:ns:src read by k jobs j00..j(k-1), each writing out<i>."""
    nodes = [_n("dataset", "src")] + [_n("job", f"j{i:02}") for i in range(k)] + [_n("dataset", f"out{i:02}") for i in range(k)]
    edges = [_e("dataset:ns:src", f"job:ns:j{i:02}") for i in range(k)] + [_e(f"job:ns:j{i:02}", f"dataset:ns:out{i:02}") for i in range(k)]
    return nodes, edges


def test_a_fan_out_past_the_cap_becomes_one_group_with_the_hidden_count():
    nodes, edges = _fan(30)
    out = view.cut("dataset:ns:src", nodes, edges, ["downstream"], 1, cap=25)
    jobs = sorted(n["name"] for n in out["nodes"] if n["type"] == "job")
    assert jobs == [f"j{i:02}" for i in range(25)], "the first 25 by name, always the same ones"
    assert out["groups"] == [{"id": "more:dataset:ns:src", "type": "group", "parent": "dataset:ns:src", "count": 5,
                              "namespace": "", "name": "+5 more"}]
    assert {"source": "dataset:ns:src", "target": "more:dataset:ns:src"} in out["edges"]
    assert out["hidden"] == 10, "five jobs and their five outputs are not shown"


def test_show_more_lifts_the_cap_of_that_node_only():
    nodes, edges = _fan(30)
    out = view.cut("dataset:ns:src", nodes, edges, ["downstream"], 1, shown_all=["dataset:ns:src"], cap=25)
    assert out["groups"] == [] and out["hidden"] == 0 and len(out["nodes"]) == 61


def test_depth_counts_jobs_and_frontier_marks_what_lies_beyond():
    # a -> j1 -> b -> j2 -> c
    nodes = [_n("dataset", "a"), _n("job", "j1"), _n("dataset", "b"), _n("job", "j2"), _n("dataset", "c")]
    edges = [_e("dataset:ns:a", "job:ns:j1"), _e("job:ns:j1", "dataset:ns:b"), _e("dataset:ns:b", "job:ns:j2"), _e("job:ns:j2", "dataset:ns:c")]
    out = view.cut("dataset:ns:a", nodes, edges, ["downstream"], 1)
    shown = {n["id"]: n["frontier"] for n in out["nodes"]}
    assert shown == {"dataset:ns:a": False, "job:ns:j1": False, "dataset:ns:b": True}
    up = view.cut("dataset:ns:c", nodes, edges, ["upstream"], 0)
    assert {n["id"] for n in up["nodes"]} == {"dataset:ns:c"}
    # Expanding the frontier node shows one more job beyond it.
    more = view.cut("dataset:ns:a", nodes, edges, ["downstream"], 1, expanded=["dataset:ns:b"])
    assert {n["id"] for n in more["nodes"]} == {n["id"] for n in nodes}


def test_an_expand_or_more_id_outside_the_answer_changes_nothing():
    nodes, edges = _fan(3)
    base = view.cut("dataset:ns:src", nodes, edges, ["downstream"], 1)
    odd = view.cut("dataset:ns:src", nodes, edges, ["downstream"], 1, expanded=["dataset:other:x"], shown_all=["job:nope:y"])
    assert odd == base


def _state(status: str, expires: dt.date | None = None):
    return SimpleNamespace(status=status, terms=SimpleNamespace(expires=expires))


def test_deny_wins_in_the_status_as_in_the_gate():
    today = dt.date(2026, 11, 27)
    assert view.contract_status([_state("approved"), _state("revoked")], True, today) == "revoked"
    assert view.contract_status([_state("approved"), _state("proposed")], True, today) == "proposed"
    assert view.contract_status([_state("approved", dt.date(2026, 11, 26))], True, today) == "expired", "past its date though never marked"
    assert view.contract_status([_state("approved", dt.date(2026, 11, 27))], True, today) == "approved"
    assert view.contract_status([_state("something-new")], True, today) == "proposed", "an unknown status is not taken as approval"
    assert view.contract_status([], True, today) == "missing"
    assert view.contract_status([], False, today) == "derived"


def test_a_gate_verdict_reads_structured_reasons_from_the_input_facets():
    found = {
        "facet": {"allowed": False, "purpose": "train_ai_system", "reasons": ["[purpose_prohibited] text"], "decision": "BLOCKED ..."},
        "inputs": [{"namespace": "curated", "name": "set", "facets": {"sourceContract": {"decisionId": "d1", "reasons": [
            {"code": "purpose_prohibited", "message": "m", "source": "dataset:drops:photos", "contract": "c@3", "clause": "customProperties[prohibitedPurposes].x"}]}}}],
    }
    v = view.gate_verdict(found)
    assert v["allowed"] is False and v["decisionId"] == "d1"
    assert v["reasons"] == [{"code": "purpose_prohibited", "message": "m", "dataset": "dataset:curated:set", "source": "dataset:drops:photos",
                             "contract": "c@3", "clause": "customProperties[prohibitedPurposes].x"}]
    assert view.blocking_sources(v) == {"dataset:drops:photos": ["purpose_prohibited"]}
    # Without input facets, the run facet's strings still give code and message.
    v2 = view.gate_verdict({"facet": found["facet"], "inputs": []})
    assert v2["reasons"][0]["code"] == "purpose_prohibited" and v2["reasons"][0]["message"] == "text"
    assert view.blocking_sources(view.gate_verdict({"facet": {"allowed": True}, "inputs": []})) == {}


def test_a_verdict_that_says_allowed_only_as_a_string_is_not_allowed():
    assert view.gate_verdict({"facet": {"allowed": "true"}})["allowed"] is False


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                           lambda kids: st.lists(kids, max_size=2) | st.dictionaries(st.sampled_from(["code", "source", "reasons", "x"]), kids, max_size=2),
                           max_leaves=6)
hostile_inputs = st.lists(json_values | st.fixed_dictionaries({"namespace": json_values, "name": json_values, "facets": st.fixed_dictionaries(
    {"sourceContract": json_values | st.fixed_dictionaries({"reasons": json_values, "decisionId": json_values})})}), max_size=2)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.fixed_dictionaries({"facet": json_values | st.fixed_dictionaries({"allowed": json_values, "reasons": json_values}),
                              "inputs": json_values | hostile_inputs}))
def test_a_gate_verdict_never_raises_on_any_json_a_producer_sends(found):
    v = view.gate_verdict(found)
    if v is not None:
        view.blocking_sources(v)


def test_layout_puts_every_edge_from_a_lower_layer_to_a_higher_one_and_caches_it():
    nodes, edges = _fan(40)
    pairs = [(e["origin"], e["destination"]) for e in edges]
    before = lay.cache_info()
    pos = lay.layout([n["id"] for n in nodes], pairs)
    assert all(pos[o][0] < pos[d][0] for o, d in pairs)
    assert len({pos[n["id"]] for n in nodes}) == len(nodes), "no two nodes on one spot"
    again = lay.layout(reversed([n["id"] for n in nodes]), reversed(pairs))
    assert again is pos, "the same graph, in any order, is answered from the cache"
    assert lay.cache_info() == min(before + 1, lay.CACHE_SIZE)


def test_layout_of_a_cycle_and_of_nothing():
    assert lay.layout([], []) == {}
    pos = lay.layout(["a", "b"], [("a", "b"), ("b", "a")])
    assert set(pos) == {"a", "b"}


def test_a_gate_verdict_carries_the_quality_checks_it_ran_on_each_input():
    found = {"facet": {"allowed": True, "purpose": "p"}, "inputs": [
        {"namespace": "cur", "name": "set", "inputFacets": {"dataQualityAssertions": {"assertions": [
            {"assertion": "expect_column_values_to_be_in_set", "name": "c@1:clause", "column": "src", "success": True, "expected": "0", "actual": "0"},
            {"assertion": "x", "success": "yes"}, "not an assertion"]}}}]}
    v = view.gate_verdict(found)
    assert [(c["dataset"], c["name"], c["success"]) for c in v["checks"]] == [("dataset:cur:set", "c@1:clause", True), ("dataset:cur:set", None, False)]
