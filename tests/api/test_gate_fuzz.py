"""Fuzz ``POST /api/v1/gate/complete`` over real HTTP with an emitter's token: never a 5xx, and
never an allowance the contracts or the reported results do not give.

Hypothesis builds bodies around a well-formed completion (ACME's approved contract, its drop
known as an origin) and mutates them: missing, extra and mistyped fields, hostile strings
(NUL, lone surrogates, huge), NaN and infinities, deep and odd result dicts, inputs and
validations about other datasets.  The properties:

* no answer is >= 500;
* a 4xx body names a field;
* a 200 is final, and allows only the one purpose and input the contract permits, with a
  passing result reported for every planned suite; a 200 of either kind is in the decision log.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

import pytest

from gate.gate_helpers import ACME, STEWARD, ingest, read_event, register

JOB = "ml-pipeline:train_model.train"
PURPOSE = "train_ai_system"
SUITE = "acme-stock-photos.photos"
_FUZZ = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_text = st.one_of(st.sampled_from(["", "x", ACME, "acme/photos", "dataset:", ":", "a\x00b", "\ud800", "é" * 3,
                                   JOB, PURPOSE, SUITE, "dataset:partner-drops:lovematch/photos"]), st.text(max_size=20),
                  st.builds(lambda: "x" * 5000))  # built, so Hypothesis does not print 5000 x's per example
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), _text)
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
                     max_leaves=20)
_result = st.one_of(
    st.fixed_dictionaries({"type": st.one_of(_text, _json), "success": st.one_of(st.booleans(), _json)},
                          optional={"column": _json, "clause": _json, "check": _json, "error": _json, "sample": _json,
                                    "unexpected_columns": _json, "missing_columns": _json}),
    st.dictionaries(_text, _json, max_size=3),
)
_validation = st.fixed_dictionaries(
    {"dataset": st.one_of(st.just(ACME), _text), "suite": st.one_of(st.just(SUITE), _text),
     "success": st.one_of(st.booleans(), _json), "results": st.one_of(st.lists(_result, max_size=4), _json)},
    optional={"contract": st.one_of(st.just("acme-stock-photos@1"), _json), "seconds": _json, "extra": _json},
)
_body = st.fixed_dictionaries(
    {},
    optional={"job": st.one_of(st.just(JOB), _json), "purpose": st.one_of(st.just(PURPOSE), _json),
              "inputs": st.one_of(st.just([ACME]), st.lists(_text, max_size=3), _json),
              "validated": st.one_of(st.just([ACME]), st.just([]), st.lists(_text, max_size=3), _json),
              "validations": st.one_of(st.lists(_validation, max_size=3), _json),
              "decisionId": _json, "as": _json},
)


@pytest.fixture
def acme_ready(db):
    register(db, "acme-stock-photos.yaml", STEWARD)
    ingest(db, read_event("ml-pipeline:ingest.transfer", [ACME], []))


@pytest.fixture
def worker_token(tokens) -> str:
    return tokens("fuzz-worker", "emitter")


def _passes(body: dict) -> bool:
    """Did the worker report the planned suite on ACME as passed, every result included?"""
    return any(isinstance(v, dict) and v.get("dataset") == ACME and v.get("suite") == SUITE and v.get("success") is True
               and isinstance(v.get("results"), list) and all(isinstance(r, dict) and r.get("success") is True for r in v["results"])
               for v in body.get("validations") or [])


@_FUZZ
@given(body=_body, base=st.booleans())
def test_hostile_completions_never_500_and_never_allow_what_they_should_not(acme_ready, live_server, worker_token, db, body, base):
    import httpx

    from lineage.gate.service import recent

    if base:  # most examples start from a well-formed completion and change a few fields
        body = {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": [], **body}
    payload = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    with db.connection() as conn:
        before = {d["decisionId"] for d in recent(conn, limit=1000)}
    r = httpx.post(f"{live_server.url}/api/v1/gate/complete", content=payload, timeout=30,
                   headers={"Authorization": f"Bearer {worker_token}", "Content-Type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text[:300], payload[:300])
    answer = r.json()
    if r.status_code != 200:
        assert 400 <= r.status_code < 500 and answer["errors"] and all(e["field"] for e in answer["errors"]), r.text[:300]
        return
    assert answer["final"] is True
    if answer["allowed"]:
        assert body["purpose"] == PURPOSE, answer["text"]
        assert {i if i.startswith("dataset:") else f"dataset:{i}" for i in body["inputs"]} == {ACME}, answer["text"]
        validated = {i if i.startswith("dataset:") else f"dataset:{i}" for i in body["validated"]}
        assert not validated or _passes(body), answer["text"]
    with db.connection() as conn:
        after = {d["decisionId"] for d in recent(conn, limit=1000)}
    assert answer["decisionId"] in after - before, "every final answer is in the decision log"


@pytest.mark.parametrize("route, body, field", [
    ("check", {"job": JOB, "purpose": PURPOSE, "inputs": ["\ud800"]}, "body.inputs.0"),
    ("check", {"job": "ml\ud800:x", "purpose": PURPOSE, "inputs": [ACME]}, "body.job"),
    ("complete", {"job": JOB, "purpose": PURPOSE, "inputs": ["\ud800"], "validated": [], "validations": []}, "body.inputs.0"),
    ("complete", {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": [
        {"dataset": ACME, "suite": SUITE, "success": False, "results": [{"type": "\ud800", "success": False}]}]},
     "body.validations.0.results"),
    ("complete", {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": [
        {"dataset": ACME, "suite": SUITE, "success": True, "results": [{"observed": float("nan")}]}]},
     "body.validations.0.results"),
    ("complete", {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": [
        {"dataset": ACME, "suite": SUITE, "success": True, "results": [], "seconds": float("inf")}]},
     "body.validations.0.seconds"),
])
def test_text_json_cannot_carry_is_a_400_naming_the_field_not_a_500(acme_ready, live_server, worker_token, route, body, field):
    """A lone surrogate in an input used to reach the error message and the answer, which then
    could not be encoded: a 500 with a stack trace in the log."""
    import httpx

    r = httpx.post(f"{live_server.url}/api/v1/gate/{route}", content=json.dumps(body).encode(), timeout=30,
                   headers={"Authorization": f"Bearer {worker_token}", "Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert field in [e["field"] for e in r.json()["errors"]], r.text[:300]


def test_a_result_without_success_or_type_blocks_with_a_failed_expectation_not_a_gate_error(acme_ready, live_server, worker_token):
    import httpx

    body = {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": [
        {"dataset": ACME, "suite": SUITE, "success": True, "results": [{"column": 7}]}]}
    r = httpx.post(f"{live_server.url}/api/v1/gate/complete", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {worker_token}"})
    assert r.status_code == 200 and r.json()["allowed"] is False
    assert [x["code"] for x in r.json()["reasons"]] == ["expectation_failed"], r.json()["reasons"]
