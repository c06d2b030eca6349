"""The event model accepts exactly what the OpenLineage spec allows, and names what it rejects."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from lineage.errors import InvalidEvent
from lineage.events import parse_event
from lineage.samples import dataset, run_event
from example_pipeline.sample import ml_pipeline_sample
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


# -- normalisation and canonical identity (issue 7, items 3 and 4) ------------------------------
def _with(event: dict, **changes) -> dict:
    out = copy.deepcopy(event)
    out.update(changes)
    return out


def test_openlineage_python_client_serialisation_example_is_accepted_and_noted():
    """The Python client's own example: no offset on eventTime, a date-only nominalStartTime."""
    event = _event()
    event["eventTime"] = "2021-11-03T10:53:52.427343"
    event["run"]["facets"]["nominalTime"]["nominalStartTime"] = "2020-01-01"
    parsed = parse_event(event)
    assert parsed.event_time.isoformat() == "2021-11-03T10:53:52.427343+00:00"
    assert parsed.nominal_start.isoformat() == "2020-01-01T00:00:00+00:00"
    stored = json.loads(parsed.payload)
    assert stored["eventTime"] == "2021-11-03T10:53:52.427343Z"
    assert stored["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2020-01-01T00:00:00.000000Z"
    assert [n.split(":")[0] for n in parsed.normalizations] == ["$.eventTime", "$.run.facets.nominalTime.nominalStartTime"]
    assert "read as UTC" in parsed.normalizations[0] and "midnight UTC" in parsed.normalizations[1]
    SPEC_VALIDATOR.validate(stored)


def test_an_event_with_an_offset_carries_no_note():
    assert parse_event(_event()).normalizations == []


@pytest.mark.parametrize("variant", ["2026-11-26T10:00:00Z", "2026-11-26T10:00:00+00:00", "2026-11-26T10:00:00.000Z",
                                     "2026-11-26T12:00:00+02:00", "2026-11-26T10:00:00.000000000Z", "2026-11-26t10:00:00z"])
def test_one_instant_written_any_way_has_one_identity(variant):
    reference = parse_event(_with(_event(), eventTime="2026-11-26T10:00:00Z"))
    assert parse_event(_with(_event(), eventTime=variant)).key == reference.key


def test_integer_and_float_spellings_have_one_identity():
    a, b = _event(), _event()
    a["run"]["facets"]["custom"] = {"_producer": "https://p", "_schemaURL": "https://s", "rows": 1, "ratio": 0.5}
    b["run"]["facets"]["custom"] = {"_producer": "https://p", "_schemaURL": "https://s", "rows": 1.0, "ratio": 5e-1}
    assert parse_event(a).key == parse_event(b).key
    from lineage.events import parse_raw  # bytes take the fast path; same identity as decoded values
    assert parse_raw(json.dumps(a).encode()).key == parse_raw(json.dumps(b).encode()).key == parse_event(a).key


def test_upper_and_lower_case_uuids_have_one_identity():
    lower = _event()
    lower["run"]["facets"]["parent"] = {"_producer": "https://p", "_schemaURL": "https://s",
                                        "run": {"runId": "0b6a6d1c-5a3c-4b56-8d0e-4a0a6b7c1e12"}, "job": {"namespace": "ns", "name": "dag"}}
    upper = copy.deepcopy(lower)
    upper["run"]["runId"] = upper["run"]["runId"].upper()
    upper["run"]["facets"]["parent"]["run"]["runId"] = "0B6A6D1C-5A3C-4B56-8D0E-4A0A6B7C1E12"
    assert parse_event(upper).key == parse_event(lower).key
    assert json.loads(parse_event(upper).payload)["run"]["runId"] == lower["run"]["runId"]


def test_different_instants_have_different_identities():
    assert parse_event(_with(_event(), eventTime="2026-11-26T10:00:00Z")).key != parse_event(_with(_event(), eventTime="2026-11-26T10:00:00.001Z")).key


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_canonical_form_is_rfc8785_whichever_path_computes_it(value):
    """The msgspec fast path is taken only where it gives RFC 8785's bytes exactly."""
    import rfc8785

    from lineage.events.canonical import canonical

    has_float = "float" in repr(type(value)) or any(isinstance(x, float) for x in _leaves(value))
    assert canonical(value, floats=has_float) == rfc8785.dumps(value)
    assert canonical(value, floats=True) == rfc8785.dumps(value)


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _bytes_with(raw_value: bytes) -> bytes:
    """The sample event's JSON with a `poison` run facet field holding ``raw_value`` (raw JSON text)."""
    event = _event()
    event["run"]["facets"]["poison"] = {"_producer": "https://p", "_schemaURL": "https://s", "v": "@@"}
    return json.dumps(event).encode().replace(b'"@@"', raw_value)


@pytest.mark.parametrize(
    "body, path, reason_part",
    [
        (_bytes_with(b'"a\\u0000"'), "$.run.facets.poison.v", "NUL"),
        (_bytes_with(b'"caf\xc3\x28"'), "$", "UTF-8"),
        (b"[" * 1000 + b"]" * 1000, "$", "nested"),
        (_bytes_with(b"[" * 101 + b"]" * 101), "$", "nested"),
        (_bytes_with(b"1e400"), "$.run.facets.poison.v", "finite"),
        (_bytes_with(b"123456789012345678901234567890"), "$.run.facets.poison.v", "2^53"),
        (_bytes_with(b'"\\ud800"'), "$", "JSON"),
    ],
)
def test_poison_bytes_are_refused_naming_the_field(body, path, reason_part):
    from lineage.events import parse_raw

    with pytest.raises(InvalidEvent) as info:
        parse_raw(body)
    assert info.value.problems[0].path == path, info.value.problems
    assert reason_part.lower() in info.value.problems[0].reason.lower()


def test_an_escaped_backslash_before_u0000_is_text_not_nul():
    from lineage.events import parse_raw

    assert parse_raw(_bytes_with(b'"C:\\\\u0000dir"')).raw["run"]["facets"]["poison"]["v"] == "C:\\u0000dir"


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda e: e["job"].__setitem__("name", "x" * 1025), "$.job.name"),
        (lambda e: e["inputs"][0].__setitem__("namespace", "é" * 513), "$.inputs[0].namespace"),
        (lambda e: e["run"]["facets"].__setitem__("parent", {"_producer": "https://p", "_schemaURL": "https://s", "run": "x"}), "$.run.facets.parent.run"),
        (lambda e: e["run"]["facets"]["nominalTime"].__setitem__("nominalStartTime", "0001-01-01T00:00:00+14:00"), "$.run.facets.nominalTime.nominalStartTime"),
        (lambda e: e["run"]["facets"]["nominalTime"].__setitem__("nominalEndTime", 5), "$.run.facets.nominalTime.nominalEndTime"),
        (lambda e: e.__setitem__("dataset", {"namespace": "a", "name": "b"}) or e.pop("run"), "$.dataset"),
        (lambda e: e["job"].__setitem__("facets", {"x": {"_producer": "not a uri", "_schemaURL": "https://s"}}), "$.job.facets.x._producer"),
        (lambda e: e["job"].__setitem__("facets", {"x": {"_producer": "https://p", "_schemaURL": "https://s", "_deleted": "yes"}}), "$.job.facets.x._deleted"),
        (lambda e: e["run"]["facets"].__setitem__("k\x00", {"_producer": "https://p", "_schemaURL": "https://s"}), "$.run.facets.k\\u0000"),
    ],
)
def test_values_the_store_cannot_hold_are_refused_naming_the_field(mutate, path):
    event = _event()
    mutate(event)
    assert _problem(event)[0] == path


