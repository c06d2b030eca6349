"""Raw-event write rate before and after partitioning (migration 0014): ``_store_raw`` alone.

Two databases on one embedded PostgreSQL: one migrated to 0012 (unpartitioned ``raw_events``
with its unique ``event_key`` index) written by the 0012 version of ``_store_raw`` (copied
below as it was), one at head (partitioned, keys claimed in ``event_keys``) written by today's.
Both carry the ledger's queue trigger.  Rounds alternate between the two so that machine noise
hits both alike (the median of the per-round ratios is the figure to read); each round stores fresh events (workload.py, ~3 KB each) in batches of
``--batch`` events, one transaction per batch, then the same number again one event per
transaction, and finally re-sends a batch (all duplicates).  Prints events/s per variant and
the ratio.  Usage: ``python benchmarks/raw_write.py [--events 20000] [--batch 1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import Workload  # noqa: E402

from lineage.events.model import parse_event  # noqa: E402
from lineage.store import ingest  # noqa: E402

_RAW_COLUMNS = ingest._RAW_COLUMNS


def old_store_raw(conn, events):
    """``_store_raw`` as it was at 0012 (unique index on raw_events.event_key)."""
    keys = [ev.key for ev in events]
    known = {r[0] for r in conn.execute("SELECT event_key FROM raw_events WHERE event_key = ANY(%s)", (keys,))}
    new = sorted((ev for ev in events if ev.key not in known), key=lambda ev: ev.key.bytes)
    if not new:
        return [], []
    ids = [r[0] for r in conn.execute("SELECT nextval('raw_events_id_seq') FROM generate_series(1, %s)", (len(new),))]
    try:
        with conn.transaction(), conn.cursor().copy(f"COPY raw_events (id, {_RAW_COLUMNS}) FROM STDIN") as copy:
            for ev, raw_id in zip(new, ids):
                copy.write_row((raw_id,) + ingest._raw_row(ev))
        return new, ids
    except psycopg.errors.UniqueViolation:
        raise SystemExit("the benchmark's events are unique; a conflict means a bug")


def run(url: str, store, events, batch: int) -> tuple[float, float, float]:
    with psycopg.connect(url) as conn:
        half = len(events) // 2
        t = time.perf_counter()
        for i in range(0, half, batch):
            store(conn, events[i:i + batch])
            conn.commit()
        batched = half / (time.perf_counter() - t)
        singles = events[half:half + min(half, 2000)]
        t = time.perf_counter()
        for ev in singles:
            store(conn, [ev])
            conn.commit()
        single = len(singles) / (time.perf_counter() - t)
        t = time.perf_counter()
        store(conn, events[:batch])
        conn.commit()
        dup = batch / (time.perf_counter() - t)
    return batched, single, dup


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from lineage.store.embedded import embedded_url
    from lineage.store.migrate import upgrade
    from lineage.store.roles import Roles, ensure_roles, role_url

    root = tempfile.mkdtemp(prefix="lineage-bench-raw-")
    su = embedded_url(Path(root) / "data")
    roles = Roles()
    urls = {}
    with psycopg.connect(su, autocommit=True) as conn:
        ensure_roles(conn, roles)
        for name in ("bench_0012", "bench_head"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f'CREATE DATABASE {name} OWNER "{roles.owner}"')
            conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE {name} TO "{roles.app}"')
    for name, revision in (("bench_0012", "0012"), ("bench_head", "head")):
        upgrade(role_url(su, roles.owner, name), revision)
        urls[name] = role_url(su, roles.app, name)
    wl = Workload()
    total = args.events * args.rounds * 2
    raw = [msgspec.json.encode(e) for e in wl.events(0, total)]
    events = [parse_event(msgspec.json.decode(b)) for b in raw]
    results = {"0012": [], "head": []}
    for r in range(args.rounds):
        for variant, name, store in (("0012", "bench_0012", old_store_raw), ("head", "bench_head", ingest._store_raw)):
            chunk = events[r * args.events:(r + 1) * args.events]
            results[variant].append(run(urls[name], store, chunk, args.batch))
            print(f"round {r + 1} {variant}: batched {results[variant][-1][0]:,.0f}/s, single {results[variant][-1][1]:,.0f}/s, "
                  f"duplicates {results[variant][-1][2]:,.0f}/s", flush=True)
    for i, label in enumerate(("batched", "single-event transactions", "re-sent batch (duplicates)")):
        old = statistics.median(x[i] for x in results["0012"])
        new = statistics.median(x[i] for x in results["head"])
        paired = statistics.median(b[i] / a[i] for a, b in zip(results["0012"], results["head"]))
        print(f"{label}: 0012 {old:,.0f} events/s, partitioned {new:,.0f} events/s (medians); "
              f"median of per-round ratios {paired:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
