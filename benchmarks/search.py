"""Search benchmark: ``/api/v1/search`` latency on a store filled by the workload generator.

Run: ``.venv/bin/python benchmarks/search.py [--events 1000000] [--checkpoints 100000,250000,...]``.
It ingests the deterministic workload (``benchmarks/workload.py``) into a fresh embedded
PostgreSQL in batches of 5,000 through :func:`lineage.store.batch.ingest_batch`, and at each
checkpoint runs a fixed mix of searches in-process (:func:`lineage.store.search.search`, the
function the route calls, on a pooled connection), shuffled, ``--queries`` each, and writes
``benchmarks/results/search.md`` after every checkpoint, so an interrupted run still reports
the sizes it reached.

The query mix covers the costly shapes: a name shared by every pipeline (``transform_l05_j1``:
one job per namespace, hundreds of whole-name matches), a broad prefix (``transform``: every
job), a contains match (``l07_j1_t0``), a broad contains match that starts no name
(``ransform``), a rare one, one that matches nothing, a two-letter one (a prefix search),
sorted by name and by update time, filtered to one namespace, and a deep page.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Workload  # noqa: E402

QUERIES = [
    ("whole name shared by every pipeline", dict(q="transform_l05_j1")),
    ("broad prefix (every job)", dict(q="transform")),
    ("contains", dict(q="l07_j1_t0")),
    ("rare (one pipeline)", dict(q="p00042_l03")),
    ("no match", dict(q="nosuchname")),
    ("two letters (prefix only)", dict(q="an")),
    ("broad contains, no prefix match", dict(q="ransform")),
    ("sort=name", dict(q="analytics", sort="name")),
    ("sort=updated_at", dict(q="l02_j0", sort="updated_at")),
    ("filter=job, namespace", dict(q="transform", kinds=["JOB"], namespace="pipeline-00007")),
    ("page 5 of 20", dict(q="source", offset=80, limit=20)),
]


def measure(db, n: int) -> list[tuple[str, float, float, int]]:
    from lineage.store.search import search

    order = [i for i in range(len(QUERIES)) for _ in range(n)]
    random.Random(7).shuffle(order)
    times: dict[int, list[float]] = {i: [] for i in range(len(QUERIES))}
    totals: dict[int, int] = {}
    with db.connection() as conn:
        for i in order:
            args = {"kinds": ["DATASET", "JOB"], "sort": None, "limit": 10, "offset": 0, **QUERIES[i][1]}
            t = time.perf_counter()
            result = search(conn, **args)
            times[i].append((time.perf_counter() - t) * 1000)
            totals[i] = result["totalCount"]
    out = []
    for i, (label, _) in enumerate(QUERIES):
        xs = sorted(times[i])
        out.append((label, statistics.median(xs), xs[int(0.95 * (len(xs) - 1))], totals[i]))
    all_xs = sorted(x for xs in times.values() for x in xs)
    out.append(("all queries", statistics.median(all_xs), all_xs[int(0.95 * (len(all_xs) - 1))], -1))
    return out


def report(path: Path, rows: dict[int, list], counts: dict[int, tuple[int, int]], started: float, target: int) -> None:
    lines = ["# Search benchmark (`/api/v1/search`)", "",
             f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} by `benchmarks/search.py`; "
             f"target store {target:,} events; {time.time() - started:.0f} s so far.", "",
             f"Machine: {platform.machine()}, {platform.python_version()}, 2 shared cores, embedded PostgreSQL 18 with "
             "default settings. In-process: the route's store function on one pooled connection (no HTTP).", ""]
    for size, res in rows.items():
        jobs, datasets = counts[size]
        lines += [f"## {size:,} events ({jobs:,} jobs, {datasets:,} datasets)", "",
                  "| query | p50 ms | p95 ms | totalCount |", "|---|---|---|---|"]
        for label, p50, p95, total in res:
            lines.append(f"| {label} | {p50:.2f} | {p95:.2f} | {'' if total < 0 else f'{total:,}'} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--checkpoints", default="100000,250000,500000,750000,1000000")
    ap.add_argument("--queries", type=int, default=40, help="runs of each query per checkpoint")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search.md"))
    ap.add_argument("--home", help="reuse the store of an earlier run (LINEAGE_HOME); events already in it are not sent again")
    args = ap.parse_args(argv)

    from lineage.config import Settings
    from lineage.store.db import open_database
    from lineage.store.batch import ingest_batch

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="lineage-search-bench-"))
    db = open_database(Settings(home=home), migrate=True)
    wl = Workload()
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if int(c) <= args.events)
    rows: dict[int, list] = {}
    counts: dict[int, tuple[int, int]] = {}
    started = time.time()
    with db.connection() as conn:
        done = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]  # the stream is deterministic
    for stop in checkpoints:
        while done < stop:
            n = min(5000, stop - done)
            batch = wl.serialized(done, done + n)
            with db.connection() as conn:
                result, bad = ingest_batch(conn, batch)
            assert not bad, bad[:1]
            done += n
        with db.connection() as conn:
            conn.execute("ANALYZE")
            counts[stop] = tuple(conn.execute("SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM datasets)").fetchone())
        rows[stop] = measure(db, args.queries)
        report(Path(args.out), rows, counts, started, args.events)
        print(f"{stop:,} events: search p95 {rows[stop][-1][2]:.2f} ms ({time.time() - started:.0f} s)", flush=True)
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
