"""The gate as a service: gather the facts, decide, validate, record; fail closed.

:func:`check_gate` is what the CLI, the HTTP API and the Airflow operator call.  It

1. follows lineage upstream from each input to its original sources (one recursive query per
   input; an input the store has never seen is its own source);
2. fetches, in one query, the current state of every contract covering those sources and the
   inputs themselves;
3. decides with the pure :func:`~lineage.gate.decision.evaluate`;
4. if the contracts allow the run and data is given, runs the compiled GX suites on it (the
   input's own contract suite, or the provenance check for derived data carrying the column),
   with the ids of the contracts that let its sources through as the approved set;
5. appends the decision to the decision log (``gate_decisions``, append-only; :func:`record`,
   read back with :func:`recent`).

It never raises on a refusal: the returned decision has ``allowed`` False and ``render()``
explains.  It fails closed: if the store cannot be reached, or anything else goes wrong while
deciding or recording, the decision is a refusal naming the failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any, Mapping, Sequence

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lineage.errors import LineageError, NotFound, StoreUnavailable
from lineage.gate.decision import Decision, Validation, blocked, evaluate
from lineage.gate.facets import input_facets

log = logging.getLogger("lineage.gate")
DEPTH = 100


def dataset_id(value: str) -> str:
    """``dataset:NS:NAME`` from either that or ``NS:NAME`` (split at the last colon)."""
    body = value[len("dataset:"):] if value.startswith("dataset:") else value
    ns, sep, name = body.rpartition(":")
    if not sep or not ns or not name:
        from lineage.errors import BadRequest

        raise BadRequest("inputs", f"`{value}` is not a dataset; expected `dataset:NAMESPACE:NAME` or `NAMESPACE:NAME`")
    return f"dataset:{ns}:{name}"


def _pair(ds: str) -> tuple[str, str]:
    ns, _, name = ds[len("dataset:"):].rpartition(":")
    return ns, name


def original_sources(conn, inputs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each input, the datasets its data came from (itself, if nothing writes it)."""
    from lineage.events.ids import NodeId
    from lineage.store import graph

    out: dict[str, tuple[str, ...]] = {}
    for inp in inputs:
        ns, name = _pair(inp)
        try:
            g = graph.upstream(conn, NodeId("dataset", ns, name), DEPTH)
        except NotFound:
            out[inp] = (inp,)
            continue
        out[inp] = tuple(graph.original_sources(g)) or (inp,)
    return out


def decide(conn, job: str, purpose: str, inputs: Sequence[str], today: dt.date | None = None) -> tuple[Decision, dict]:
    """The contract-and-lineage part alone; also returns the contracts found, by source pair."""
    from lineage.contracts import registry

    sources = original_sources(conn, inputs)
    pairs = {_pair(s) for srcs in sources.values() for s in srcs} | {_pair(i) for i in inputs}
    found = registry.contracts_for_datasets(conn, pairs)
    by_id = {f"dataset:{ns}:{name}": states for (ns, name), states in found.items()}
    return evaluate(job=job, purpose=purpose, inputs=inputs, sources=sources, contracts=by_id, today=today), by_id


def _validations(decision: Decision, contracts: dict, data: Mapping[str, Any]) -> list[Validation]:
    from lineage.contracts.compile import PROVENANCE_COLUMN, PROVENANCE_SUITE, compile_terms, suite_name
    from lineage.gate import runner

    results = []
    for inp in decision.inputs:
        frame = data.get(inp)
        if frame is None:
            continue
        approved = sorted({decision.passed_by[s].split("@")[0] for s in decision.sources.get(inp, ()) if s in decision.passed_by})
        suites: list[tuple[dict, str | None]] = []
        ns, name = _pair(inp)
        for state in contracts.get(inp, ()):
            link = next((d for d in state.terms.datasets if (d.namespace, d.name) == (ns, name)), None)
            if link and link.schema:
                suites.append((compile_terms(state.terms, state.sha256)[suite_name(state.id, link.schema)], state.ref))
                break
        if not suites and PROVENANCE_COLUMN in _columns(frame):
            suites.append((PROVENANCE_SUITE, None))
        for suite, ref in suites:
            results.append(runner.validate(inp, frame, suite, approved, ref))
    return results


def _columns(data: Any) -> list[str]:
    """Column names of a frame; SQL tables without a contract get no row-level check."""
    cols = getattr(data, "columns", None)
    return list(cols) if cols is not None else []


