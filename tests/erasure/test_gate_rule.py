"""Rule 9 of the gate, as a pure function: an erased dataset anywhere upstream blocks."""

from __future__ import annotations

from lineage.gate.decision import evaluate
from lineage.gate.provenance import Upstream

SRC, MID, INP = "dataset:drops:p", "dataset:raw:p", "dataset:curated:set"


def _decide(upstream, erased, inputs=(INP,)):
    return evaluate(job="ns:train", purpose="train_ai_system", inputs=list(inputs), upstream=upstream, contracts={}, erased=erased)


def test_an_erased_origin_blocks_every_input_built_from_it():
    up = {INP: Upstream.of([SRC, MID, INP], [SRC])}
    d = _decide(up, {SRC: "erasure #1"})
    erased = [r for r in d.reasons if r.code == "erased_source"]
    assert not d.allowed and [(r.dataset, r.source) for r in erased] == [(INP, SRC)]
    assert "erasure #1" in erased[0].message


def test_an_erased_dataset_midway_blocks_too_and_each_is_named():
    up = {INP: Upstream.of([SRC, MID, INP], [SRC])}
    d = _decide(up, {MID: "erasure #2", INP: "erasure #2"})
    assert sorted(r.source for r in d.reasons if r.code == "erased_source") == [INP, MID]


def test_an_erased_input_of_unknown_provenance_is_named_as_erased():
    d = _decide({}, {INP: "erasure #3"})
    assert {r.code for r in d.reasons} == {"erased_source", "unknown_provenance"}


def test_nothing_erased_adds_no_reason():
    up = {INP: Upstream.of([SRC, MID, INP], [SRC])}
    assert "erased_source" not in {r.code for r in _decide(up, {}).reasons}
    assert "erased_source" not in {r.code for r in _decide(up, {"dataset:other:x": "erasure #4"}).reasons}
