"""A thin Great Expectations runner: compiled suites on pandas frames and PostgreSQL tables.

One ephemeral GX context per process, created on first use (importing GX costs ~2.5 s, so
nothing here imports it at module import).  The pandas data source has one dataframe asset;
frames are passed as batch parameters.  SQL tables get a data source per connection string and
an asset per table.  Validation definitions are cached per (data, suite), so repeated gate
checks pay only for the validation itself.

:func:`validate` returns a :class:`~lineage.gate.decision.Validation` whose per-expectation
results are plain dicts: type, column, clause (from the suite's ``meta``), success, and for
row-level checks the unexpected count and a sample of the offending values — no sample where
the expectation's ``meta.samples`` is false (special categories of data: counts only).

Three things GX does not do alone:

* **ODCS thresholds.**  A quality rule's ``meta.threshold`` (operator, value, rows or percent)
  decides its success from GX's counts, exactly (see :mod:`lineage.contracts.compile.quality`).
* **SQL rules on data frames.**  ``unexpected_rows_expectation`` runs only on SQL data in GX.
  For a frame the gate copies the columns the query names into a private in-memory SQLite
  database and runs the same query there; a query SQLite cannot run fails, so the run is
  blocked (fail closed) with the error as the reason.  On a :class:`SqlTable` GX runs it in
  PostgreSQL.
* **pandas string columns.**  pandas 3 reads text as the ``str`` dtype, which GX's type check
  does not recognise; such columns are validated as ``object`` columns (each value's type).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from lineage.contracts.compile import APPROVED_PARAMETER, holds, quiet_gx, to_gx_suite
from lineage.gate.decision import Validation

SAMPLE = 5
SQL_RULE = "unexpected_rows_expectation"
_lock = threading.Lock()
_state: dict[str, Any] = {}


@dataclass(frozen=True)
class SqlTable:
    """A table to validate in place: a SQLAlchemy/libpq URL, a table and its schema."""

    url: str
    table: str
    schema: str = "public"

    @property
    def sqlalchemy_url(self) -> str:
        from lineage.store.db import sqlalchemy_url

        return sqlalchemy_url(self.url)


def context():
    """The process's ephemeral GX context (created once, progress bars off, analytics off)."""
    with _lock:
        if "ctx" not in _state:
            quiet_gx()
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            frames = ctx.data_sources.add_pandas("lineage_gate_frames")
            _state["frame_batch"] = frames.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
            _state["sql"] = {}
            _state["validations"] = {}
            _state["ctx"] = ctx
        return _state["ctx"]


def _batch_definition(data: Any):
    ctx = context()
    if not isinstance(data, SqlTable):
        return _state["frame_batch"], "frame"
    key = (data.sqlalchemy_url, data.schema, data.table)
    if key not in _state["sql"]:
        n = len(_state["sql"])
        source = ctx.data_sources.add_sql(f"lineage_gate_sql_{n}", connection_string=data.sqlalchemy_url)
        asset = source.add_table_asset(f"table_{n}", table_name=data.table, schema_name=data.schema)
        _state["sql"][key] = asset.add_batch_definition_whole_table("whole")
    return _state["sql"][key], f"sql:{key}"


def validation_definition(data: Any, suite: dict[str, Any]):
    """A cached GX ``ValidationDefinition`` of ``suite`` over ``data``'s batch definition."""
    import great_expectations as gx

    ctx = context()
    batch, data_key = _batch_definition(data)
    # keyed by content: two revisions of a contract share a suite name, not their expectations
    digest = hashlib.sha256(json.dumps(suite["expectations"], sort_keys=True, default=str).encode()).hexdigest()
    key = (data_key, suite["name"], digest)
    with _lock:
        if key not in _state["validations"]:
            name = f"v{len(_state['validations'])}_{suite['name']}"
            gx_suite = ctx.suites.add(to_gx_suite({**suite, "name": f"{name}.suite"}))
            _state["validations"][key] = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
        return _state["validations"][key]


def run_suite(data: Any, suite: dict[str, Any], approved_ids: list[str]):
    """Run ``suite`` on ``data`` (a pandas DataFrame or :class:`SqlTable`); the raw GX result."""
    vd = validation_definition(data, suite)
    params = {"dataframe": data} if not isinstance(data, SqlTable) else None
    return vd.run(
        batch_parameters=params,
        expectation_parameters={APPROVED_PARAMETER: list(approved_ids)},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE},
    )


def validate(dataset: str, data: Any, suite: dict[str, Any], approved_ids: list[str], contract: str | None) -> Validation:
    """Run a compiled suite on one input's data and summarise the result."""
    started = time.perf_counter()
    sql_rules: list[dict[str, Any]] = []
    if not isinstance(data, SqlTable):
        sql_rules = [e for e in suite["expectations"] if e["type"] == SQL_RULE]
        if sql_rules:
            suite = {**suite, "expectations": [e for e in suite["expectations"] if e["type"] != SQL_RULE]}
        data = _object_strings(data)
    result = run_suite(data, suite, approved_ids)
    results = [_summarise(r) for r in result.results]
    results += [_frame_sql(data, e) for e in sql_rules]
    elapsed = time.perf_counter() - started
    return Validation(
        dataset=dataset,
        suite=suite["name"],
        contract=contract,
        success=all(r["success"] for r in results),
        results=tuple(results),
        seconds=elapsed,
    )


