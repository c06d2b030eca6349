"""Impact against a plain-Python reading of the same tables, on random graphs.

The impact query is tuned SQL (a walk by levels over arrays handing over to one by rows, hash
matches for the models' runs); this test states what it must answer in the simplest terms (a breadth-first walk over the
``job_io`` rows, filters on ``recorded_at``) and checks the two agree exactly, lists and order
included, now and as of a moment between two rounds of ingest: on graphs with cycles, jobs
reached by several paths, datasets written by several jobs, a model written by a job that is
not a trainer, refused and later gate decisions, and starts from datasets and from jobs.
"""

from __future__ import annotations

import random
import sys
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))

from gate_helpers import ingest  # noqa: E402

from lineage.errors import NotFound  # noqa: E402
from lineage.events.ids import NodeId  # noqa: E402
from lineage.samples import dataset, run_event  # noqa: E402
from lineage.store.impact import TRAINING_PURPOSE, impact  # noqa: E402

T0 = datetime(2026, 11, 3, tzinfo=timezone.utc)
NAMESPACES = ("g", "g.b", "gé")  # "g:" sorts after "g.b:" by code point, not by namespace


def _graph_round(rng: random.Random, jobs: int, datasets: int, first: int, when: datetime) -> list[dict]:
    """One run each of ``jobs`` random jobs (numbered from ``first``) over ``datasets`` datasets."""
    events = []
    for k in range(jobs):
        j = rng.randrange(first + jobs)  # earlier jobs run again, with new edges
        ns = NAMESPACES[j % 3]
        ins = [dataset(NAMESPACES[d % 3], f"d{d}") for d in rng.sample(range(datasets), rng.choice((0, 1, 1, 2, 3)))]
        outs = [dataset(NAMESPACES[d % 3], f"d{d}") for d in rng.sample(range(datasets), rng.choice((1, 1, 2, 3)))]
        run = f"{rng.getrandbits(128):032x}"
        run = f"{run[:8]}-{run[8:12]}-4{run[13:16]}-8{run[17:20]}-{run[20:]}"
        at = when + timedelta(minutes=k)
        events.append(run_event("START", (ns, f"j{j}"), run, ins, outs, at))
        if rng.random() < 0.8:  # some runs never finish
            events.append(run_event(rng.choice(("COMPLETE", "COMPLETE", "FAIL")), (ns, f"j{j}"), run, ins, outs, at + timedelta(seconds=30)))
    return events


