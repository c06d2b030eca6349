"""Concurrent ingest: 8 clients sending overlapping batches for 60 s against ``lineage serve``.

Run: ``.venv/bin/python benchmarks/concurrent_ingest.py [--seconds 60] [--clients 8] [--port 18220]``.
Writes ``benchmarks/results/concurrent_ingest.md``.

A ``lineage serve`` process runs on a fresh embedded PostgreSQL.  Each round, a pool of
events (START and COMPLETE of runs over a few shared jobs and datasets, so the same rows are
hot in every transaction) is sent by every client, each in its own shuffled order, in
batches of 50 that overlap their neighbours by 10; then the next round starts with new
events, until the time is up.  Counted: answers by status, and at the end, raw events stored
against distinct events sent (each must be stored exactly once).  The bar: 0 answers >= 500.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from fuzz_ingest import emitter_headers, start_server, store_url  # noqa: E402

from lineage.samples import dataset, run_event  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def round_events(rng: random.Random, round_no: int, runs: int) -> list[bytes]:
    import uuid
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(hours=round_no)
    out = []
    for r in range(runs):
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        job = ("bench", f"job{r % 7}")
        ins = [dataset("db", f"t{rng.randrange(8)}", [("a", "int")])]
        outs = [dataset("db", f"t{8 + r % 5}", [("a", "int"), ("b", "text")])]
        out.append(json.dumps(run_event("START", job, rid, ins, outs, t0 + timedelta(minutes=r))).encode())
        out.append(json.dumps(run_event("COMPLETE", job, rid, ins, outs, t0 + timedelta(minutes=r, seconds=40))).encode())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=100, help="runs per round (2 events each)")
    ap.add_argument("--port", type=int, default=18220)
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="lineage-concurrent-"))
    proc = start_server(home, args.port)
    url = store_url(home)
    auth = emitter_headers(url)
    base = f"http://127.0.0.1:{args.port}"
    statuses: Counter = Counter()
    problems: list[str] = []
    sent_keys: set[bytes] = set()
    lock = threading.Lock()
    rounds = 0
    deadline = time.monotonic() + args.seconds
    t0 = time.monotonic()
    try:
        rng = random.Random(1)
        while time.monotonic() < deadline:
            events = round_events(rng, rounds, args.runs)
            sent_keys.update(events)
            barrier = threading.Barrier(args.clients)

            def client(k: int) -> None:
                mine = events[:]
                random.Random(rounds * 100 + k).shuffle(mine)
                with httpx.Client(base_url=base, timeout=120, headers=auth) as c:
                    barrier.wait()
                    for i in range(0, len(mine), 40):
                        batch = mine[i : i + 50]
                        try:
                            r = c.post("/api/v1/lineage/batch", content=b"\n".join(batch), headers={"Content-Type": "application/x-ndjson"})
                            code, text = r.status_code, r.text
                        except httpx.TransportError as exc:
                            code, text = 599, repr(exc)
                        with lock:
                            statuses[code] += 1
                            if code != 200 and len(problems) < 10:
                                problems.append(f"{code}: {text[:200]}")

            threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rounds += 1
        elapsed = time.monotonic() - t0
        with psycopg.connect(url) as conn:
            stored, distinct = conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone()
    finally:
        proc.terminate()
        proc.wait(30)
    over_500 = sum(n for code, n in statuses.items() if code >= 500)
    ok = over_500 == 0 and stored == distinct == len(sent_keys)
    lines = [
        "# Concurrent ingest: overlapping batches from several clients",
        "",
        f"Command: `.venv/bin/python benchmarks/concurrent_ingest.py --seconds {args.seconds:g} --clients {args.clients}`; "
        f"`lineage serve` (one worker, pool of 8) on the embedded PostgreSQL, {os.cpu_count()} cores shared with other work.",
        f"{args.clients} clients, {rounds} rounds in {elapsed:.0f} s; each round every client sends the same "
        f"{2 * args.runs} events (runs over 7 shared jobs and 13 shared datasets) in its own order, NDJSON batches of 50 overlapping by 10.",
        "",
        f"**Result: {'PASS' if ok else 'FAIL'}** — answers ≥ 500: {over_500}; distinct events sent: {len(sent_keys):,}; "
        f"raw events stored: {stored:,} ({distinct:,} distinct keys).",
        "",
        "| status | answers |",
        "|---|---|",
        *[f"| {code} | {n:,} |" for code, n in sorted(statuses.items())],
        "",
    ]
    if problems:
        lines += ["Answers other than 200:", ""] + [f"- `{p}`" for p in problems] + [""]
    report = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "concurrent_ingest.md").write_text(report)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
