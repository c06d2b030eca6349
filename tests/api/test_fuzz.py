"""Fuzz ingest over real HTTP: mutated spec examples never get a 5xx, and nothing invalid is stored.

Hypothesis drives :mod:`fuzz_mutations` (mutations inside facets, names, timestamps, UUIDs and
encodings) against the live server, one event at a time and in NDJSON / JSON-array batches
with valid events mixed in.  The properties:

* no answer is >= 500;
* a single event gets 201, or a 4xx whose body names a field;
* a batch is answered 200, reports each bad item by index (naming a field), and stores every
  valid event in it -- checked in the store, by run id;
* every stored event validates against the official schema, with the ``date-time``, ``uri``
  and ``uuid`` formats checked, and its times are in the one stored UTC format.

The example counts are modest and derandomised so ``make test`` stays fast and repeatable;
``benchmarks/fuzz_ingest.py`` runs the same mutations 100,000+ times.
"""

from __future__ import annotations

import random
import re
import uuid

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

import fuzz_mutations as fm
from tests_support import SPEC_VALIDATOR

_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class _StoredChecker:
    """Validates every raw event stored since the last call."""

    def __init__(self, db) -> None:
        self.db, self.last = db, 0

    def check(self) -> int:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT id, payload::text FROM raw_events WHERE id > %s ORDER BY id", (self.last,)).fetchall()
        for raw_id, payload in rows:
            event = msgspec.json.decode(payload)
            SPEC_VALIDATOR.validate(event)
            assert _STORED_TIME.fullmatch(event["eventTime"]), event["eventTime"]
            nominal = (event.get("run") or {}).get("facets", {}).get("nominalTime")
            if isinstance(nominal, dict):
                for key in ("nominalStartTime", "nominalEndTime"):
                    if key in nominal:
                        assert _STORED_TIME.fullmatch(nominal[key]), nominal
            self.last = raw_id
        return len(rows)


def _names_a_field(response) -> bool:
    body = response.json()
    errors = body.get("errors") or []
    return bool(errors) and all(isinstance(e.get("field"), str) and e["field"] for e in errors)


@_FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_single_mutated_events_get_201_or_a_4xx_naming_a_field(client, db, rng):
    checker = _StoredChecker(db)
    checker.last = _max_id(db)
    body = fm.mutated_body(rng)
    r = client.post("/api/v1/lineage", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text[:300], body[:300])
    if r.status_code == 201:
        assert checker.check() <= 1
    else:
        assert 400 <= r.status_code < 500 and _names_a_field(r), (r.status_code, r.text[:300])
        assert checker.check() == 0


@_FUZZ
# Most batches are small; about one in six spans several of the batch path's chunks (64 items), so a
# bad item next to a chunk boundary, or a chunk of only bad items, meets the overlapped store.
@given(rng=st.randoms(use_true_random=False),
       size=st.integers(0, 3).flatmap(lambda k: st.integers(63, 200) if k == 0 else st.integers(2, 8)), ndjson=st.booleans())
def test_batches_store_every_valid_event_and_report_each_bad_one(client, db, rng, size, ndjson):
    checker = _StoredChecker(db)
    checker.last = _max_id(db)
    items: list[bytes] = []
    good_runs: dict[int, str] = {}
    for i in range(size):
        if rng.random() < 0.4:
            event = fm.base_event(rng)
            good_runs[i] = event["run"]["runId"]
            items.append(fm.serialise(event, rng))
        else:
            items.append(fm.mutated_body(rng, truncate=ndjson))
    if ndjson:
        body, ctype = b"\n".join(items), "application/x-ndjson"
    else:
        body, ctype = b"[" + b",".join(items) + b"]", "application/json"
    r = client.post("/api/v1/lineage/batch", content=body, headers={"Content-Type": ctype})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert r.status_code == 200, (r.status_code, r.text[:300])
    report = r.json()
    assert report["received"] == size
    rejected = {x["index"]: x["errors"] for x in report["rejected"]}
    assert not rejected.keys() & good_runs.keys(), (rejected, good_runs)
    assert all(errors and all(e["field"] for e in errors) for errors in rejected.values())
    assert report["stored"] + report["duplicates"] + len(rejected) == size
    with db.connection() as conn:
        found = conn.execute(
            "SELECT count(DISTINCT run_uuid) FROM raw_events WHERE run_uuid = ANY(%s)", ([uuid.UUID(r) for r in good_runs.values()],)
        ).fetchone()[0]
    assert found == len(set(good_runs.values()))
    assert checker.check() == report["stored"]


def _max_id(db) -> int:
    with db.connection() as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM raw_events").fetchone()[0]


def test_the_mutations_reach_every_poison_the_issue_names():
    """The fuzzer is only as good as its mutations: each class of poison event is produced."""
    rng = random.Random(7)
    bodies = [fm.mutated_body(rng) for _ in range(3000)]
    joined = b"\n".join(bodies)
    for needle in (b"\\u0000", b"\\ud800", b"\xff", b"[" * 1000, b"1e400", b'"run":"x"', b"9999-12-31T23:59:59-14:00",
                   b"2021-11-03T10:53:52.427343", b'"2020-01-01"', b"x" * 3000):
        assert needle in joined, needle
