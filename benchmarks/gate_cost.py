"""What does the gate cost on top of the Great Expectations validation it runs anyway?

Measured side by side, in one process, on one store:

1. **Bare GX**: the compiled suite of the demo ACME contract (6 expectations: column set,
   4 not-null, provenance in-set) run with plain GX Core calls (ephemeral context, pandas
   data source, ``ValidationDefinition.run``) on a 1M-row frame.
2. **The gate**: ``check_gate`` for a training job whose input sits 10 hops (10 jobs) downstream
   of the partner drop: lineage walk, contract lookup, decision, the *same* suite on the *same*
   frame, and the decision appended to the log.  Target: at most 1.2x the bare run.
3. **Contract and lineage alone** (``service.decide``): the recursive upstream walk over 10 hops
   plus the registry lookup and the pure decision, no data.  Target: under 50 ms.

The store holds the 10-hop chain plus unrelated chains as noise, so the walk is not answered
from an empty database.  Runs are interleaved (bare, gate, bare, gate, ...) after a warm-up and
medians reported.  Writes ``benchmarks/results/gate.md``.

    .venv/bin/python benchmarks/gate_cost.py [--rows 1000000] [--repeat 5] [--noise 200]

Uses ``LINEAGE_DATABASE_URL`` if set, otherwise an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOPS = 10
SOURCE = ("partner-drops", "acme/photos")
TARGET = ("bench", f"hop{HOPS}.training_set")
JOB = "bench:train_model"
PURPOSE = "train_ai_system"


def _store(tmp: Path):
    import psycopg

    from lineage.store.db import Database
    from lineage.store.migrate import upgrade

    url = os.environ.get("LINEAGE_DATABASE_URL")
    if not url:
        from lineage.store.embedded import embedded_url

        url = embedded_url(tmp / "pg")
    name = f"gate_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = url.partition("?")
    db_url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    upgrade(db_url)
    return Database(db_url, min_size=1, max_size=4), url, name


def _lineage(db, noise: int) -> None:
    """The 10-hop chain from the partner drop to the training set, plus ``noise`` unrelated chains."""
    from lineage.events import parse_event
    from lineage.samples import dataset, run_event
    from lineage.store.ingest import ingest_events

    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    events = []

    def chain(prefix: str, first: tuple[str, str], last: tuple[str, str] | None) -> None:
        prev = dataset(*first)
        for hop in range(1, HOPS + 1):
            out = dataset(*last) if (last and hop == HOPS) else dataset(prefix, f"hop{hop}")
            rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}/{hop}"))
            events.append(run_event("COMPLETE", (prefix, f"step{hop}"), rid, [prev], [out], t0 + dt.timedelta(minutes=hop)))
            prev = out

    chain("bench", SOURCE, TARGET)
    for i in range(noise):
        chain(f"noise{i}", ("noise-drops", f"drop{i}"), None)
    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in events])


def _contract(db) -> dict:
    """The demo ACME contract, also covering the training set (so the gate runs the same suite)."""
    from lineage.contracts import registry
    from lineage.contracts.compile import compile_terms
    from lineage.contracts.document import load_contract

    text = (ROOT / "contracts" / "acme-stock-photos.yaml").read_text()
    text = text.rstrip() + f"\n      - namespace: {TARGET[0]}\n        name: {TARGET[1]}\n        schema: photos\n"
    doc = load_contract("acme-stock-photos.yaml (benchmark)", text=text)
    from lineage.auth.principal import Principal

    with db.connection() as conn:
        # register/approve take the acting Principal since the auth work (issue 8).
        registry.register(conn, doc, Principal("data-requests@example.com", "benchmark", frozenset({"requester"})))
        registry.approve(conn, doc.id, Principal("dpo@example.com", "benchmark", frozenset({"steward"})))
    return compile_terms(doc.terms, doc.sha256)["acme-stock-photos.photos"]


def _frame(rows: int, columns: list[str]):
    """A drop shaped like the Airflow demo's ACME drop: ids, licence, embedding, label, provenance."""
    import numpy as np
    import pandas as pd

    idx = pd.Series(np.arange(rows))
    rng = np.random.default_rng(7)
    fixed = {
        "photo_id": idx.map("p{}".format),
        "image_uri": idx.map("partner-drops://acme/photos/images/{}.jpg".format),
        "license_id": "LIC-ACME-0001",
        "captured_at": "2026-01-01",
        "smiling": rng.integers(0, 2, size=rows),
        "source_contract_id": "acme-stock-photos",
    }
    data = {c: fixed[c] if c in fixed else rng.normal(size=rows).round(5) for c in columns}
    return pd.DataFrame(data)


