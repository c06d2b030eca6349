"""Ledger benchmark (issue 10): verification speed, and batch ingest with sealing on and off.

Run: ``.venv/bin/python benchmarks/audit.py [--events 1000000] [--rounds 6] [--phase-batches 5]``.
Writes ``benchmarks/results/audit.md`` and ``audit.json``.

What it measures, on a fresh embedded PostgreSQL, as the application role:

1. **Ingest, sealing on vs off, side by side.**  Rounds alternate two phases of
   ``--phase-batches`` batches of ``--batch`` events (order alternates each round):
   *off* — the ledger triggers of ``raw_events`` disabled, no sealer: the store as it was
   before the ledger; *on* — triggers enabled and the server's background sealer
   (:class:`lineage.audit.service.Background`, a helper process, as ``lineage serve`` runs it)
   sealing every ``--seal-interval`` seconds on the same two cores; with ``--queue-mode`` a
   third, *queue* — triggers on, no sealer — isolates what the queueing trigger costs.  Each batch is ``ingest_batch`` (decode, parse,
   store) and commit, timed alone.  After an *on* phase, whatever the sealer had not sealed yet
   is sealed (timed apart, reported as the backlog).  The report gives the median events/s of
   each mode and their ratio.
2. **Sealing cost per record**: a backlog of queued events sealed in one go
   (:func:`lineage.audit.seal.seal_all`), seconds per record, against ingest seconds per event.
3. **Verification**: the store is filled to ``--events`` events (all sealed), then
   :func:`lineage.audit.verify.verify` re-hashes every record and checks every block, its big
   tables split over ``--verify-workers`` connections; records/s.

Beside wall time, each mode and the verification report **CPU seconds** (this process and the
embedded server's processes, from ``/proc``): on a machine shared with other jobs the wall
times follow the neighbours' load, the work done does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Workload  # noqa: E402

from lineage.audit.seal import seal_all  # noqa: E402
from lineage.audit.service import Background  # noqa: E402
from lineage.audit.verify import verify  # noqa: E402
from lineage.store.db import Database  # noqa: E402
from lineage.store.batch import ingest_batch  # noqa: E402
from lineage.store.migrate import upgrade  # noqa: E402
from lineage.store.roles import Roles, role_url  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _ingest(db: Database, items: list[bytes]) -> float:
    t0 = time.perf_counter()
    with db.connection() as conn:
        result, bad = ingest_batch(conn, items)
    assert not bad and result.stored == len(items), (result, bad[:1])
    return time.perf_counter() - t0


def _ledger_triggers(owner: psycopg.Connection, on: bool) -> None:
    verb = "ENABLE" if on else "DISABLE"
    for t in ("raw_events_ledger_insert", "raw_events_ledger_update"):
        owner.execute(f"ALTER TABLE raw_events {verb} TRIGGER {t}")


def _cpu(data: Path) -> float:
    """CPU seconds used so far by this process (all its threads) and by the embedded server's
    processes (children of its postmaster): the work done, whatever else shares the machine."""
    total = time.process_time()
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:  # ppid
                total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    except (OSError, ValueError, IndexError):
        pass
    return total


def _queued(owner: psycopg.Connection) -> int:
    return owner.execute("SELECT count(*) FROM ledger_queue").fetchone()[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="store size for verification (default %(default)s)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--phase-batches", type=int, default=5)
    ap.add_argument("--seal-interval", type=float, default=1.0, help="the background sealer's tick, as LINEAGE_AUDIT_SEAL_INTERVAL")
    ap.add_argument("--sealer", choices=("thread", "process"), default="thread", help="how the background sealer runs")
    ap.add_argument("--queue-mode", action="store_true", help="a third mode: ledger triggers on, no sealer")
    ap.add_argument("--verify-workers", type=int, default=None, help="connections verify splits big tables over (default: CPUs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from lineage.store.embedded import embedded_url

    data = Path(tempfile.mkdtemp(prefix="lineage-bench-audit-", dir="/tmp")) / "pg"
    with psycopg.connect(embedded_url(data), autocommit=True) as su:
        su.execute("CREATE DATABASE lineage_bench")
        user = su.execute("SELECT current_user").fetchone()[0]
    root_url = role_url(embedded_url(data), user, "lineage_bench")
    upgrade(root_url)
    roles = Roles()
    owner = psycopg.connect(role_url(root_url, roles.owner), autocommit=True)
    db = Database(role_url(root_url, roles.app), min_size=1, max_size=3)
    wl = Workload(seed=42)
    position = 0

    def next_batch(n: int) -> list[bytes]:
        nonlocal position
        items = wl.serialized(position, position + n)
        position += n
        return items

    load_start = os.getloadavg()
    log(f"warm-up (load average {load_start})")
    for _ in range(2):
        _ingest(db, next_batch(args.batch))
    with db.connection() as conn:
        seal_all(conn)

    # 1. Ingest with sealing on and off, alternating.
    modes = ("on", "off", "queue") if args.queue_mode else ("on", "off")
    times: dict[str, list[float]] = {m: [] for m in modes}
    backlog: list[tuple[int, float]] = []
    cpu: dict[str, float] = {m: 0.0 for m in modes}
    for r in range(args.rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            batches = [next_batch(args.batch) for _ in range(args.phase_batches)]  # serialised before timing
            _ledger_triggers(owner, mode != "off")
            last_id = owner.execute("SELECT coalesce(max(id), 0) FROM raw_events").fetchone()[0]
            c0 = _cpu(data)
            sealer = Background(db.url, Path(tempfile.gettempdir()), args.seal_interval, 0, args.sealer).start() if mode == "on" else None
            for items in batches:
                times[mode].append(_ingest(db, items))
            if mode != "on":
                cpu[mode] += _cpu(data) - c0
            if mode == "off":  # the events stored without the ledger enter it now, untimed (as a backfill would)
                owner.execute("INSERT INTO ledger_queue (tbl, pk) SELECT 'raw_events', jsonb_build_array(id) FROM raw_events"
                              " WHERE id > %s ORDER BY id", (last_id,))
            if mode == "queue":  # triggers on, no sealer: what queueing alone costs; sealed untimed
                with db.connection() as conn:
                    seal_all(conn)
            if sealer:
                sealer.stop()
                left = _queued(owner)
                t0 = time.perf_counter()
                with db.connection() as conn:
                    seal_all(conn)
                backlog.append((left, time.perf_counter() - t0))
                cpu[mode] += _cpu(data) - c0  # ingest and all of its sealing, the backlog included
        log(f"round {r + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f}): " + ", ".join(f"{m} {statistics.median(v):.3f}s/batch" for m, v in times.items()))
    _ledger_triggers(owner, True)
    rate = {m: args.batch / statistics.median(v) for m, v in times.items()}

    # 2. Sealing cost per record, on a backlog of queued events.
    backlog_items = [next_batch(args.batch) for _ in range(args.phase_batches)]
    ingest_s = sum(_ingest(db, items) for items in backlog_items)
    n_backlog = _queued(owner)
    t0 = time.perf_counter()
    with db.connection() as conn:
        seal_all(conn)
    seal_s = time.perf_counter() - t0

    # 3. Fill to --events (sealing in the background, as the server does), then verify.
    log(f"filling to {args.events} events")
    fill0, sealer = time.perf_counter(), Background(db.url, Path(tempfile.gettempdir()), args.seal_interval, 0, args.sealer).start()
    while position < args.events:
        _ingest(db, next_batch(min(5000, args.events - position)))
        if position % 100_000 < 5000:
            log(f"  {position} events, {_queued(owner)} queued")
    sealer.stop()
    fill_s = time.perf_counter() - fill0
    t0 = time.perf_counter()
    with db.connection() as conn:
        seal_all(conn)
    drain_s = time.perf_counter() - t0
    size = owner.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    log(f"verifying {position} events ({size}), load average {os.getloadavg()}")
    load_verify = os.getloadavg()
    with db.connection() as conn:
        t0, c0 = time.perf_counter(), _cpu(data)
        report = verify(conn, connect=db.connection, workers=args.verify_workers)
        verify_s, verify_cpu = time.perf_counter() - t0, _cpu(data) - c0
    assert report.ok, report.summary()
    checked = report.records + report.erased

    out = {
        "load_average_start": load_start, "load_average_at_verify": load_verify, "load_average_end": os.getloadavg(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "batch": args.batch, "rounds": args.rounds, "phase_batches": args.phase_batches, "seal_interval": args.seal_interval,
        "sealer": args.sealer, "ingest_events_per_s": rate,
        "cpu_us_per_event": {m: cpu[m] / (len(times[m]) * args.batch) * 1e6 for m in modes},
        "cpu_overhead": cpu["on"] / cpu["off"] - 1, "slowdown": rate["off"] / rate["on"] - 1,
        "queue_only_slowdown": rate["off"] / rate["queue"] - 1 if "queue" in rate else None,
        "batch_seconds": times, "backlog_after_on_phase": backlog,
        "seal_backlog": {"records": n_backlog, "seconds": seal_s, "ingest_seconds": ingest_s},
        "fill": {"events": position, "seconds": fill_s, "drain_seconds": drain_s, "database_size": size},
        "verify": {"records": checked, "entries": report.entries, "blocks": report.blocks, "seconds": verify_s,
                   "records_per_s": checked / verify_s, "cpu_seconds": verify_cpu, "cpu_us_per_record": verify_cpu / checked * 1e6,
                   "records_per_s_on_2_free_cores": 2 * checked / verify_cpu, "workers": args.verify_workers or min(4, os.cpu_count() or 1)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(out, indent=2) + "\n")
    log(json.dumps({k: out[k] for k in ("ingest_events_per_s", "slowdown", "cpu_us_per_event", "cpu_overhead", "queue_only_slowdown", "seal_backlog", "fill", "verify")}, indent=1))
    owner.close()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
