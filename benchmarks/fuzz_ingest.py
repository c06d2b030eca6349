"""Fuzz ingest at scale: 100,000+ mutated events against a live ``lineage serve`` process.

Run: ``.venv/bin/python benchmarks/fuzz_ingest.py [--events 100000] [--seed 1] [--port 18210]``.
Writes ``benchmarks/results/fuzz_ingest.md``.

A ``lineage serve`` process is started on a fresh embedded PostgreSQL (a temporary
``LINEAGE_HOME``), exactly as an operator would run it.  The events come from
``tests/fuzz_mutations.py`` (the suite's fuzzer, driven here by a seeded ``random.Random``):
the spec's example event and facet examples, mutated inside facets, names, timestamps,
UUIDs and encodings.  About half are sent one per ``POST /api/v1/lineage``, the rest in
NDJSON or JSON-array batches of 2-20 (one in seven of 60-300, several chunks) to ``/api/v1/lineage/batch`` with valid events (fresh
run ids) mixed in.  Counted: answers by status, batches, valid events expected in the store
against those found there (by run id), and rejected items that were valid (must be 0).
The bar: 0 answers >= 500, every valid event of every batch stored.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import fuzz_mutations as fm  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, LINEAGE_HOME=str(home))
    env.pop("LINEAGE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "lineage"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "wb"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"lineage serve exited; see {home / 'server.log'}")
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("lineage serve did not answer within 120 s")


def store_url(home: Path) -> str:
    """The running server's store (the embedded PostgreSQL under ``home``; reused, not restarted)."""
    from lineage.config import Settings
    from lineage.store.db import resolve_url

    return resolve_url(Settings(home=home))


def emitter_headers(url: str, roles: list[str] = ["emitter"]) -> dict[str, str]:  # noqa: B006 - read only
    """An API token (``emitter``: ingest needs one) made in the store at ``url``, as headers."""
    from lineage.auth import tokens

    with psycopg.connect(url) as conn:
        _, secret = tokens.create(conn, name="bench-token", principal="bench@example.com", roles=roles,
                                  created_by="benchmark")
    return {"Authorization": f"Bearer {secret}"}


class _NoAnswer:
    """A request that got no HTTP answer (connection reset): counted as status 599."""

    status_code = 599

    def __init__(self, exc: Exception) -> None:
        self.text = f"{type(exc).__name__}: {exc}"

    def json(self) -> dict:
        return {"rejected": []}


def _post(client: httpx.Client, path: str, body: bytes, ctype: str):
    try:
        return client.post(path, content=body, headers={"Content-Type": ctype})
    except httpx.TransportError as exc:
        return _NoAnswer(exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000, help="mutated events to send (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, default=18210)
    ap.add_argument("--single-share", type=float, default=0.5, help="share of mutated events sent one by one")
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="lineage-fuzz-"))
    proc = start_server(home, args.port)
    url = store_url(home)  # opened while the server runs, so the embedded PostgreSQL is shared
    base = f"http://127.0.0.1:{args.port}"
    statuses: collections.Counter = collections.Counter()
    batch_statuses: collections.Counter = collections.Counter()
    five_hundreds: list[str] = []
    mutated = singles = batches = batch_items = 0
    good_runs: list[str] = []
    valid_rejected = 0
    accepted_single = rejected_single = batch_rejected = 0
    t0 = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=60, headers=emitter_headers(url)) as client:
            while mutated < args.events:
                if rng.random() < args.single_share:
                    body = fm.mutated_body(rng)
                    mutated += 1
                    singles += 1
                    r = _post(client, "/api/v1/lineage", body, "application/json")
                    statuses[r.status_code] += 1
                    if r.status_code == 201:
                        accepted_single += 1
                    else:
                        rejected_single += 1
                    if r.status_code >= 500 and len(five_hundreds) < 20:
                        five_hundreds.append(f"single {r.status_code}: {r.text[:200]}")
                    continue
                # Most batches small; one in seven spans several chunks of the overlapped batch path (64).
                size = rng.randint(2, 20) if rng.random() < 6 / 7 else rng.randint(60, 300)
                ndjson = rng.random() < 0.5
                items, good_at = [], {}
                for i in range(size):
                    if rng.random() < 0.3:
                        event = fm.base_event(rng)
                        good_at[i] = event["run"]["runId"]
                        items.append(fm.serialise(event, rng))
                    else:
                        items.append(fm.mutated_body(rng, truncate=ndjson))
                        mutated += 1
                body = b"\n".join(items) if ndjson else b"[" + b",".join(items) + b"]"
                r = _post(client, "/api/v1/lineage/batch", body, "application/x-ndjson" if ndjson else "application/json")
                batches += 1
                batch_items += size
                batch_statuses[r.status_code] += 1
                if r.status_code >= 500 and len(five_hundreds) < 20:
                    five_hundreds.append(f"batch {r.status_code}: {r.text[:200]}")
                if r.status_code == 200:
                    rejected = {x["index"] for x in r.json()["rejected"]}
                    batch_rejected += len(rejected)
                    valid_rejected += len(rejected & good_at.keys())
                good_runs.extend(good_at.values())
                if batches % 500 == 0:
                    print(f"{mutated:,} mutated events, {batches:,} batches, {time.monotonic() - t0:.0f} s", flush=True)
        elapsed = time.monotonic() - t0
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT count(DISTINCT run_uuid) FROM raw_events WHERE run_uuid = ANY(%s)",
                ([uuid.UUID(r) for r in good_runs],),
            ).fetchone()[0]
            stored_total = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]
            noted = conn.execute("SELECT count(*) FROM raw_events WHERE normalizations IS NOT NULL").fetchone()[0]
    finally:
        proc.terminate()
        proc.wait(30)
    expected = len(set(good_runs))
    all_status = statuses + batch_statuses
    ok = not any(s >= 500 for s in all_status) and found == expected and valid_rejected == 0
    report = render(args, elapsed, mutated, singles, batches, batch_items, statuses, batch_statuses, accepted_single,
                    rejected_single, batch_rejected, expected, found, valid_rejected, stored_total, noted, five_hundreds, ok)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz_ingest.md").write_text(report)
    print(report)
    return 0 if ok else 1


