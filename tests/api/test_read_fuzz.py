"""The read side never answers 5xx: hostile parameters get a 400 naming the parameter.

The explicit cases are the ones that gave 500 before (NUL in a parameter or a path segment,
integers past PostgreSQL's bigint, times that overflow in UTC); the Hypothesis test throws
mutated paths and query strings at every GET route of the read API.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from example_pipeline.sample import ml_pipeline_sample

BIG = 2**63
RUN = "/api/v1/jobs/runs/00000000-0000-4000-8000-000000000000"


@pytest.fixture
def loaded(client):
    assert client.post("/api/v1/lineage/batch", json=ml_pipeline_sample()).json()["stored"] == 8
    return client


def _bad(client, path: str, params: dict, field: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400, (path, params, r.status_code, r.text)
    body = r.json()
    assert body["code"] == 400 and field in body["message"], (path, params, body)


@pytest.mark.parametrize("path, params, field", [
    ("/api/v1/namespaces", {"offset": BIG}, "offset"),
    ("/api/v1/namespaces", {"offset": -1}, "offset"),
    ("/api/v1/namespaces", {"limit": BIG}, "limit"),
    ("/api/v1/namespaces", {"limit": 0}, "limit"),
    ("/api/v1/namespaces/curated/datasets", {"offset": 10**30}, "offset"),
    ("/api/v1/events/lineage", {"offset": BIG}, "offset"),
    ("/api/v1/events/lineage", {"before": "yesterday"}, "before"),
    ("/api/v1/events/lineage", {"after": "2026-13-45T99:00:00Z"}, "after"),
    ("/api/v1/events/lineage", {"after": "9999-12-31T23:59:59-14:00"}, "after"),
    ("/api/v1/events/lineage", {"before": "0001-01-01T00:00:00+14:00"}, "before"),
    ("/api/v1/events/lineage", {"namespace": "a\x00b"}, "namespace"),
    ("/api/v1/events/lineage", {"sortDirection": "sideways"}, "sortDirection"),
    ("/api/v1/events/lineage", {"cursor": "\x00"}, "cursor"),
    ("/api/v1/lineage", {"nodeId": "dataset:a:b\x00"}, "nodeId"),
    ("/api/v1/lineage/upstream", {"nodeId": "dataset:curated:training.face_photos_v1", "depth": BIG}, "depth"),
    ("/api/v1/lineage/upstream", {"nodeId": "dataset:curated:training.face_photos_v1", "depth": -1}, "depth"),
    ("/api/v1/lineage/downstream", {"nodeId": "dataset:curated:training.face_photos_v1", "asOf": "9999-12-31T23:59:59-14:00"}, "asOf"),
    ("/api/v1/lineage/downstream", {"nodeId": "dataset:curated:training.face_photos_v1", "asOf": "not a time"}, "asOf"),
    ("/api/v1/namespaces/ml-pipeline/jobs/train_model.train/runs", {"offset": BIG}, "offset"),
    ("/api/v1/namespaces/models/datasets/face-embedder/versions", {"limit": -5}, "limit"),
])
def test_hostile_query_parameters_are_400_naming_the_parameter(loaded, path, params, field):
    _bad(loaded, path, params, field)


@pytest.mark.parametrize("path, field", [
    ("/api/v1/namespaces/a%00b", "namespace"),
    ("/api/v1/namespaces/curated/datasets/x%00", "dataset"),
    ("/api/v1/namespaces/%00/jobs", "namespace"),
    ("/api/v1/namespaces/ml-pipeline/jobs/j%00/runs", "job"),
    ("/api/v1/namespaces/models/datasets/face-embedder/versions/%00", "version"),
    ("/api/v1/jobs/runs/%00", "id"),
])
def test_nul_in_a_path_segment_is_400_naming_the_parameter(loaded, path, field):
    _bad(loaded, path, {}, field)


def test_a_naive_as_of_is_read_as_utc(loaded):
    # asOf bounds when edges were recorded: a minute from now sees them, an hour ago does not.
    node = {"nodeId": "dataset:curated:training.face_photos_v1"}
    soon = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    naive = loaded.get("/api/v1/lineage/upstream", params={**node, "asOf": soon}).json()
    utc = loaded.get("/api/v1/lineage/upstream", params={**node, "asOf": soon + "Z"}).json()
    assert naive == utc and len(naive["nodes"]) > 1
    # The same wall-clock time at +14:00 is 14 hours earlier in UTC: nothing recorded yet.
    east = loaded.get("/api/v1/lineage/upstream", params={**node, "asOf": soon + "+14:00"}).json()
    assert len(east["nodes"]) == 1


# -- Hypothesis ------------------------------------------------------------------------------
_ROUTES = [
    "/api/v1/namespaces", "/api/v1/namespaces/{a}", "/api/v1/namespaces/{a}/datasets",
    "/api/v1/namespaces/{a}/datasets/{b}", "/api/v1/namespaces/{a}/datasets/{b}/versions",
    "/api/v1/namespaces/{a}/datasets/{b}/versions/{c}", "/api/v1/namespaces/{a}/jobs",
    "/api/v1/namespaces/{a}/jobs/{b}", "/api/v1/namespaces/{a}/jobs/{b}/runs", "/api/v1/jobs/runs/{a}",
    "/api/v1/runs/{a}", "/api/v1/events/lineage", "/api/v1/events", "/api/v1/lineage",
    "/api/v1/lineage/upstream", "/api/v1/lineage/downstream",
]
_KNOWN = ["curated", "ml-pipeline", "partner-drops", "models", "face-embedder", "train_model.train",
          "lovematch/photos", "training.face_photos_v1", "dataset:curated:training.face_photos_v1",
          "job:ml-pipeline:train_model.train"]
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_segment = st.one_of(st.sampled_from(_KNOWN), _text, st.sampled_from(["%00", "%", "%2F", "..", "%FF", "%C0%AF", "::", "%25"]))
_time = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-11-01", "2026-11-01T00:00:00",
                     "294277-01-01T00:00:00Z", "-1", "1e309", "NaN", "2026-02-30T00:00:00Z", "T", ""]),
    st.datetimes().map(lambda d: d.isoformat()),
    _text,
)
_int = st.one_of(st.integers(), st.integers(min_value=BIG - 2, max_value=BIG + 2).map(str), st.sampled_from(["", "1.5", "1e3", "-0", " 1", "０"]), _text)
_params = st.fixed_dictionaries({}, optional={
    "limit": _int, "offset": _int, "depth": _int, "asOf": _time, "before": _time, "after": _time,
    "nodeId": st.one_of(st.sampled_from(_KNOWN), _text), "namespace": _text, "cursor": _text,
    "sortDirection": st.one_of(st.sampled_from(["asc", "desc"]), _text),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(_ROUTES), segments=st.lists(_segment, min_size=3, max_size=3), params=_params, encode=st.booleans())
def test_no_get_route_answers_5xx(loaded, route, segments, params, encode):
    def seg(s: str) -> str:
        return quote(s, safe="") if encode else quote(s, safe="%/:")

    path = route.format(a=seg(segments[0]), b=seg(segments[1]), c=seg(segments[2]))
    r = loaded.get(path, params=params)
    assert r.status_code < 500, (path, params, r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert set(body) >= {"code", "message"} and body["code"] == r.status_code


@pytest.mark.parametrize("segment", ["%FF", "%C0%AF", "%ED%A0%80", "a%E9b"])
def test_percent_bytes_that_are_not_utf8_are_400_not_an_alias_of_the_replacement_character(loaded, segment):
    # Decoding with replacement turned every invalid byte into U+FFFD, so `/namespaces/%FF`
    # answered for a namespace really named "\ufffd" (and `a%E9b` for "a\ufffdb").
    from lineage.samples import dataset, run_pair

    events = run_pair(("\ufffd", "a\ufffdb"), 1, [], [dataset("\ufffd", "a\ufffdb")], datetime(2026, 11, 5, tzinfo=timezone.utc))
    assert loaded.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    assert loaded.get("/api/v1/namespaces/%EF%BF%BD").json()["name"] == "\ufffd"
    _bad(loaded, f"/api/v1/namespaces/{segment}", {}, "namespace")
    _bad(loaded, f"/api/v1/namespaces/%EF%BF%BD/datasets/{segment}", {}, "dataset")
    _bad(loaded, f"/api/v1/namespaces/%EF%BF%BD/jobs/{segment}/runs", {}, "job")


@pytest.mark.parametrize("path, query, field", [
    ("/api/v1/events/lineage", "namespace=%FF", "namespace"),
    ("/api/v1/events/lineage", "limit=1&namespace=%C3%A9%E9", "namespace"),
    ("/api/v1/lineage", "nodeId=dataset:%FF:a%EF%BF%BDb", "nodeId"),
    ("/api/v1/lineage/upstream", "nodeId=dataset:%FF:a%EF%BF%BDb", "nodeId"),
    ("/api/v1/lineage/downstream", "depth=1&nodeId=dataset:%ED%A0%80:a", "nodeId"),
])
def test_query_values_that_are_not_utf8_are_400_not_an_alias_of_the_replacement_character(loaded, path, query, field):
    from lineage.samples import dataset, run_pair

    events = run_pair(("\ufffd", "j"), 1, [], [dataset("\ufffd", "a\ufffdb")], datetime(2026, 11, 5, tzinfo=timezone.utc))
    assert loaded.post("/api/v1/lineage/batch", json=events).json()["stored"] == 2
    # The same names spelt in valid UTF-8 are found ...
    good = loaded.get(path, params={"namespace": "\ufffd", "nodeId": "dataset:\ufffd:a\ufffdb"})
    assert good.status_code == 200 and good.json().get("totalCount", 1) > 0
    # ... but undecodable bytes are refused rather than read as U+FFFD.
    r = loaded.get(f"{path}?{query}")
    assert r.status_code == 400 and r.json()["message"].startswith(f"query.{field}:"), r.text
