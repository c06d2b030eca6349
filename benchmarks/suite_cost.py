"""What do the larger suites of issue 13 cost?  The gate against bare GX, and compile time.

Two measurements, written to ``benchmarks/results/suite_cost.md``:

1. **Gate vs bare GX on a contract-strict suite.**  A contract shaped like the demo ACME drop
   (ids, licence, 16-dim embedding, label, provenance) but stating what issue 13 compiles: types,
   a primary key, ``logicalTypeOptions`` (lengths, pattern, ranges), library quality rules on
   every column (``nullValues``, ``invalidValues`` with ``validValues``, ``duplicateValues``) and
   a ``rowCount`` rule, one ``custom`` great-expectations rule and one ``sql`` rule.  The suite is whatever
   ``compile_terms`` makes of it *now* (the gate compiles the same way at run time), so the
   script runs before and after the compiler covers all of it; the report states the suite's
   size.  As in ``gate_cost.py``: bare GX Core (ephemeral context, pandas data source,
   ``ValidationDefinition.run``) vs ``check_gate`` for a job 10 hops downstream, the same frame,
   interleaved runs after a warm-up, medians.  Target: gate at most 1.2x bare GX.

   Fair comparison: bare GX on pandas cannot run ``unexpected_rows_expectation`` (GX runs it on
   SQL data only; the gate runs it on a SQLite copy of the columns the query names), and GX's
   type checks do not recognise pandas 3's ``str`` dtype.  So the bare side validates the suite
   *without* the SQL rule, and casts ``str`` columns to ``object`` inside its timed run (without
   the cast its verdict would be wrong; the gate does the same cast).  The gate's SQL rule is
   timed alone too (the runner's SQLite path on the same frame), and the report gives the ratio
   with and without it.
2. **Compile time for a generated 200-column contract** with a quality rule on every column
   (rules cycle through nullValues/missingValues/invalidValues/duplicateValues with operators and
   units, and every column has logicalTypeOptions): ``load_contract`` (YAML, JSON Schema, model,
   terms) and ``compile_terms`` timed separately, medians.

    .venv/bin/python benchmarks/suite_cost.py [--rows 1000000] [--repeat 5] [--columns 200]

Uses ``LINEAGE_DATABASE_URL`` if set, otherwise an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gate_cost  # noqa: E402  (reuses its store, lineage chain and frame)

CONTRACT_ID = "bench-strict-photos"
EMB = [f"emb_{i:02d}" for i in range(16)]

_GOVERNANCE = """customProperties:
  - property: provider
    value: Benchmark Photos Ltd.
  - property: requester
    value: ml-lead@example.com
  - property: legalBasis
    value: contract
  - property: dataCategories
    value: [user.content.self_image]
  - property: permittedPurposes
    value: [train_ai_system]
  - property: provenanceColumn
    value: source_contract_id
  - property: datasets
    value:
{datasets}"""


def strict_contract(targets: list[tuple[str, str]]) -> str:
    """The ACME-shaped contract with everything issue 13 compiles, covering ``targets``."""
    emb = "".join(
        f"""      - name: {c}
        logicalType: number
        logicalTypeOptions: {{minimum: -10, maximum: 10}}
        quality:
          - {{metric: nullValues, mustBeLessOrEqualTo: 1, unit: percent}}
"""
        for c in EMB
    )
    datasets = "".join(f"      - namespace: {ns}\n        name: {name}\n        schema: photos\n" for ns, name in targets)
    return f"""apiVersion: v3.1.0
