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


def _t(n: int):
    import datetime as dt

    return dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=n)


def test_a_dataset_read_before_any_writer_was_recorded_stays_an_origin():
    # L was read (by ingest) at t1; a writer from C was recorded only at t2
    nodes, edges = graph(("launder", ["C"], ["L"]), ("ingest", ["L"], ["T"]))
    assert upstream_of("T", nodes, edges).origins == {"C"}
    up = upstream_of("T", nodes, edges, {"L": (_t(1), _t(2)), "C": (_t(0), None), "T": (None, _t(1))})
    assert up.origins == {"C", "L"} and up.truncated == frozenset()
    # written first, read later (or in the same transaction): derived
    for marks in ({"L": (_t(2), _t(1))}, {"L": (_t(1), _t(1))}):
        assert upstream_of("T", nodes, edges, marks).origins == {"C"}


def test_a_dataset_the_walk_left_unwritten_but_the_store_has_a_writer_for_is_truncated_not_an_origin():
    nodes, edges = graph(("j1", ["D"], ["T"]))
    up = upstream_of("T", nodes, edges, {"D": (_t(2), _t(1))})
    assert up.truncated == {"D"} and up.origins == frozenset()
    # read before that writer was recorded: an origin, and still truncated (what lies beyond
    # may hold a covered dataset the gate must check)
    up = upstream_of("T", nodes, edges, {"D": (_t(1), _t(2))})
    assert up.origins == {"D"} and up.truncated == {"D"}


def test_a_job_reading_what_it_writes_no_later_than_the_first_write_makes_it_an_origin():
    nodes, edges = graph(("append", ["L", "C"], ["L"]), ("curate", ["L"], ["T"]))
    assert upstream_of("T", nodes, edges, {"L": (_t(1), _t(1), None)}).origins == {"C"}  # another job's read, same moment
    assert upstream_of("T", nodes, edges, {"L": (_t(1), _t(1), _t(1))}).origins == {"C", "L"}
    assert upstream_of("T", nodes, edges, {"L": (_t(2), _t(1), _t(2))}).origins == {"C"}  # written before it was read
