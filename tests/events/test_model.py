"""The event model accepts exactly what the OpenLineage spec allows, and names what it rejects."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from lineage.errors import InvalidEvent
from lineage.events import parse_event
from lineage.samples import dataset, ml_pipeline_sample, run_event
from tests_support import SPEC_VALIDATOR, SPEC_DIR  # noqa: F401  (see tests/tests_support.py)


def _event() -> dict:
    return run_event("START", ("ns", "job"), "0b6a6d1c-5a3c-4b56-8d0e-4a0a6b7c1e11",
                     [dataset("db", "in", [("a", "int")])], [dataset("db", "out")])


def _problem(value) -> tuple[str, str]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(value)
    return info.value.problems[0].path, info.value.problems[0].reason


def test_spec_example_event_is_accepted():
    example = json.loads((SPEC_DIR / "tests" / "example_full_event.json").read_text())
    parsed = parse_event(example)
    assert parsed.kind == "run" and parsed.event_type == "COMPLETE"
    assert parsed.job_namespace == "food_delivery" and parsed.job_name == "dbt"


@pytest.mark.parametrize(
    "mutate, path, reason_part",
    [
        (lambda e: e.pop("eventTime"), "$.eventTime", "required"),
        (lambda e: e["run"].pop("runId"), "$.run.runId", "required"),
        (lambda e: e["job"].pop("namespace"), "$.job.namespace", "required"),
        (lambda e: e["run"].__setitem__("runId", "not-a-uuid"), "$.run.runId", "UUID"),
        (lambda e: e.__setitem__("eventTime", "yesterday"), "$.eventTime", "RFC 3339"),
        (lambda e: e.__setitem__("eventTime", "2026-11-26"), "$.eventTime", "RFC 3339"),
        (lambda e: e.__setitem__("eventTime", "9999-12-31T23:59:59-14:00"), "$.eventTime", "outside"),
        (lambda e: e.__setitem__("eventType", "FINISHED"), "$.eventType", "START"),
        (lambda e: e["job"].__setitem__("name", 42), "$.job.name", "str"),
        (lambda e: e.__setitem__("producer", "not a uri"), "$.producer", "URI"),
        (lambda e: e["inputs"][0]["facets"]["schema"].pop("_producer"), "$.inputs[0].facets.schema._producer", "missing"),
        (lambda e: e["run"]["facets"].__setitem__("custom", 3), "$.run.facets.custom", "object"),
        (lambda e: e.__setitem__("outputs", {"a": 1}), "$.outputs", "array"),
    ],
)
def test_invalid_event_names_the_field(mutate, path, reason_part):
    event = _event()
    mutate(event)
    got_path, reason = _problem(event)
    assert got_path == path
    assert reason_part.lower() in reason.lower()


def test_non_object_and_unknown_kind_are_rejected():
    assert _problem([1, 2])[0] == "$"
    assert _problem({"eventTime": "2026-11-26T10:00:00Z"})[0] == "$.run"


def test_dataset_and_job_events_are_recognised():
    base = {"eventTime": "2026-11-26T10:00:00Z", "producer": "https://p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"}
    ds = parse_event({**base, "dataset": {"namespace": "db", "name": "t", "facets": {}}})
    assert ds.kind == "dataset" and ds.dataset.name == "t"
    job = parse_event({**base, "job": {"namespace": "ns", "name": "j"}, "inputs": [{"namespace": "db", "name": "t"}]})
    assert job.kind == "job" and job.inputs[0].name == "t"


def test_identity_ignores_key_order_and_whitespace():
    event = _event()
    reordered = json.loads(json.dumps(event, sort_keys=True, indent=4))
    assert parse_event(event).key == parse_event(reordered).key
    changed = copy.deepcopy(event)
    changed["eventType"] = "COMPLETE"
    assert parse_event(changed).key != parse_event(event).key


def test_facts_are_extracted():
    ev = parse_event(_event())
    assert ev.inputs[0].fields == [{"name": "a", "type": "int"}]
    assert ev.nominal_start is not None


_text = st.text(min_size=1, max_size=12)
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), _text)


@st.composite
def near_events(draw):
    """Events close to valid: a valid one with random fields replaced by random JSON."""
    event = draw(st.sampled_from(ml_pipeline_sample()))
    event = copy.deepcopy(event)
    for _ in range(draw(st.integers(0, 3))):
        targets = [event] + [event[k] for k in ("run", "job") if isinstance(event.get(k), dict)]
        for k in ("inputs", "outputs"):
            if isinstance(event.get(k), list):
                targets += [d for d in event[k] if isinstance(d, dict)]
        target = draw(st.sampled_from([t for t in targets if t] or [event]))
        if not target:
            continue
        key = draw(st.sampled_from(sorted(target.keys())))
        if draw(st.booleans()):
            target.pop(key)
        else:
            target[key] = draw(_json_leaf)
    return event


@settings(max_examples=300, deadline=None)
@given(near_events())
def test_every_accepted_event_is_spec_valid(event):
    """Property: whatever the server accepts validates against the official JSON Schema."""
    try:
        parse_event(event)
    except InvalidEvent:
        return
    SPEC_VALIDATOR.validate(event)


def test_sample_events_are_spec_valid():
    for event in ml_pipeline_sample():
        SPEC_VALIDATOR.validate(event)
        parse_event(event)