def check_gate(
    db_or_settings: Any,
    job: str,
    purpose: str,
    inputs: Sequence[str],
    data: Mapping[str, Any] | None = None,
    *,
    today: dt.date | None = None,
    connect_timeout: float = 5.0,
) -> Decision:
    """May ``job`` read ``inputs`` for ``purpose``?  See the module docstring; never raises on a refusal.

    ``db_or_settings`` is an open :class:`~lineage.store.db.Database` or the
    :class:`~lineage.config.Settings` to open one with (waiting at most ``connect_timeout``
    seconds for the store; then the run is blocked).  ``data`` maps inputs to pandas frames or
    :class:`~lineage.gate.runner.SqlTable`s to validate.
    """
    from lineage.store.db import Database

    raw_inputs = list(inputs)
    owned = None
    try:
        inputs = [dataset_id(i) for i in raw_inputs]
        frames = {dataset_id(k): v for k, v in (data or {}).items()}
        if isinstance(db_or_settings, Database):
            db = db_or_settings
        else:
            from lineage.store.db import resolve_url

            settings = db_or_settings
            db = owned = Database(resolve_url(settings), min_size=1, max_size=settings.pool_max_size, timeout=connect_timeout)
        with db.connection() as conn:
            decision, contracts = decide(conn, job, purpose, inputs, today)
        if decision.allowed and frames:
            decision = decision.with_validations(_validations(decision, contracts, frames))
        with db.connection() as conn:
            record(conn, decision)
        return decision
    except StoreUnavailable as exc:
        log.error("gate for %s blocked: store unavailable: %s", job, _masked(exc.message, db_or_settings))
        return blocked(job, purpose, raw_inputs, "store_unavailable",
                       _masked(f"the lineage store or contract registry cannot be reached ({exc.message}); "
                               "the gate fails closed, so the run is blocked", db_or_settings))
    except LineageError as exc:
        return blocked(job, purpose, raw_inputs, "gate_error", _masked(f"{exc.message}; the run is blocked", db_or_settings))
    except Exception as exc:  # fail closed on anything unexpected, naming it
        # The traceback is logged masked too: a driver's error text can quote the password.
        log.error("gate for %s failed:\n%s", job, _masked("".join(traceback.format_exception(exc)), db_or_settings))
        return blocked(job, purpose, raw_inputs, "gate_error",
                       _masked(f"the gate could not decide ({type(exc).__name__}: {exc}); it fails closed, so the run is blocked",
                               db_or_settings))
    finally:
        if owned is not None:
            owned.close()


def _masked(text: str, db_or_settings: Any) -> str:
    """``text`` with the store's password (and any credential-shaped text) masked: exception
    texts end up in decision texts, the decision log and the server log."""
    from lineage.config import redact_text

    if hasattr(db_or_settings, "database_url"):  # Settings
        secret = db_or_settings.database_url
        url = secret.get_secret_value() if secret is not None else None
    else:  # an open Database
        url = getattr(db_or_settings, "url", None)
    return redact_text(text, url if isinstance(url, str) else None)


# -- the decision log ---------------------------------------------------------------------------
def split_job(job: str) -> tuple[str, str]:
    body = job[len("job:"):] if job.startswith("job:") else job
    ns, _, name = body.rpartition(":")
    return ns, name


def record(conn: psycopg.Connection, decision: Decision) -> None:
    ns, name = split_job(decision.job)
    d = decision.as_dict()
    conn.execute(
        """INSERT INTO gate_decisions (decision_id, job_namespace, job_name, purpose, allowed, inputs, reasons,
                                       contracts, validations, facets, decided_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            decision.decision_id,
            ns,
            name,
            decision.purpose,
            decision.allowed,
            Jsonb({"inputs": d["inputs"], "sources": d["sources"], "passedBy": d["passedBy"]}),
            Jsonb(d["reasons"]),
            Jsonb(d["contracts"]),
            Jsonb(d["validations"]),
            Jsonb(input_facets(decision)),
            decision.decided_at,
        ),
    )


def recent(conn: psycopg.Connection, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Stored decisions, newest first, optionally for one job (``NS:NAME``)."""
    where, params = "", []
    if job:
        ns, name = split_job(job)
        where, params = "WHERE job_namespace = %s AND job_name = %s", [ns, name]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT decision_id::text AS "decisionId", job_namespace || ':' || job_name AS job, purpose, allowed,
                       inputs, reasons, contracts, validations, facets, decided_at AS "decidedAt"
                FROM gate_decisions {where} ORDER BY decided_at DESC, id DESC LIMIT %s""",
            [*params, limit],
        ).fetchall()
    for r in rows:
        r["decidedAt"] = r["decidedAt"].isoformat()
    return rows