def _object_strings(frame: Any) -> Any:
    """The frame with pandas' ``str`` columns as ``object`` (see the module docstring)."""
    dtypes = getattr(frame, "dtypes", None)
    if dtypes is None:
        return frame
    text = [c for c, t in dtypes.items() if getattr(t, "name", "") in ("str", "string")]
    return frame.astype({c: object for c in text}) if text else frame


def _frame_sql(frame: Any, exp: dict[str, Any]) -> dict[str, Any]:
    """A SQL quality rule run on a private SQLite copy of the columns its query names."""
    import sqlite3

    meta = exp.get("meta") or {}
    out: dict[str, Any] = {"type": exp["type"], "column": meta.get("property"), "clause": meta.get("clause"),
                           "check": meta.get("check"), "success": False}
    query = exp["kwargs"]["unexpected_rows_query"]
    out["query"] = query
    named = [c for c in frame.columns if re.search(r'(?<![\w"])"?' + re.escape(str(c)) + r'"?(?![\w"])', query)]
    conn = sqlite3.connect(":memory:")
    try:
        # the columns the query names are copied; if it names none (COUNT(*)), one gives the rows
        (frame[named] if named else frame.iloc[:, :1]).to_sql("batch", conn, index=False)
        rows = conn.execute(query.replace("{batch}", "batch")).fetchmany(SAMPLE + 1)
    except Exception as exc:  # sqlite3.Error, or a value SQLite cannot store: the rule could not run
        out["error"] = f"the SQL rule could not run on the data frame (in SQLite): {str(exc)[:200]}"
        return out
    finally:
        conn.close()
    out["success"] = not rows
    out["unexpected_count"] = len(rows)
    out["sample"] = [_plain(r[0]) for r in rows[:SAMPLE]] if meta.get("samples", True) else []
    if not meta.get("samples", True):
        out["hidden"] = True
    return out


def _summarise(r) -> dict[str, Any]:
    cfg = r.expectation_config
    res = r.result or {}
    meta = cfg.meta or {}
    out: dict[str, Any] = {
        "type": cfg.type,
        "column": cfg.kwargs.get("column") or meta.get("property"),
        "clause": meta.get("clause"),
        "check": meta.get("check"),
        "success": bool(r.success),
    }
    shown = meta.get("samples", True)
    if "unexpected_count" in res:
        out["element_count"] = res.get("element_count")
        out["unexpected_count"] = res.get("unexpected_count")
        out["sample"] = [_plain(v) for v in (res.get("partial_unexpected_list") or [])[:SAMPLE]] if shown else []
    if cfg.type == "expect_table_columns_to_match_set":
        mismatched = (res.get("details") or {}).get("mismatched") or {}
        out["observed"] = res.get("observed_value")
        out["unexpected_columns"] = mismatched.get("unexpected") or []
        out["missing_columns"] = mismatched.get("missing") or []
    elif isinstance(res.get("observed_value"), (int, float)):
        out["observed"] = res["observed_value"]
    if cfg.type == SQL_RULE:
        out["query"] = cfg.kwargs.get("unexpected_rows_query")
        out["unexpected_count"] = res.get("observed_value")
        rows = (res.get("details") or {}).get("unexpected_rows") or []
        out["sample"] = [_plain(next(iter(row.values()), None) if isinstance(row, dict) else row) for row in rows[:SAMPLE]] if shown else []
    if not shown:
        out["hidden"] = True  # the contract's categories allow counts only
    failed = bool(r.exception_info and r.exception_info.get("raised_exception"))
    if meta.get("threshold") and not failed:
        _decide(out, res, meta["threshold"])
    if failed:
        out["success"] = False
        out["error"] = r.exception_info.get("exception_message")
    return out


def _decide(out: dict[str, Any], res: dict[str, Any], t: dict[str, Any]) -> None:
    """An ODCS quality rule decided from GX's counts by its own operator and unit."""
    if t["count"] == "observed":
        actual = res.get("observed_value")
    else:
        missing = (res.get("missing_count") or 0) if t["count"] == "unexpected+missing" else 0
        actual = (res.get("unexpected_count") or 0) + missing
        out["unexpected_count"] = actual
    if not isinstance(actual, (int, float)):
        out["success"] = False  # no count, no pass
        return
    if t["unit"] == "percent":
        total = res.get("element_count") or 0
        actual = round(100.0 * actual / total, 6) if total else 0.0
    out["observed"] = actual
    out["success"] = holds(t["operator"], t["value"], actual)
    out["threshold"] = f"{t['metric']} {t['operator']} {t['value']} {t['unit']}"


def _plain(value: Any) -> Any:
    """JSON-able sample values (NaN becomes None)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