def _decide(db, rng: random.Random, jobs: int) -> None:
    from lineage.gate.decision import Decision
    from lineage.gate.service import record

    with db.connection() as conn:
        for j in rng.sample(range(jobs), jobs // 3):
            purpose = rng.choice((TRAINING_PURPOSE, TRAINING_PURPOSE + ".faces", "essential.service", TRAINING_PURPOSE + "x"))
            record(conn, Decision(job=f"{NAMESPACES[j % 3]}:j{j}", purpose=purpose, inputs=("dataset:g:d0",), allowed=rng.random() < 0.7))


def _reference(conn, node: NodeId, as_of: datetime | None) -> dict | None:
    """What impact must answer, computed in Python from the rows recorded by ``as_of``."""
    def seen(at) -> bool:
        return as_of is None or at <= as_of

    names = {("j", i): (ns, n) for i, ns, n, at in conn.execute(
        "SELECT j.id, n.name, j.name, j.recorded_at FROM jobs j JOIN namespaces n ON n.id = j.namespace_id") if seen(at)}
    names |= {("d", i): (ns, n) for i, ns, n, at in conn.execute(
        "SELECT d.id, n.name, d.name, d.recorded_at FROM datasets d JOIN namespaces n ON n.id = d.namespace_id") if seen(at)}
    key = {v: k for k, v in names.items() if k[0] == ("j" if node.type == "job" else "d")}.get((node.namespace, node.name))
    if key is None:
        return None
    outs, readers = {}, {}
    for job, ds, direction, at in conn.execute("SELECT job_id, dataset_id, direction, recorded_at FROM job_io"):
        if seen(at):
            (outs if direction == "o" else readers).setdefault(job if direction == "o" else ds, []).append(ds if direction == "o" else job)
    start_jobs = [key[1]] if key[0] == "j" else list(readers.get(key[1], []))
    walk, queue = set(start_jobs), deque(start_jobs)
    while queue:
        for ds in outs.get(queue.popleft(), []):
            for nxt in readers.get(ds, []):
                if nxt not in walk:
                    walk.add(nxt)
                    queue.append(nxt)
    start_ds = key[1] if key[0] == "d" else None
    written = {ds for j in walk for ds in outs.get(j, []) if ds != start_ds}
    trains = {(ns, n) for ns, n, purpose, at in conn.execute(
        "SELECT job_namespace, job_name, purpose, recorded_at FROM gate_decisions WHERE allowed")
        if seen(at) and (purpose == TRAINING_PURPOSE or purpose.startswith(TRAINING_PURPOSE + "."))}
    models = {ds for j in walk if names[("j", j)] in trains for ds in outs.get(j, []) if ds != start_ds}
    runs = {}
    for run, job, state, created, at in conn.execute("SELECT run_uuid::text, job_id, state, created_at, recorded_at FROM runs"):
        if job in walk and seen(at):
            if as_of is not None:
                state = conn.execute(
                    "SELECT state FROM run_states WHERE run_uuid = %s AND recorded_at <= %s"
                    " ORDER BY lineage_state_rank(state) DESC, event_time DESC LIMIT 1", (run, as_of)).fetchone()[0]
            runs[run] = {"runId": run, "job": "job:%s:%s" % names[("j", job)], "state": state,
                         "createdAt": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    wrote: dict[int, list[str]] = {}
    for run, ds in conn.execute("SELECT run_uuid::text, dataset_id FROM run_io WHERE direction = 'o'"):
        if ds in models and run in runs:
            wrote.setdefault(ds, []).append(run)
    ident = lambda kind, i: f"{'dataset' if kind == 'd' else 'job'}:%s:%s" % names[(kind, i)]  # noqa: E731
    return {
        "datasets": sorted(ident("d", d) for d in written),
        "jobs": sorted(ident("j", j) for j in walk if key != ("j", j)),
        "runs": sorted(runs.values(), key=lambda r: (r["createdAt"], r["runId"])),
        "models": dict(sorted((ident("d", d), sorted(wrote.get(d, []))) for d in models)),
    }


@pytest.mark.parametrize("seed, level_depth", [(1, 8), (2, 8), (3, 0), (4, 1), (5, 2)])
def test_impact_equals_a_plain_reading_of_the_edges_now_and_as_of(db, monkeypatch, seed, level_depth):
    # The walk goes LEVEL_DEPTH levels at once, then one row per job: 0 walks only by rows, 1 and
    # 2 hand over mid-graph (and mid-cycle), 8 walks these graphs mostly by levels.
    from lineage.store import impact as module

    monkeypatch.setattr(module, "LEVEL_DEPTH", level_depth)
    rng = random.Random(seed)
    jobs, datasets = 24, 30
    ingest(db, _graph_round(rng, jobs, datasets, 0, T0))
    _decide(db, rng, jobs)
    with db.connection() as conn:
        between = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    ingest(db, _graph_round(rng, jobs // 2, datasets + 6, jobs, T0 + timedelta(days=1)))  # new jobs, new datasets, new edges
    _decide(db, rng, jobs + jobs // 2)
    starts = [NodeId("dataset", NAMESPACES[d % 3], f"d{d}") for d in range(datasets + 6)]
    starts += [NodeId("job", NAMESPACES[j % 3], f"j{j}") for j in range(0, jobs + jobs // 2, 3)]
    checked = nonempty = 0
    with db.connection() as conn:
        for as_of in (None, between):
            for node in starts:
                want = _reference(conn, node, as_of)
                if want is None:
                    with pytest.raises(NotFound):
                        impact(conn, node, as_of)
                    continue
                got = impact(conn, node, as_of)
                assert (got.datasets, got.jobs, got.runs, got.models) == (want["datasets"], want["jobs"], want["runs"], want["models"]), (str(node), as_of)
                checked += 1
                nonempty += bool(got.models) and len(got.jobs) > 2
    assert checked > len(starts) and nonempty > 0  # the graphs reached something worth comparing