kind: DataContract
id: {CONTRACT_ID}
name: Benchmark - ACME-shaped drop with a contract-strict suite
version: 1.0.0
status: active
schema:
  - name: photos
    physicalName: acme/photos
    physicalType: table
    quality:
      - {{metric: rowCount, mustBeGreaterOrEqualTo: 1}}
      - type: sql
        query: "SELECT COUNT(*) FROM ${{table}} WHERE smiling NOT IN (0, 1)"
        mustBe: 0
    properties:
      - name: photo_id
        logicalType: string
        required: true
        primaryKey: true
        logicalTypeOptions: {{minLength: 2, maxLength: 16, pattern: "^p[0-9]+$"}}
      - name: image_uri
        logicalType: string
        required: true
        quality:
          - {{metric: duplicateValues, mustBe: 0}}
      - name: license_id
        logicalType: string
        required: true
        quality:
          - {{metric: invalidValues, arguments: {{validValues: [LIC-ACME-0001, LIC-ACME-0002]}}, mustBe: 0}}
      - name: smiling
        logicalType: integer
        logicalTypeOptions: {{minimum: 0, maximum: 1}}
        quality:
          - type: custom
            engine: great-expectations
            implementation: {{type: expect_column_values_to_be_in_set, kwargs: {{value_set: [0, 1]}}}}
      - name: source_contract_id
        logicalType: string
        required: true
{emb}{_GOVERNANCE.format(datasets=datasets)}"""


def wide_contract(columns: int) -> str:
    """A generated contract of ``columns`` properties, each with logicalTypeOptions and a quality rule."""
    rules = [
        "{metric: nullValues, mustBe: 0}",
        "{metric: nullValues, mustBeLessThan: 5, unit: percent}",
        "{metric: missingValues, arguments: {missingValues: [null, '', 'N/A']}, mustBeLessOrEqualTo: 10, unit: rows}",
        "{metric: invalidValues, arguments: {validValues: [a, b, c]}, mustBe: 0}",
        "{metric: duplicateValues, mustBe: 0}",
    ]
    props = []
    for i in range(columns - 1):
        if i % 2:
            kind, opts = "number", "{minimum: 0, exclusiveMaximum: 1000}"
            rule = rules[(i // 2) % 2]  # numbers get the two nullValues rules
        else:
            kind, opts = "string", "{minLength: 1, maxLength: 64}"
            rule = rules[(i // 2) % 5]
        props.append(f"      - name: col_{i:03d}\n        logicalType: {kind}\n        logicalTypeOptions: {opts}\n        quality:\n          - {rule}\n")
    body = "".join(props) + ("      - name: source_contract_id\n        logicalType: string\n        required: true\n        quality:\n          - {metric: nullValues, mustBe: 0}\n")
    governance = _GOVERNANCE.format(datasets="      - namespace: bench\n        name: wide\n        schema: wide\n")
    return f"""apiVersion: v3.1.0
kind: DataContract
id: bench-wide
name: Benchmark - {columns} columns, a quality rule on each
version: 1.0.0
status: active
schema:
  - name: wide
    physicalName: wide
    physicalType: table
    quality:
      - {{metric: rowCount, mustBeGreaterThan: 0}}
    properties:
{body}{governance}"""


def _frame(rows: int, columns: list[str]):
    import numpy as np

    frame = gate_cost._frame(rows, [c for c in columns if c != "source_contract_id"])
    frame["source_contract_id"] = CONTRACT_ID
    frame["smiling"] = frame["smiling"].astype(np.int64)
    return frame[columns]


def _bare_gx(suite_json: dict):
    """Bare GX Core on the suite minus its SQL rule (which GX runs on SQL data only); see module doc."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = ctx.data_sources.add_pandas("bare").add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    exps = [ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
            for e in suite_json["expectations"] if e["type"] != "unexpected_rows_expectation"]
    suite = ctx.suites.add(gx.ExpectationSuite(name="bare", expectations=exps))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="bare", data=batch, suite=suite))

    def run(frame):
        # pandas 3's `str` dtype is no type GX's type checks know: as `object`, each value's type is checked
        text = {c: object for c, t in frame.dtypes.items() if getattr(t, "name", "") in ("str", "string")}
        return vd.run(
            batch_parameters={"dataframe": frame.astype(text) if text else frame},
            expectation_parameters={"approved_contract_ids": [CONTRACT_ID]},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )

    return run


def _principal(name: str, role: str):
    from lineage.auth.principal import Principal

    return Principal(name, f"benchmark:{name}", frozenset({role}))


def _ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f}"


