"""The graph answer's cache: repeated views are answered from it, and no change to the store,
however it is made, is ever hidden by it (real HTTP, real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from lineage.dashboard.cache import ResponseCache
from lineage.samples import dataset, run_event
from lineage.store.dashboard import change_stamp

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SRC = "dataset:drops:src"


def _emit(client, job, inputs, outputs):
    ev = run_event("COMPLETE", ("pipe", job), str(uuid.uuid4()), [dataset(*i) for i in inputs], [dataset(*o) for o in outputs], at=T0)
    r = client.post("/api/v1/lineage", json=ev)
    assert r.status_code == 201, r.text


def _graph(client, **params):
    r = client.get("/api/v1/dashboard/graph", params={"nodeId": SRC, "direction": "downstream", **params})
    assert r.status_code == 200, r.text
    return r.headers["x-lineage-cache"], r.json()


@pytest.fixture(autouse=True)
def no_background_sealing(monkeypatch):
    """The server's sealer commits ledger blocks a moment after each write, which (rightly)
    moves the stamp: off here, so a "hit" is not at the mercy of its timing."""
    monkeypatch.setenv("LINEAGE_AUDIT_SEAL_INTERVAL", "0")


@pytest.fixture
def chain(client):
    _emit(client, "ingest", [("drops", "src")], [("raw", "a")])
    return client


def test_a_repeated_view_is_answered_from_the_cache_with_the_same_bytes(chain):
    first = chain.get("/api/v1/dashboard/graph", params={"nodeId": SRC, "direction": "downstream"})
    again = chain.get("/api/v1/dashboard/graph", params={"nodeId": SRC, "direction": "downstream"})
    assert first.headers["x-lineage-cache"] == "miss" and again.headers["x-lineage-cache"] == "hit"
    assert again.content == first.content
    # Another question is another entry, even when only a list parameter's order differs it is the same one.
    assert _graph(chain, depth=1)[0] == "miss"
    assert _graph(chain, expand=["dataset:raw:a", SRC])[0] == "miss"
    assert _graph(chain, expand=[SRC, "dataset:raw:a"])[0] == "hit"


def test_new_lineage_is_never_hidden_by_a_cached_answer(chain):
    assert _graph(chain)[0] == "miss" and _graph(chain)[0] == "hit"
    _emit(chain, "build", [("raw", "a")], [("cur", "set")])
    how, body = _graph(chain, depth=5)
    assert how == "miss" and "dataset:cur:set" in {n["id"] for n in body["nodes"]}
    how, body = _graph(chain)
    assert how == "miss", "the store changed since the answer was cached"


def test_an_erasure_and_a_revocation_show_at_once(chain, tokens):
    _, before = _graph(chain)
    assert _graph(chain)[0] == "hit"
    assert {n["id"]: n["status"] for n in before["nodes"] if n["type"] == "dataset"}[SRC] == "missing"
    steward = {"Authorization": f"Bearer {tokens('stw', 'steward')}"}
    r = chain.post("/api/v1/erasures", json={"source": SRC, "reason": "consent withdrawn"}, headers=steward)
    assert r.status_code == 201, r.text
    how, after = _graph(chain)
    assert how == "miss"
    marks = {n["id"]: (n["status"], n.get("erasure")) for n in after["nodes"] if n["type"] == "dataset"}
    assert marks[SRC] == ("erased", r.json()["id"]) and marks["dataset:raw:a"] == ("erased", r.json()["id"])


def test_a_viewer_sees_erased_marks_without_reading_the_manifests(chain, tokens, anon_client):
    steward = {"Authorization": f"Bearer {tokens('stw', 'steward')}"}
    erasure = chain.post("/api/v1/erasures", json={"source": SRC, "reason": "consent withdrawn"}, headers=steward).json()
    viewer = {"Authorization": f"Bearer {tokens('v', 'viewer')}"}
    assert anon_client.get("/api/v1/erasures", headers=viewer).status_code == 403
    r = anon_client.get("/api/v1/dashboard/graph", params={"nodeId": SRC, "direction": "downstream"}, headers=viewer)
    assert {n["id"]: n.get("erasure") for n in r.json()["nodes"] if n["type"] == "dataset"}[SRC] == erasure["id"]


def test_the_stamp_moves_when_an_older_transaction_commits_after_a_newer_one(db_url):
    """The case a highest-id stamp gets wrong: A writes first, B writes and commits, the stamp
    is read, then A commits.  A's rows are new data, so the stamp must move."""
    with psycopg.connect(db_url) as reader, psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        reader.autocommit = True
        a.execute("CREATE TEMP TABLE scratch_a (x int)")  # holds an xid, uncommitted
        a.execute("INSERT INTO scratch_a VALUES (1)")
        b.execute("CREATE TEMP TABLE scratch_b (x int)")
        b.commit()
        seen = change_stamp(reader)
        a.commit()
        assert change_stamp(reader) != seen


def test_a_stale_entry_is_never_served_and_the_cache_stays_within_its_bounds():
    cache = ResponseCache(max_entries=3, max_bytes=100)
    cache.put("q", "s1", b"old")
    assert cache.get("q", "s2") is None, "another stamp: a miss"
    assert cache.get("q", "s1") is None, "and the stale entry is gone"
    for i in range(5):
        cache.put(i, "s", b"x" * 10)
    assert len(cache) == 3 and cache.get(0, "s") is None and cache.get(4, "s") == b"x" * 10
    cache.put("big", "s", b"y" * 90)
    assert cache.get("big", "s") == b"y" * 90 and len(cache) <= 2, "evicted down to the byte budget"
    cache.put("huge", "s", b"z" * 101)
    assert cache.get("huge", "s") is None, "larger than the whole budget: not kept"


def test_a_graph_as_of_a_moment_before_the_erasure_does_not_mark_it(chain, tokens):
    import time

    time.sleep(0.01)
    before = datetime.now(timezone.utc)
    time.sleep(0.01)
    steward = {"Authorization": f"Bearer {tokens('stw', 'steward')}"}
    erasure = chain.post("/api/v1/erasures", json={"source": SRC, "reason": "consent withdrawn"}, headers=steward).json()
    _, then = _graph(chain, asOf=before.isoformat())
    _, now = _graph(chain)
    assert {n["id"]: n.get("erasure") for n in then["nodes"] if n["type"] == "dataset"} == {SRC: None, "dataset:raw:a": None}
    assert {n["id"]: n.get("erasure") for n in now["nodes"] if n["type"] == "dataset"} == {SRC: erasure["id"], "dataset:raw:a": erasure["id"]}
