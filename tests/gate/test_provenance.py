"""Origins of an upstream graph: no writer, a writer without inputs, or a closed cycle."""

from __future__ import annotations

from lineage.gate.provenance import upstream_of


def graph(*jobs: tuple[str, list[str], list[str]]) -> tuple[list[dict], list[dict]]:
    """Nodes and edges (as ``lineage.store.graph`` returns them) from ``(job, inputs, outputs)``."""
    nodes, edges = {}, []
    for job, ins, outs in jobs:
        nodes[f"job:{job}"] = {"id": f"job:{job}", "type": "job"}
        for d in ins:
            nodes[d] = {"id": d, "type": "dataset"}
            edges.append({"origin": d, "destination": f"job:{job}"})
        for d in outs:
            nodes[d] = {"id": d, "type": "dataset"}
            edges.append({"origin": f"job:{job}", "destination": d})
    return list(nodes.values()), edges


def test_a_dataset_nothing_writes_is_an_origin_and_derived_ones_are_not():
    up = upstream_of("T", *graph(("j1", ["A", "B"], ["M"]), ("j2", ["M"], ["T"])))
    assert up.origins == {"A", "B"} and up.datasets == {"A", "B", "M", "T"}


def test_a_dataset_written_by_a_job_without_inputs_is_an_origin():
    # T <- J1 <- {R, Q}; R <- J0()
    up = upstream_of("T", *graph(("J0", [], ["R"]), ("J1", ["R", "Q"], ["T"])))
    assert up.origins == {"R", "Q"}


def test_one_input_less_writer_among_several_makes_an_origin():
    up = upstream_of("T", *graph(("feed", ["A"], ["R"]), ("upload", [], ["R"]), ("j", ["R"], ["T"])))
    assert up.origins == {"A", "R"}


def test_a_self_loop_cannot_hide_where_data_came_from():
    # A forged `x:loop` reads and writes the input: nothing outside feeds it, so it is its own origin.
    assert upstream_of("T", *graph(("loop", ["T"], ["T"]))).origins == {"T"}
    # A closed cycle A -> B -> A feeding T: both A and B are origins, T is not.
    up = upstream_of("T", *graph(("ab", ["A"], ["B"]), ("ba", ["B"], ["A"]), ("t", ["B"], ["T"])))
    assert up.origins == {"A", "B"}


def test_a_cycle_fed_from_outside_is_not_an_origin():
    up = upstream_of("T", *graph(("inc", ["X", "T"], ["T"])))
    assert up.origins == {"X"}


def test_the_start_alone_is_its_own_origin():
    assert upstream_of("T", [{"id": "T", "type": "dataset"}], []).origins == {"T"}


def test_deep_chains_do_not_recurse():
    jobs = [(f"j{i}", [f"D{i}"], [f"D{i + 1}"]) for i in range(5000)]
    up = upstream_of("D5000", *graph(*jobs))
    assert up.origins == {"D0"} and len(up.datasets) == 5001
