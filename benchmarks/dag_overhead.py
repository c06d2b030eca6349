"""What does lineage emission cost a DAG run?  Lineage on versus the provider disabled.

Runs ACME's three DAGs (ingest -> build training set -> gate + train) with ``dag.test()``:

* **on** — the OpenLineage provider enabled, sending every event through
  :class:`~lineage.airflow.transport.SpoolingTransport` to a live ``lineage serve`` over HTTP,
  which stores it in PostgreSQL;
* **tasks** — as *on*, but DAG-run events switched off by emission policy
  (``emit_dag_events: false``): what a task pays in production, where DAG-run events are sent by
  the scheduler.  Under ``dag.test()`` the scheduler's part runs inside the measured DAG run,
  and the provider re-creates its DAG-event process pool after every task;
* **off** — ``AIRFLOW__OPENLINEAGE__DISABLED=true``, everything else identical.

Each sample is one runner process: one untimed warm-up pass (Airflow's first ``dag.test()`` in
a process starts its in-process API; the first training imports scikit-learn and GX), then
``--repeat`` timed passes over the three DAGs.
Modes alternate between samples so drift on the machine hits both alike.  The figure that
matters is the ratio of median pass times; the target is at most 5 % more with lineage on.

    .venv/bin/python benchmarks/dag_overhead.py [--samples 3] [--repeat 5]

Writes ``benchmarks/results/dag_overhead.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lineage.airflow import runner  # noqa: E402
from lineage.example.drops import write_drop  # noqa: E402
from lineage.example.pipeline import PARTNERS  # noqa: E402
from lineage.config import Settings  # noqa: E402


MODES = ("on", "tasks", "off")


def _passes(result: dict, dags: list[str]) -> list[float]:
    """Seconds per full pass over ``dags`` (consecutive runs in the runner's order)."""
    runs = result["runs"]
    out = []
    for i in range(0, len(runs), len(dags)):
        chunk = runs[i : i + len(dags)]
        assert [r["dag_id"] for r in chunk] == dags, chunk
        out.append(sum(r["seconds"] for r in chunk))
    return out


def _per_dag(results: list[dict]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for res in results:
        for r in res["runs"]:
            by.setdefault(r["dag_id"], []).append(r["seconds"])
    return {k: statistics.median(v) for k, v in by.items()}


def measure(settings: Settings, dags: list[str], rows: int, samples: int, repeat: int) -> dict:
    """Alternate on/off runner processes for one drop size; return the passes and per-DAG medians."""
    write_drop(PARTNERS["acme"], settings.home, rows=rows)
    env = {mode: runner.airflow_env(settings, lineage=(mode != "off")) for mode in MODES}
    env["tasks"]["AIRFLOW__OPENLINEAGE__EMISSION_POLICY"] = json.dumps(
        [{"scope": {}, "controls": {"include_source_code": False, "emit_dag_events": False}}]
    )
    logs = settings.home / "logs" / str(rows)
    seed = runner.run(dags, env["on"], log_path=logs / "seed.log")  # the gate reads this lineage
    assert all(r["state"] == "success" for r in seed["runs"]), seed
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    for i in range(samples):
        for mode in (MODES[::-1] if i % 2 else MODES):
            res = runner.run(dags, env[mode], log_path=logs / f"{mode}-{i}.log", repeat=repeat, warmup=True)
            assert all(r["state"] == "success" for r in res["runs"]), (mode, res)
            results[mode].append(res)
            print(f"rows={rows} sample {i} {mode:5}: passes {[round(x, 3) for x in _passes(res, dags)]}", flush=True)
    passes = {m: [p for res in results[m] for p in _passes(res, dags)] for m in results}
    return {"rows": rows, "passes": passes, "median": {m: statistics.median(v) for m, v in passes.items()},
            "per_dag": {m: _per_dag(results[m]) for m in results}}


def report(runs: list[dict], dags: list[str], args: argparse.Namespace, stored: int, spooled: int, wall: float) -> str:
    lines = [
        "# DAG run time: lineage emission on vs. the OpenLineage provider disabled",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `benchmarks/dag_overhead.py "
        f"--samples {args.samples} --repeat {args.repeat} --rows {args.rows}` on {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Airflow 3.3.2, "
        "apache-airflow-providers-openlineage 2.20.3.",
        "",
        "One pass = ACME's three DAGs run with `dag.test()` (ingest → build training set → gate + train:",
        "4 tasks, real scikit-learn training, the gate's real Great Expectations provenance check).",
        "*on*: every task START/COMPLETE and DAG event goes through `SpoolingTransport` (asynchronous,",
        "`execute_in_thread`) over HTTP to a live `lineage serve`, stored in the embedded PostgreSQL, all",
        "on the same machine. *off*: `AIRFLOW__OPENLINEAGE__DISABLED=true`, nothing else changed.",
        "Modes alternate per sample; each sample discards one warm-up pass. Timings are per DAG run as",
        "`dag.test()` returns them (in-process, SQLite metadata).",
        "",
        "| drop rows | passes per mode | median pass off (s) | tasks (s) | on (s) | ratio tasks/off | ratio on/off |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        off, tasks, on = r["median"]["off"], r["median"]["tasks"], r["median"]["on"]
        lines.append(
            f"| {r['rows']:,} | {len(r['passes']['on'])} | {off:.3f} | {tasks:.3f} | {on:.3f} | **{tasks / off:.3f}** | **{on / off:.3f}** |"
        )
    lines += ["", "Median seconds per DAG run:", "", "| drop rows | DAG | off | tasks | on |", "|---|---|---|---|---|"]
    for r in runs:
        for d in dags:
            pd_ = {m: r["per_dag"][m][d] for m in MODES}
            lines.append(f"| {r['rows']:,} | `{d}` | {pd_['off']:.3f} | {pd_['tasks']:.3f} | {pd_['on']:.3f} |")
    lines += [
        "",
        "Target: at most 5 % more with lineage on (ratio ≤ 1.05). "
        + "; ".join(
            f"{r['rows']:,} rows: tasks {'meets' if r['median']['tasks'] / r['median']['off'] <= 1.05 else 'misses'}, "
            f"on {'meets' if r['median']['on'] / r['median']['off'] <= 1.05 else 'misses'}"
            for r in runs
        )
        + ".",
        "",
        "*tasks* is what a task pays in a deployment (task START/COMPLETE built and handed to the transport",
        "in the task's process); *on* adds the DAG-run events that a scheduler emits in production but that",
        "`dag.test()` emits inside the measured run, including the provider forking its DAG-event process",
        "pool again after every task (its `before_stopping` hook shuts the pool down at each task's end).",
        "The transport itself is asynchronous: the server round trip is not on the task's path.",
        "",
        f"Events stored during the benchmark: {stored}; events left in the spool (not delivered): {spooled}.",
        f"Wall time of the timed part: {wall:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2, help="runner processes per mode and size")
    parser.add_argument("--repeat", type=int, default=4, help="timed passes per process")
    parser.add_argument("--rows", default="400,200000", help="drop sizes to measure, comma-separated")
    parser.add_argument("--port", type=int, default=5093)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dag_overhead.md")
    args = parser.parse_args()

    from lineage.demo import setup_contracts, start_server, stop_server
    from lineage.store import open_database

    dags = list(PARTNERS["acme"].dag_ids)
    with tempfile.TemporaryDirectory(prefix="dag-overhead-") as tmp:
        settings = Settings(home=Path(tmp), port=args.port)
        with open_database(settings, migrate=True) as db, db.connection() as conn:
            setup_contracts(conn)
        server = start_server(settings, settings.home / "logs" / "server.log")
        started = time.monotonic()
        try:
            runs = [measure(settings, dags, int(n), args.samples, args.repeat) for n in args.rows.split(",")]
        finally:
            stop_server(server)
        wall = time.monotonic() - started
        spooled = sum(1 for f in settings.spool_dir.glob("pending-*.ndjson") for _ in f.open())
        with open_database(settings) as db, db.connection() as conn:
            stored = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]

    text = report(runs, dags, args, stored, spooled, wall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