def render(args, elapsed, mutated, singles, batches, batch_items, statuses, batch_statuses, accepted_single,
           rejected_single, batch_rejected, expected, found, valid_rejected, stored_total, noted, five_hundreds, ok) -> str:
    def table(counter: collections.Counter) -> str:
        return "\n".join(f"| {code} | {n:,} |" for code, n in sorted(counter.items()))

    lines = [
        "# Fuzzing ingest: mutated OpenLineage events against a live server",
        "",
        f"Command: `.venv/bin/python benchmarks/fuzz_ingest.py --events {args.events} --seed {args.seed}`; "
        f"`lineage serve` on the embedded PostgreSQL, {elapsed:.0f} s on {os.cpu_count()} cores (shared with other work).",
        "Mutations: `tests/fuzz_mutations.py` (the suite's fuzzer) on the spec's example event and facet examples: "
        "NUL and lone surrogates in any string or key, invalid UTF-8, nesting to 5,000, `1e400` and 30-digit integers, "
        "names past 1 KB, years 0000/0001/9999 with offsets of ±14:00, times without offset, date-only times, odd UUIDs, "
        "`parent` facets with `\"run\": \"x\"`, non-object facets, missing and mistyped fields, truncated bodies "
        "(single events and NDJSON lines only: a truncated item makes a JSON array no array at all, refused whole).",
        "",
        f"**Result: {'PASS' if ok else 'FAIL'}** — answers ≥ 500: {sum(n for s, n in (statuses + batch_statuses).items() if s >= 500)}; "
        f"valid batch events stored: {found:,} of {expected:,}; valid events rejected: {valid_rejected}.",
        "",
        "| | count |",
        "|---|---|",
        f"| mutated events sent | {mutated:,} |",
        f"| … one per request | {singles:,} ({accepted_single:,} accepted, {rejected_single:,} refused) |",
        f"| … inside batches | {mutated - singles:,} |",
        f"| batches (NDJSON and JSON arrays: 2–20 items, one in seven 60–300) | {batches:,} ({batch_items:,} items, {batch_rejected:,} rejected by index) |",
        f"| valid events mixed into batches (distinct run ids) | {expected:,} |",
        f"| of them found in the store | {found:,} |",
        f"| rows in raw_events at the end | {stored_total:,} ({noted:,} with normalisation notes) |",
        "",
        "Status 599 would count requests that got no HTTP answer at all (connection reset).",
        "",
        "Single events, answers by status:",
        "",
        "| status | count |",
        "|---|---|",
        table(statuses),
        "",
        "Batches, answers by status:",
        "",
        "| status | count |",
        "|---|---|",
        table(batch_statuses),
        "",
    ]
    if five_hundreds:
        lines += ["First answers ≥ 500:", ""] + [f"- `{x}`" for x in five_hundreds] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
