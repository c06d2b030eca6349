"""Scale-out ingest benchmark (issue 12): raw first, derive after, group commit, two API processes.

Run: ``.venv/bin/python benchmarks/scale_out.py [--big 1000000] [--single 40000]``.
Writes ``benchmarks/results/scale_out.md`` and ``scale_out.json``.

Everything is measured side by side in one run, on one fresh embedded PostgreSQL:

1. **Batch ingest vs raw COPY, 10k stored.**  Batches of 5,000 events of the benchmark
   workload (``workload.py``) go through :func:`lineage.store.batch.ingest_batch` with
   ``defer=True`` (decode, validate, store raw, queue for derivation, commit) in this process,
   each paired with a raw ``COPY`` of the very same bytes into a bare ``jsonb`` table (order
   alternating); the report gives the median ratio of the pairs.
2. **Derivation throughput.**  The queued events are derived by two ``lineage derive``
   processes; events per second from the first claim to an empty queue.
3. **Single-event HTTP.**  One, then two ``lineage serve`` processes (``LINEAGE_DERIVE_WORKERS=0``)
   on loopback ports and one ``lineage derive`` process with two threads; 8 client processes,
   each one keep-alive HTTP/1.1 connection on a raw socket with its requests serialised before
   the start (the lightest client: the clients share the two cores with everything else, and
   an Airflow worker would not), POST one event per request and wait for its answer, spread
   over the servers.
   Reported: events/s, acknowledgement p50/p99, derivation lag sampled every 100 ms, and a
   read-after-write check: after the run, each client posts one new event and immediately
   asks for its job; every answer must contain it.
4. **Ingest with 1M stored vs 10k stored.**  The store is grown to ``--big`` events (batch
   path, derived as it goes), then step 1's pairs are repeated: the ingest/COPY ratio and the
   absolute ingest rate at 1M against those at 10k.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))

from ingest_and_query import free_port, open_store, pct, raw_copy  # noqa: E402
from workload import Workload  # noqa: E402

from lineage.samples import dataset, run_event  # noqa: E402
from lineage.store.db import Database  # noqa: E402
from lineage.store.batch import ingest_batch  # noqa: E402
from lineage.store.migrate import upgrade  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 5000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def serialise(events) -> list[bytes]:
    return [json.dumps(e, separators=(",", ":")).encode() for e in events]


def batch_pairs(db: Database, copy_conn, batches: list[list[bytes]]) -> dict:
    ratios, ingest_rates, copy_rates = [], [], []
    for n, batch in enumerate(batches):
        def ingest() -> float:
            t = time.perf_counter()
            with db.connection() as conn:
                result, rejected = ingest_batch(conn, batch, defer=True)
            if result.stored != len(batch) or rejected:
                raise RuntimeError(f"stored {result.stored} of {len(batch)}")
            return time.perf_counter() - t

        if n % 2:
            c = raw_copy(copy_conn, batch)
            i = ingest()
        else:
            i = ingest()
            c = raw_copy(copy_conn, batch)
        ratios.append(c / i)
        ingest_rates.append(len(batch) / i)
        copy_rates.append(len(batch) / c)
    return {"pairs": len(batches), "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
            "ingest_events_per_s": statistics.median(ingest_rates), "copy_events_per_s": statistics.median(copy_rates)}


def queued(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(sum(cardinality(raw_ids)), 0) FROM derive_queue").fetchone()[0]


def start(args: list[str], env: dict, logf: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("lineage")
    return subprocess.Popen([str(exe), *args], env=env, stdout=open(logf, "ab"), stderr=subprocess.STDOUT)


def wait_http(port: int, path: str = "/api/v1/health", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"port {port} did not answer {path}")


def derive_all(db: Database, url: str) -> dict:
    """Derive everything queued with one worker thread in this process (derive_pending in a loop)."""
    from lineage.store.derive import derive_pending

    n0 = queued(url)
    cpu0, t = cpu_by_role(), time.perf_counter()
    proc0 = time.process_time()
    n = 0
    while True:
        k = db.run(derive_pending)
        if not k:
            break
        n += k
    wall = time.perf_counter() - t
    pg = cpu_by_role().get("postgres", 0.0) - cpu0.get("postgres", 0.0)
    return {"events": n, "queued_before": n0, "seconds": wall, "events_per_s": n / wall if wall else 0.0, "threads": 1,
            "python_us_per_event": (time.process_time() - proc0) / n * 1e6 if n else 0.0,
            "postgres_us_per_event": pg / n * 1e6 if n else 0.0}


def _client(port: int, token: str, bodies: list[bytes], go, out) -> None:
    """One keep-alive HTTP/1.1 connection on a raw socket, requests serialised before the start:
    the load generator shares the two cores with the server, so it does as little as a client can
    (send the request, read the status line, headers and Content-Length bytes of the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (f"POST /api/v1/lineage HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: ").encode()
    requests = [head + str(len(b)).encode() + b"\r\n\r\n" + b for b in bodies]
    lat, bad = [], 0
    buf = b""

    def answer() -> int:
        nonlocal buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += _recv(sock)
        header = buf[:end].lower()
        at = header.find(b"content-length:")
        length = int(header[at + 15:header.find(b"\r\n", at) if header.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
        while len(buf) < end + 4 + length:
            buf += _recv(sock)
        status = int(buf[9:12])
        buf = buf[end + 4 + length:]
        return status

    sock.sendall(f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    answer()
    go.wait()
    cpu = time.process_time()
    for request in requests:
        t = time.perf_counter()
        sock.sendall(request)
        status = answer()
        lat.append(time.perf_counter() - t)
        if status != 201:
            bad += 1
    sock.close()
    out.put((lat, bad, time.process_time() - cpu))


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def _read_after_write(port: int, token: str, k: int, out) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    job = f"raw-{k}-{uuid.uuid4().hex[:8]}"
    conn.request("POST", "/api/v1/lineage", body=json.dumps(run_event("START", ("raw-check", job), str(uuid.uuid4()))), headers=headers)
    r = conn.getresponse()
    r.read()
    conn.request("GET", f"/api/v1/namespaces/raw-check/jobs/{job}", headers=headers)
    g = conn.getresponse()
    g.read()
    out.put((r.status, g.status))


def cpu_by_role() -> dict[str, float]:
    """CPU seconds used so far by live processes: postgres, the API servers, the derivation workers, others."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        role = ("postgres" if "postgres" in cmd else "api" if " serve " in cmd else "derive" if " derive " in cmd else "other")
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def single_http(url: str, env: dict, home: Path, token: str, bodies: list[bytes], clients: int, apis: int = 2) -> dict:
    ports = [free_port() for _ in range(apis)]
    # As deployed: the API replicas neither derive nor seal; the worker process does both.
    api_env = dict(env, LINEAGE_DERIVE_WORKERS="0", LINEAGE_AUDIT_SEAL_INTERVAL="0")
    apis = [start(["serve", "--port", str(p), "--log-level", "warning"], api_env, home / f"api-{p}.log") for p in ports]
    worker = start(["derive", "--workers", "2"], env, home / "derive-single.log")
    lags: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.wait(0.1):
                lags.append(conn.execute(
                    "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0)::float8 FROM derive_queue"
                ).fetchone()[0])

    try:
        for p in ports:
            wait_http(p)
        ctx = mp.get_context("fork")
        go, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_client, args=(ports[k % len(ports)], token, bodies[k::clients], go, out)) for k in range(clients)]
        for p in procs:
            p.start()
        time.sleep(1.0)
        sampler = threading.Thread(target=sample)
        sampler.start()
        cpu0 = cpu_by_role()
        t = time.perf_counter()
        go.set()
        results = [out.get() for _ in procs]
        wall = time.perf_counter() - t
        cpu = {k: round((v - cpu0.get(k, 0.0)) / wall, 3) for k, v in cpu_by_role().items()}
        for p in procs:
            p.join()
        drained = time.perf_counter()
        while queued(url):
            time.sleep(0.05)
        drain = time.perf_counter() - drained
        stop.set()
        sampler.join()
        raw = [ctx.Process(target=_read_after_write, args=(ports[k % len(ports)], token, k, out)) for k in range(clients)]
        for p in raw:
            p.start()
        checks = [out.get() for _ in raw]
        for p in raw:
            p.join()
    finally:
        stop.set()
        for p in apis + [worker]:
            p.terminate()
        for p in apis + [worker]:
            p.wait(30)
    lat = [x for r in results for x in r[0]]
    return {
        "clients": clients, "api_processes": len(ports), "events": len(bodies), "seconds": wall,
        "events_per_s": len(bodies) / wall, "rejected": sum(r[1] for r in results),
        "ack_p50_ms": pct(lat, 50) * 1000, "ack_p99_ms": pct(lat, 99) * 1000, "ack_max_ms": max(lat) * 1000,
        "lag_max_s": max(lags) if lags else 0.0, "lag_p99_s": pct(lags, 99) if lags else 0.0,
        "drain_after_s": drain,
        "cpu_cores": dict(cpu, clients=round(sum(r[2] for r in results) / wall, 3)),
        "read_after_write": {"checked": len(checks), "seen": sum(1 for s, g in checks if s == 201 and g == 200)},
    }


def settle(root: str, owner: str) -> None:
    """Let the batch steps' background work finish before a timed single-event run: vacuum and
    analyse what they wrote, then a checkpoint (otherwise PostgreSQL flushes their pages and
    vacuums their tables during the run, and the run is charged for it)."""
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    with psycopg.connect(root, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def single_events(n: int, salt: int = 0) -> list[bytes]:
    """START and COMPLETE of n/2 runs over 50 jobs, each reading one of 40 tables and writing another (as an Airflow task reports)."""
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    out = []
    for i in range(n):
        r = i // 2
        rid = str(uuid.UUID(int=(r + 1) * 7919 + (salt << 90) + (1 << 100), version=4))
        ins = [dataset("single-db", f"in{r % 40}", [("id", "int")])]
        outs = [dataset("single-db", f"out{r % 50}", [("id", "int"), ("v", "text")])]
        out.append(json.dumps(run_event("START" if i % 2 == 0 else "COMPLETE", ("single", f"job{r % 50}"), rid, ins, outs,
                                        at=t0 + dt.timedelta(seconds=i)), separators=(",", ":")).encode())
    return out


def grow(db: Database, url: str, env: dict, home: Path, stream, target: int, stored: int) -> int:
    """Ingest (batch path) until ``target`` events are stored, deriving with two worker processes alongside."""
    procs = [start(["derive", "--workers", "1"], env, home / f"grow-{k}.log") for k in range(2)]
    try:
        while stored < target:
            batch = serialise(next(stream) for _ in range(min(BATCH, target - stored)))
            with db.connection() as conn:
                ingest_batch(conn, batch, defer=True)
            stored += len(batch)
            if stored % 100_000 < BATCH:
                log(f"  {stored:,} stored, {queued(url):,} queued")
        while queued(url):
            time.sleep(0.2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    return stored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, default=1_000_000, help="events stored for the large-store step")
    ap.add_argument("--pairs", type=int, default=8, help="batch/COPY pairs at each size")
    ap.add_argument("--single", type=int, default=40_000, help="events sent one per request")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only-single", action="store_true", help="just the single-event HTTP step (quick iteration)")
    ap.add_argument("--only-batch", action="store_true", help="just the batch/COPY pairs at 10k stored (quick iteration)")
    ap.add_argument("--api-processes", default="1,2", help="single-event step: API process counts to run, side by side")
    args = ap.parse_args(argv)
    root, where, _ = open_store()
    log(f"store: {where}")
    from lineage.store.roles import Roles, ensure_roles
    from tests_support import clone_database

    with psycopg.connect(root, autocommit=True) as conn:
        ensure_roles(conn, Roles())
    urls = clone_database(root, "lineage_scale", "template0")
    upgrade(urls["owner"])
    url = urls["app"]  # the server's privileges, as in production
    home = Path(tempfile.mkdtemp(prefix="lineage-scale-", dir="/tmp"))
    env = dict(os.environ, LINEAGE_DATABASE_URL=url, LINEAGE_HOME=str(home))
    env.pop("LINEAGE_MIGRATION_DATABASE_URL", None)
    copy_conn = psycopg.connect(urls["owner"])
    copy_conn.execute("CREATE TABLE bench_raw_copy (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
    copy_conn.commit()
    db = Database(url, min_size=1, max_size=2)
    token = _token(urls["owner"])
    wl = Workload(seed=42)
    stream = wl.events()
    report: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "store": where,
                    "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}
    if args.only_single:
        for n in [int(x) for x in args.api_processes.split(",")]:
            report["single"] = single_http(url, env, home, token, single_events(args.single, salt=n), args.clients, n)
            log(json.dumps(report["single"], indent=1))
        return 0
    stored = grow(db, url, env, home, stream, 10_000, 0)
    log("batch pairs at 10k stored")
    batches = [serialise(next(stream) for _ in range(BATCH)) for _ in range(args.pairs)]
    report["batch_10k"] = batch_pairs(db, copy_conn, batches)
    stored += BATCH * args.pairs
    log(f"  {report['batch_10k']}")
    if args.only_batch:
        return 0
    report["derive"] = derive_all(db, url)
    log(f"derivation: {report['derive']}")
    report["singles"] = []
    for n in [int(x) for x in args.api_processes.split(",")]:
        settle(root, urls["owner"])
        log(f"single-event HTTP, {args.clients} clients, {n} API process(es), {args.single:,} events")
        report["singles"].append(single_http(url, env, home, token, single_events(args.single, salt=n), args.clients, n))
        log(f"  {report['singles'][-1]}")
    log(f"growing the store to {args.big:,}")
    stored = grow(db, url, env, home, stream, args.big, stored)
    log(f"batch pairs at {stored:,} stored")
    batches = [serialise(next(stream) for _ in range(BATCH)) for _ in range(args.pairs)]
    report["batch_big"] = batch_pairs(db, copy_conn, batches)
    report["batch_big"]["stored_before"] = stored
    log(f"  {report['batch_big']}")
    report["big_vs_10k"] = report["batch_big"]["ingest_events_per_s"] / report["batch_10k"]["ingest_events_per_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_out.json").write_text(json.dumps(report, indent=2))
    (args.out / "scale_out.md").write_text(markdown(report))
    log(json.dumps(report, indent=2))
    return 0


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def markdown(r: dict) -> str:
    b10, bb, d = r["batch_10k"], r["batch_big"], r["derive"]
    lines = [
        "# Scale-out ingest (issue 12)",
        "",
        f"Run {r['date']} on {r['machine']['nproc']} cores ({r['machine']['platform']}, Python {r['machine']['python']}), "
        f"{r['store']}. Produced by `benchmarks/scale_out.py`; every figure below comes from this one run, "
        "side by side, with nothing else running on the machine.",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| batch ingest ≥ 0.5× raw COPY of the same events | {b10['ratio_median']:.2f}× at 10k stored "
        f"({b10['ingest_events_per_s']:,.0f} vs {b10['copy_events_per_s']:,.0f} events/s, median of {b10['pairs']} pairs) | {_met(b10['ratio_median'] >= 0.5)} |",
    ]
    for s in r["singles"]:
        lines.append(
            f"| single-event HTTP, {s['clients']} clients: ≥ 2,000 events/s, p99 acknowledgement < 50 ms | "
            f"{s['events_per_s']:,.0f} events/s, p99 {s['ack_p99_ms']:.1f} ms (p50 {s['ack_p50_ms']:.1f}) with {s['api_processes']} API process(es) | "
            f"{_met(s['events_per_s'] >= 2000 and s['ack_p99_ms'] < 50)} |")
        lines.append(
            f"| derivation keeps up: lag < 2 s, a read after a write sees it | lag max {s['lag_max_s']:.2f} s (p99 {s['lag_p99_s']:.2f}); "
            f"read-after-write {s['read_after_write']['seen']}/{s['read_after_write']['checked']} | "
            f"{_met(s['lag_max_s'] < 2 and s['read_after_write']['seen'] == s['read_after_write']['checked'])} |")
    lines += [
        f"| ingest with 1M stored ≥ 80% of the rate with 10k stored | {r['big_vs_10k'] * 100:.0f}% "
        f"({bb['ingest_events_per_s']:,.0f} events/s with {bb['stored_before']:,} stored vs {b10['ingest_events_per_s']:,.0f}; "
        f"COPY ratio {bb['ratio_median']:.2f}×) | {_met(r['big_vs_10k'] >= 0.8)} |",
        "",
        "## Method",
        "",
        "- **Batch**: 5,000-event batches of `benchmarks/workload.py` (about 3 KB an event) through "
        "`ingest_batch(..., defer=True)` in this process (decode, validate and take the canonical key of each event, in "
        "chunks of 64; each chunk sent as one `lineage_store_group` statement that claims the keys, stores the raw rows and "
        "queues them for derivation, before the next chunk is validated; one commit), each paired with a `COPY` of the "
        "very same bytes into a bare `jsonb` table (no index but its primary key, no trigger, default storage: it pays "
        "the same TOAST compression of each payload); "
        "the order alternates; the figure is the median of the per-pair ratios.",
        f"- **Derivation** (after the 10k step): the {d['events']:,} events the batch step queued, derived by one worker "
        f"thread (`derive_pending` in a loop) in {d['seconds']:.1f} s: {d['events_per_s']:,.0f} events/s; "
        f"{d['python_us_per_event']:.0f} µs of Python and {d['postgres_us_per_event']:.0f} µs of PostgreSQL CPU per event.",
        "- **Single-event HTTP**: `lineage serve` processes (`LINEAGE_DERIVE_WORKERS=0`, `LINEAGE_AUDIT_SEAL_INTERVAL=0`, as the "
        "manifests run them) and one `lineage derive --workers 2` process (which also seals the ledger); 8 client processes, each "
        "one keep-alive HTTP/1.1 connection on a raw socket (requests serialised before the start, so the load generator "
        "takes as little of the two cores as it can) with an API token, POST START and COMPLETE events of Airflow-like runs "
        "(one input, one output, with schemas), spread over the API processes. Acknowledgement latency is the client's. "
        "The derivation lag is sampled every 100 ms from the database. Read-after-write: each client then posts a new "
        "event and at once GETs its job; every answer must contain it.",
        "- Before each single-event run the store is vacuumed and analysed and a checkpoint taken, so that the batch steps' "
        "background work (flushing and vacuuming what they wrote) is not charged to it.",
        "- **1M**: the store is grown with the batch path (two `lineage derive` processes deriving alongside), then the batch "
        "pairs are repeated.",
        "",
        "CPU used during each single-event run, in cores (2 available), by process role (`other` is every other "
        "process, this driver and its client processes included; `clients` is the client processes alone):",
        "",
    ]
    for s in r["singles"]:
        lines.append(f"- {s['api_processes']} API process(es): " + ", ".join(f"{k} {v:.2f}" for k, v in s["cpu_cores"].items()))
    return "\n".join(lines) + "\n"


def _token(url: str) -> str:
    from lineage.auth import tokens

    with psycopg.connect(url) as conn:
        _, secret = tokens.create(conn, name="bench-emitter", principal="bench@example.com", roles=["emitter", "viewer"],
                                  created_by="benchmark")
        conn.commit()
    return secret


if __name__ == "__main__":
    raise SystemExit(main())
