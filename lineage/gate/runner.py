"""A thin Great Expectations runner: compiled suites on pandas frames and PostgreSQL tables.

One ephemeral GX context per process, created on first use (importing GX costs ~2.5 s, so
nothing here imports it at module import).  The pandas data source has one dataframe asset;
frames are passed as batch parameters.  SQL tables get a data source per connection string and
an asset per table.  Validation definitions are cached per (data, suite), so repeated gate
checks pay only for the validation itself.

:func:`validate` returns a :class:`~lineage.gate.decision.Validation` whose per-expectation
results are plain dicts: type, column, clause (from the suite's ``meta``), success, and for
row-level checks the unexpected count and a sample of the offending values.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from lineage.contracts.compile import APPROVED_PARAMETER, to_gx_suite
from lineage.gate.decision import Validation

SAMPLE = 10
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
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
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
    key = (data_key, suite["name"], suite["id"], len(suite["expectations"]))
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
    result = run_suite(data, suite, approved_ids)
    elapsed = time.perf_counter() - started
    return Validation(
        dataset=dataset,
        suite=suite["name"],
        contract=contract,
        success=bool(result.success),
        results=tuple(_summarise(r) for r in result.results),
        seconds=elapsed,
    )


def _summarise(r) -> dict[str, Any]:
    cfg = r.expectation_config
    res = r.result or {}
    out: dict[str, Any] = {
        "type": cfg.type,
        "column": cfg.kwargs.get("column"),
        "clause": (cfg.meta or {}).get("clause"),
        "check": (cfg.meta or {}).get("check"),
        "success": bool(r.success),
    }
    if "unexpected_count" in res:
        out["element_count"] = res.get("element_count")
        out["unexpected_count"] = res.get("unexpected_count")
        out["sample"] = [_plain(v) for v in (res.get("partial_unexpected_list") or [])[:SAMPLE]]
    if cfg.type == "expect_table_columns_to_match_set":
        mismatched = (res.get("details") or {}).get("mismatched") or {}
        out["observed"] = res.get("observed_value")
        out["unexpected_columns"] = mismatched.get("unexpected") or []
        out["missing_columns"] = mismatched.get("missing") or []
    if r.exception_info and r.exception_info.get("raised_exception"):
        out["error"] = r.exception_info.get("exception_message")
    return out


def _plain(value: Any) -> Any:
    """JSON-able sample values (NaN becomes None)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