def test_names_up_to_the_limit_are_accepted():
    from lineage.events import MAX_NAME_BYTES

    event = _event()
    event["job"]["name"] = "x" * MAX_NAME_BYTES
    event["inputs"][0]["name"] = "€" * (MAX_NAME_BYTES // 3)
    assert parse_event(event).job_name == "x" * MAX_NAME_BYTES


def _outcome(body: bytes, datasets: bool):
    from lineage.events import parse_raw

    try:
        ev = parse_raw(body, datasets=datasets)
    except InvalidEvent as exc:
        return "refused", [(p.path, p.reason) for p in exc.problems]
    return "ok", (ev.key, ev.payload, ev.kind, ev.event_type, ev.event_time, ev.run_id, ev.job_namespace, ev.job_name,
                  ev.producer, ev.parent_run_id, ev.nominal_start, ev.job_type, ev.normalizations)


@pytest.mark.parametrize("mutate", [
    lambda e: None,
    lambda e: e.update(eventTime="2026-11-26T10:00:00.123456789+02:00"),
    lambda e: e["inputs"][0]["facets"]["schema"].pop("_producer"),
    lambda e: e["inputs"][0].update(name=""),
    lambda e: e["outputs"].append({"namespace": "db", "name": "x", "facets": {"f": 1}}),
    lambda e: e["outputs"][0].update(facets={"f": {"_producer": "not a uri", "_schemaURL": "https://s"}}),
    lambda e: e.pop("run"),
])
def test_reading_without_datasets_validates_and_identifies_exactly_alike(mutate):
    """``datasets=False`` (the ingest path) skips only building the DatasetRefs: the same
    events are refused with the same problems, and the accepted ones get the same identity,
    payload and row columns."""
    event = _event()
    mutate(event)
    body = json.dumps(event).encode()
    assert _outcome(body, datasets=False) == _outcome(body, datasets=True)


def test_an_event_read_without_datasets_says_so_and_has_none():
    from lineage.events import parse_raw

    body = json.dumps(_event()).encode()
    full, bare = parse_raw(body), parse_raw(body, datasets=False)
    assert full.datasets_read and full.inputs and full.outputs
    assert not bare.datasets_read and bare.inputs == [] and bare.outputs == [] and bare.dataset is None


_GOOD = "https://example.com/f"
_odd_value = st.one_of(st.sampled_from(["not a uri", "", "x:y", "https://bad uri", "https://example.com/g#x"]),
                       st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=1),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@st.composite
def _facet_value(draw):
    """Mostly a good facet with one field spoiled (or none), sometimes not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2), st.none()))
    facet = {"_producer": _GOOD, "_schemaURL": _GOOD, "other": 1}
    spoil = draw(st.sampled_from(["none", "_producer", "_schemaURL", "drop__producer", "drop__schemaURL"]))
    if spoil.startswith("drop_"):
        del facet[spoil[5:]]
    elif spoil != "none":
        facet[spoil] = draw(_odd_value)
    if draw(st.booleans()):
        facet["_deleted"] = draw(st.one_of(st.booleans(), st.integers(0, 1), st.text(max_size=3), st.none()))
    return facet


_facets = st.dictionaries(st.sampled_from(["schema", "a", "b", "dataSource"]), _facet_value(), max_size=3)


@settings(max_examples=300, deadline=None)
@given(job=_facets, run=_facets, ds=_facets, inp=_facets, out=_facets,
       name=st.sampled_from(["t", "", "é" * 512, "é" * 513, "x" * 1024, "x" * 1025, "\U0001f600" * 256, "\U0001f600" * 257]))
def test_known_good_uris_never_let_a_facet_or_name_problem_through(job, run, ds, inp, out, name):
    """The fast path (facets whose URIs were accepted before, names certainly short enough)
    must refuse exactly what the full check refuses: the same event parsed cold (no URI
    remembered) and warm gives the same outcome, problems and paths included."""
    from lineage.events import model

    event = _event()
    event["job"]["facets"] = job
    event["run"]["facets"] = {**event["run"]["facets"], **run}
    event["inputs"][0]["facets"] = ds
    event["inputs"][0]["inputFacets"] = inp
    event["outputs"][0]["outputFacets"] = out
    event["outputs"][0]["name"] = name
    body = json.dumps(event).encode()
    model._GOOD_URIS.clear()
    cold = _outcome(body, datasets=True)
    warm = _outcome(body, datasets=True)  # the cold pass remembered every URI it accepted
    model._GOOD_URIS.update([_GOOD, "https://example.com/g#x", "x:y"])
    assert cold == warm == _outcome(body, datasets=True)
    name_refused = any(path == "$.outputs[0].name" for path, _ in (warm[1] if warm[0] == "refused" else []))
    assert name_refused is (not name or len(name.encode()) > 1024)