def _bare_gx(suite_json: dict):
    """Plain GX Core: its own ephemeral context, the same suite, the same parameters."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = ctx.data_sources.add_pandas("bare").add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(
        name="bare", expectations=[ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj() for e in suite_json["expectations"]]
    ))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="bare", data=batch, suite=suite))

    def run(frame):
        return vd.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={"approved_contract_ids": ["acme-stock-photos"]},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )

    return run


def _ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--decide-repeat", type=int, default=50)
    ap.add_argument("--noise", type=int, default=200, help="unrelated 10-hop chains in the store")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gate.md")
    args = ap.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    from lineage.gate.service import check_gate, decide

    tmp = Path(tempfile.mkdtemp(prefix="gate-bench-"))
    db, root_url, dbname = _store(tmp)
    try:
        _lineage(db, args.noise)
        suite = _contract(db)
        frame = _frame(args.rows, suite["expectations"][0]["kwargs"]["column_set"])
        target = f"dataset:{TARGET[0]}:{TARGET[1]}"
        bare = _bare_gx(suite)

        # Warm-up: GX import, contexts, caches, prepared statements.
        assert bare(frame).success
        warm = check_gate(db, JOB, PURPOSE, [target], {target: frame})
        assert warm.allowed and warm.sources[target] == (f"dataset:{SOURCE[0]}:{SOURCE[1]}",), warm.render()

        bare_t, gate_t = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            bare(frame)
            bare_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            d = check_gate(db, JOB, PURPOSE, [target], {target: frame})
            gate_t.append(time.perf_counter() - t)
            assert d.allowed and len(d.validations) == 1 and d.validations[0].suite == suite["name"]

        decide_t = []
        for _ in range(args.decide_repeat):
            t = time.perf_counter()
            with db.connection() as conn:
                dec, _ = decide(conn, JOB, PURPOSE, [target])
            decide_t.append(time.perf_counter() - t)
            assert dec.allowed
        ratio = statistics.median(gate_t) / statistics.median(bare_t)
        p95 = sorted(decide_t)[int(0.95 * (len(decide_t) - 1))] * 1000
        report = f"""# Gate cost

Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `benchmarks/gate_cost.py` on {platform.machine()},
{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {'embedded' if not os.environ.get('LINEAGE_DATABASE_URL') else 'server'},
great-expectations {__import__('great_expectations').__version__}, pandas {__import__('pandas').__version__}.

Suite: `{suite['name']}` ({len(suite['expectations'])} expectations: column set, not-null on required columns,
provenance column in the approved-contract set). Data: {args.rows:,} rows x {frame.shape[1]} columns (pandas).
Lineage: the training set is {HOPS} jobs downstream of the partner drop; the store also holds {args.noise}
unrelated {HOPS}-hop chains ({(args.noise + 1) * HOPS:,} jobs). Medians of {args.repeat} interleaved runs after a warm-up.

| measurement | median | target |
|---|---|---|
| bare GX validation of the suite | {_ms(bare_t)} ms | |
| gate end to end (lineage + contracts + same GX validation + decision log) | {_ms(gate_t)} ms | |
| **gate / bare GX** | **{ratio:.3f}x** | at most 1.2x |
| contract-and-lineage part alone, {HOPS}-hop upstream ({args.decide_repeat} runs) | **{_ms(decide_t)} ms** (p95 {p95:.1f} ms) | under 50 ms |

Raw timings (s): bare {', '.join(f'{x:.3f}' for x in bare_t)}; gate {', '.join(f'{x:.3f}' for x in gate_t)}.

Reading: nearly all of the gate's cost on large data is the GX validation it would run anyway;
the contract-and-lineage decision is one recursive upstream query, one registry query and a pure
function, so it does not grow with the data.
"""
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(report)
    finally:
        db.close()
        import psycopg

        with psycopg.connect(root_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