def measure_compile(columns: int, repeat: int) -> dict:
    from lineage.contracts.compile import compile_terms
    from lineage.contracts.document import load_contract

    text = wide_contract(columns)
    load_t, compile_t = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        doc = load_contract("bench-wide.yaml", text=text)
        load_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        suites = compile_terms(doc.terms, doc.sha256)
        compile_t.append(time.perf_counter() - t)
    exps = suites["bench-wide.wide"]["expectations"]
    return {"load": load_t, "compile": compile_t, "expectations": len(exps), "bytes": len(text.encode())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--noise", type=int, default=200, help="unrelated 10-hop chains in the store")
    ap.add_argument("--columns", type=int, default=200)
    ap.add_argument("--compile-repeat", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "suite_cost.md")
    args = ap.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    from lineage.contracts import registry
    from lineage.contracts.compile import compile_terms
    from lineage.contracts.document import load_contract
    from lineage.gate.service import check_gate

    wide = measure_compile(args.columns, args.compile_repeat)
    tmp = Path(tempfile.mkdtemp(prefix="suite-bench-"))
    db, root_url, dbname = gate_cost._store(tmp)
    try:
        gate_cost._lineage(db, args.noise)
        doc = load_contract("bench-strict-photos.yaml", text=strict_contract([gate_cost.SOURCE, gate_cost.TARGET]))
        with db.connection() as conn:
            registry.register(conn, doc, _principal("data-requests@example.com", "requester"))
            registry.approve(conn, doc.id, _principal("dpo@example.com", "steward"))
        suite = compile_terms(doc.terms, doc.sha256)[f"{CONTRACT_ID}.photos"]
        columns = [p["name"] for p in doc.document["schema"][0]["properties"]]
        frame = _frame(args.rows, columns)
        target = f"dataset:{gate_cost.TARGET[0]}:{gate_cost.TARGET[1]}"
        bare = _bare_gx(suite)

        warm_bare = bare(frame)
        warm = check_gate(db, gate_cost.JOB, gate_cost.PURPOSE, [target], {target: frame})
        failed = [r.expectation_config.type for r in warm_bare.results if not r.success]
        # Same suite, same frame: the gate must reach the verdict bare GX reaches.
        assert warm.allowed == warm_bare.success, (warm.render(), failed)

        from lineage.gate.runner import _frame_sql

        sql_rules = [e for e in suite["expectations"] if e["type"] == "unexpected_rows_expectation"]
        bare_t, gate_t, sql_t = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            bare(frame)
            bare_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            d = check_gate(db, gate_cost.JOB, gate_cost.PURPOSE, [target], {target: frame})
            gate_t.append(time.perf_counter() - t)
            assert len(d.validations) == 1 and d.validations[0].suite == suite["name"]
            t = time.perf_counter()
            assert all(_frame_sql(frame, e)["success"] for e in sql_rules)
            sql_t.append(time.perf_counter() - t)
        ratio = statistics.median(gate_t) / statistics.median(bare_t)
        ratio_gx = (statistics.median(gate_t) - statistics.median(sql_t)) / statistics.median(bare_t)
        bare_n = len(suite["expectations"]) - len(sql_rules)
        kinds = collections.Counter(e["type"].removeprefix("expect_") for e in suite["expectations"])
        kinds_text = ", ".join(f"{n}x {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        verdict = "passes (run allowed)" if warm.allowed else f"FAILS on this data ({', '.join(failed)}): both sides validated a failing suite"
        report = f"""# Suite cost (issue 13): gate vs bare GX on the contract-strict suite, and compile time

Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `benchmarks/suite_cost.py` on {platform.machine()},
{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {'embedded' if not os.environ.get('LINEAGE_DATABASE_URL') else 'server'},
great-expectations {__import__('great_expectations').__version__}, pandas {__import__('pandas').__version__}.

## Gate vs bare GX

Contract `{CONTRACT_ID}` (ACME-shaped; types, primary key, logicalTypeOptions, a quality rule on
every column, rowCount, one custom GX rule, one SQL rule), compiled by the current `compile_terms` into
**{len(suite['expectations'])} expectations**: {kinds_text}. The suite {verdict}.
Bare GX runs the {bare_n} of them it can run on pandas (not the SQL rule) and casts pandas 3
`str` columns to `object` inside its timed run, as the gate does (GX's type checks do not
know `str`); the gate runs all {len(suite['expectations'])}, the SQL rule on a SQLite copy of the column it names.
Data: {args.rows:,} rows x {frame.shape[1]} columns (pandas). Lineage: {gate_cost.HOPS} hops, {args.noise} noise chains.
Medians of {args.repeat} interleaved runs after a warm-up.

| measurement | median | target |
|---|---|---|
| bare GX validation of the suite | {_ms(bare_t)} ms | |
| gate end to end (lineage + contracts + compile + same GX validation + decision log) | {_ms(gate_t)} ms | |
| of which: the gate's SQL rule alone (SQLite copy of 1 column + query) | {_ms(sql_t)} ms | |
| **gate / bare GX**, same GX work (gate minus its SQL rule) | **{ratio_gx:.3f}x** | at most 1.2x |
| gate / bare GX, all in (the gate also runs the SQL rule bare GX cannot) | {ratio:.3f}x | |

Raw timings (s): bare {', '.join(f'{x:.3f}' for x in bare_t)}; gate {', '.join(f'{x:.3f}' for x in gate_t)}; SQL rule {', '.join(f'{x:.3f}' for x in sql_t)}.

## Compile time, {args.columns}-column contract

A generated contract of {args.columns} properties ({wide['bytes']:,} bytes of YAML), each with
logicalTypeOptions and one library quality rule, plus a rowCount rule; compiled into
**{wide['expectations']} expectations**. Medians of {args.compile_repeat} runs.

| step | median | max |
|---|---|---|
| `load_contract` (strict YAML, ODCS JSON Schema, model, terms) | {_ms(wide['load'])} ms | {max(wide['load']) * 1000:.1f} ms |
| `compile_terms` | {_ms(wide['compile'])} ms | {max(wide['compile']) * 1000:.1f} ms |

Reading: the expectation counts above are what the compiler produces at the time of the run.
The ratio is taken on the same GX work; the SQL rule is extra work bare GX on pandas cannot
do at all, so it is shown apart (its cost grows with the rows copied, one column here).
`compile_terms` is measured apart from `load_contract` (YAML, JSON Schema, model, terms), which
also compiles once to refuse an unsupported rule; both run once per registration, not per gate
(the gate compiles the stored terms again, included in the gate's end-to-end time).
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
