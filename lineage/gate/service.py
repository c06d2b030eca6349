"""The gate as a service: gather the facts, decide, validate, record; fail closed.

:func:`check_gate` is what the CLI, the HTTP API and the Airflow operator call.  It

1. records any decisions left pending while the store was unreachable (:mod:`.pending`);
2. then, in **one transaction**, follows lineage upstream from each input (one recursive query
   per input, up to :data:`DEPTH` jobs; an input the store has never seen has unknown
   provenance), fetches in one query the governing state of every contract covering any
   dataset on those graphs, decides with the pure :func:`~lineage.gate.decision.evaluate`
   (whose docstring lists the rules in order), runs the compiled GX suites of *every* contract
   covering an input on the data given if the contracts allow the run, and appends the decision to the decision log
   (``gate_decisions``; :func:`record`, read back with :func:`recent`).  The decision is
   returned only once that transaction has committed, so no decision is acted on that the
   log does not hold.

It never raises on a refusal: the returned decision has ``allowed`` False and ``render()``
explains.  It fails closed: if the store cannot be reached, or anything goes wrong while
deciding, validating or recording, the decision is a refusal naming the failure, and that
refusal is logged too: in the store if it can still be reached, otherwise in a pending file
under ``LINEAGE_HOME/gate-pending`` that the next check reaching the store records (once: the
log is idempotent on ``decision_id``).  The SQL lives in :mod:`lineage.store.decisions`.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
import unicodedata
from pathlib import Path
from typing import Any, Mapping, Sequence

import psycopg

from lineage import metrics
from lineage.errors import BadRequest, LineageError, NotFound, StoreUnavailable
from lineage.events.ids import NodeId, node_id, parse_node_id, split_qualified
from lineage.gate import pending
from lineage.gate.decision import Decision, Validation, blocked, evaluate
from lineage.gate.facets import input_facets
from lineage.gate.provenance import Upstream, upstream_of
from lineage.store import decisions as log_sql
from lineage.store.decisions import DecisionRow

log = logging.getLogger("lineage.gate")
DEPTH = 100


def dataset_id(value: str) -> str:
    """``dataset:NS:NAME`` from either that or ``NS:NAME`` (split at the last colon)."""
    full = value if value.startswith("dataset:") else f"dataset:{value}"
    try:
        return str(parse_node_id(full, "inputs"))
    except BadRequest:
        raise BadRequest("inputs", f"`{value}` is not a dataset; expected `dataset:NAMESPACE:NAME` or `NAMESPACE:NAME`") from None


def _node(ds: str) -> NodeId:
    return parse_node_id(ds, "inputs")


def upstreams(conn: psycopg.Connection, inputs: Sequence[str]) -> tuple[dict[str, Upstream | None], dict[str, set[tuple[str, str]]]]:
    """For each input, its :class:`Upstream` (None when the store has never seen it); and, for
    every dataset id on those graphs, the ``(namespace, name)``\ s of the store it can stand for.

    Ids are ``dataset:NS:NAME`` and colons occur in namespaces and names alike, so an id is
    resolved against the store at *every* colon, never by one split: a contract on
    ``partner-drops`` / ``love:photos`` is found, and ``x`` / ``y:z`` beside ``x:y`` / ``z`` (one id
    for two datasets) is seen as *ambiguous*.  Those pairs come with when each dataset was first
    read and first written, store-wide: read-before-written datasets are origins, and a dataset
    the walk left unwritten but the store has a writer for marks where the depth limit cut the
    walk short (see :mod:`lineage.gate.provenance`)."""
    from lineage.store import graph

    out: dict[str, Upstream | None] = {}
    graphs = {}
    for inp in inputs:
        try:
            graphs[inp] = graph.upstream(conn, _node(inp), DEPTH)
        except NotFound:
            out[inp] = None
    ids = {n["id"] for g in graphs.values() for n in g.nodes if n["type"] == "dataset"} | set(inputs)
    found = graph.io_marks(conn, sorted({p for i in ids for p in _readings(i)}))
    pairs: dict[str, set[tuple[str, str]]] = {i: {p for p in _readings(i) if p in found} for i in ids}
    marks = {i: tuple(_earliest(found[p][k] for p in ps) for k in range(3)) for i, ps in pairs.items()}
    for inp, g in graphs.items():
        out[inp] = upstream_of(inp, g.nodes, g.edges, marks)
    return {inp: out[inp] for inp in inputs}, pairs


def _readings(ds: str) -> list[tuple[str, str]]:
    """Every ``(namespace, name)`` that ``dataset:NS:NAME`` may stand for: split at each colon."""
    body = ds[len("dataset:"):]
    return [(body[:k], body[k + 1:]) for k, c in enumerate(body) if c == ":" and 0 < k < len(body) - 1]


def _earliest(times: Any) -> dt.datetime | None:
    return min((t for t in times if t is not None), default=None)


def decide(conn, job: str, purpose: str, inputs: Sequence[str], today: dt.date | None = None) -> tuple[Decision, dict]:
    """The contract-and-lineage part alone; also returns the governing contracts, by dataset id."""
    from lineage.contracts import registry

    ups, pairs = upstreams(conn, inputs)
    found = registry.contracts_for_datasets(conn, {p for ps in pairs.values() for p in ps} | {
        (n.namespace, n.name) for n in map(_node, inputs)})
    by_id: dict[str, list] = {}
    for (ns, name), states in found.items():
        by_id.setdefault(node_id("dataset", ns, name), []).extend(states)
    ambiguous = {i for i, ps in pairs.items() if len(ps) > 1}
    refused = _refused(conn, set(pairs) | set(inputs))
    if refused:
        return blocked(job, purpose, inputs, "lineage_refused",
                       f"the store acknowledged event(s) naming {', '.join(f'`{d}`' for d in refused[:5])}"
                       f"{' and others' if len(refused) > 5 else ''} but could not derive their lineage (derive_refusals); "
                       "the gate decides on complete lineage only, so the run is blocked until they are dealt with"), by_id
    erased = _erased(conn, set(pairs) | set(inputs))
    decision = evaluate(job=job, purpose=purpose, inputs=inputs, upstream=ups, contracts=by_id, today=today,
                        depth=DEPTH, ambiguous=ambiguous, erased=erased)
    return decision, by_id


_REFUSED_DATASETS = """
SELECT DISTINCT ds ->> 'namespace', ds ->> 'name'
FROM derive_refusals d JOIN raw_events r ON r.id = d.raw_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload -> 'inputs') = 'array' THEN r.payload -> 'inputs' ELSE '[]' END
    || CASE WHEN jsonb_typeof(r.payload -> 'outputs') = 'array' THEN r.payload -> 'outputs' ELSE '[]' END
    || CASE WHEN jsonb_typeof(r.payload -> 'dataset') = 'object' THEN jsonb_build_array(r.payload -> 'dataset') ELSE '[]' END
) AS ds
WHERE jsonb_typeof(ds) = 'object'
"""


def _refused(conn, ids: set[str]) -> list[str]:
    """The datasets among ``ids`` that an acknowledged event names whose lineage the store
    could not derive (``derive_refusals``): the graph the gate reads misses that event."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM derive_refusals)").fetchone()[0]:
        return []
    named = {node_id("dataset", ns, name) for ns, name in conn.execute(_REFUSED_DATASETS) if ns and name}
    return sorted(named & ids)


def _erased(conn, ids: set[str]) -> dict[str, str]:
    """Dataset ids (any reading of each, compared under NFC) on an erasure manifest -> which erasure."""
    from lineage.store.erasure import erased_among

    readings = {i: _readings(i) for i in ids}
    found = erased_among(conn, {p for ps in readings.values() for p in ps})
    out = {}
    for i, ps in readings.items():
        hit = next((found[p] for p in ps if p in found), None)
        if hit is not None:
            out[i] = f"erasure #{hit[0]} (of `{hit[1]}`)"
    return out


def validation_plan(decision: Decision, contracts: dict) -> dict[str, dict[str, Any]]:
    """For each input: the contract ids its rows may name (``approved``) and the compiled suites
    of *every* contract covering it (``suites``: ``{"suite", "contract"}``).  What
    :func:`_validations` runs here, and what a worker runs where the data is (``/api/v1/gate``)."""
    from lineage.contracts.compile import compile_terms, suite_name

    plan: dict[str, dict[str, Any]] = {}
    for inp in decision.inputs:
        # Rows may carry the id of any contract that permitted a dataset on this input's upstream.
        approved = sorted({decision.passed_by[s].split("@")[0] for s in decision.checked.get(inp, ()) if s in decision.passed_by})
        suites: list[dict[str, Any]] = []
        node = _node(inp)
        # Every covering contract's suite runs (deny wins for data too): one contract's lax
        # schema must not stand in for another's stricter one on the same dataset.
        for state in contracts.get(inp, ()):
            link = next((d for d in state.terms.datasets if _nfc(d.namespace, d.name) == _nfc(node.namespace, node.name)), None)
            if link and link.schema:
                suites.append({"suite": compile_terms(state.terms, state.sha256)[suite_name(state.id, link.schema)], "contract": state.ref})
        plan[inp] = {"approved": approved, "suites": suites}
    return plan


def _validations(decision: Decision, contracts: dict, data: Mapping[str, Any]) -> list[Validation]:
    from lineage.contracts.compile import PROVENANCE_COLUMN, PROVENANCE_SUITE
    from lineage.gate import runner

    results = []
    for inp, step in validation_plan(decision, contracts).items():
        frame = data.get(inp)
        if frame is None:
            continue
        suites = [(s["suite"], s["contract"]) for s in step["suites"]]
        if not suites and PROVENANCE_COLUMN in _columns(frame):
            suites.append((PROVENANCE_SUITE, None))
        for suite, ref in suites:
            results.append(runner.validate(inp, frame, suite, step["approved"], ref))
    return results


def reported_validations(decision: Decision, contracts: dict, validated: Sequence[str], reported: Sequence[Mapping[str, Any]]) -> list[Validation]:
    """A worker's GX results as :class:`Validation` objects, checked against the plan: every planned
    suite of every input the worker had data for must be reported, or it counts as failed (the
    gate fails closed); a suite counts as passed only if it and every one of its results did."""
    plan = validation_plan(decision, contracts)
    out: list[Validation] = []
    for v in reported:
        results = tuple(_reported_result(r) for r in v.get("results", ()))
        success = v.get("success") is True and all(r.get("success") is True for r in results)
        out.append(Validation(dataset=v["dataset"], suite=v["suite"], contract=v.get("contract"), success=success,
                              results=results, seconds=float(v.get("seconds") or 0.0)))
    for inp in validated:
        for step in plan.get(inp, {}).get("suites", ()):
            name = step["suite"]["name"]
            if not any(v.dataset == inp and v.suite == name for v in out):
                out.append(Validation(dataset=inp, suite=name, contract=step["contract"], success=False, results=(
                    {"type": "suite_not_reported", "success": False, "check": "the worker reported no result for this suite"},)))
    return out


def _reported_result(r: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's per-expectation result in the shape the decision reads: ``success`` strictly
    true or it failed, a named ``type``, a textual ``column`` (a hostile report must block, not
    break the decision with a KeyError)."""
    out = dict(r)
    out["success"] = r.get("success") is True
    out["type"] = r["type"] if isinstance(r.get("type"), str) and r["type"] else "unnamed_expectation"
    if out.get("column") is not None and not isinstance(out["column"], str):
        out["column"] = str(out["column"])
    return out


def _nfc(*parts: str) -> tuple[str, ...]:
    """Names compared as the registry matches them (Unicode normal form C)."""
    return tuple(unicodedata.normalize("NFC", p) for p in parts)


def _columns(data: Any) -> list[str]:
    """Column names of a frame; SQL tables without a contract get no row-level check."""
    cols = getattr(data, "columns", None)
    return list(cols) if cols is not None else []


@metrics.counted_gate  # lineage_gate_decisions_total / lineage_gate_blocks_total
def check_gate(
    db_or_settings: Any,
    job: str,
    purpose: str,
    inputs: Sequence[str],
    data: Mapping[str, Any] | None = None,
    *,
    today: dt.date | None = None,
    connect_timeout: float = 5.0,
    pending_dir: Path | None = None,
    deferred: dict[str, Any] | None = None,
    reported: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None,
) -> Decision:
    """May ``job`` read ``inputs`` for ``purpose``?  See the module docstring; never raises on a refusal.

    ``db_or_settings`` is an open :class:`~lineage.store.db.Database` or the
    :class:`~lineage.config.Settings` to open one with (waiting at most ``connect_timeout``
    seconds for the store; then the run is blocked).  ``data`` maps inputs to pandas frames or
    :class:`~lineage.gate.runner.SqlTable`\\ s to validate.  ``pending_dir`` is where refusals
    are kept while the store is unreachable (default: ``gate-pending`` under the settings'
    home, or under ``LINEAGE_HOME`` when given a database).
    """
    from lineage.store.db import Database

    raw_inputs = list(inputs)
    folder = pending_dir if pending_dir is not None else _default_pending(db_or_settings)
    db: Database | None = None
    owned: Database | None = None
    try:
        if isinstance(db_or_settings, Database):
            db = db_or_settings
        else:
            from lineage.store.db import resolve_url

            settings = db_or_settings
            db = owned = Database(resolve_url(settings), min_size=1, max_size=settings.pool_max_size, timeout=connect_timeout,
                                  prepare_threshold=settings.database_prepare_threshold)
        if folder is not None:
            with db.connection() as conn:
                pending.flush(conn, folder)
        inputs = [dataset_id(i) for i in raw_inputs]
        if not _derived(db, db_or_settings):
            refusal = blocked(job, purpose, raw_inputs, "lineage_pending",
                              "lineage acknowledged before this check is not derived yet (derivation is behind or stopped; "
                              "see /readyz); the gate decides on complete lineage only, so the run is blocked — retry")
            _record_refusal(db, refusal, folder)
            return refusal
        frames = {dataset_id(k): v for k, v in (data or {}).items()}
        with db.connection() as conn:  # one transaction: the decision commits with its log row
            decision, contracts = decide(conn, job, purpose, inputs, today)
            if decision.allowed and frames:
                decision = decision.with_validations(_validations(decision, contracts, frames))
            if decision.allowed and reported is not None:
                validated = [dataset_id(i) for i in reported[0]]
                decision = decision.with_validations(reported_validations(decision, contracts, validated, reported[1]))
            if deferred is not None and decision.allowed:
                deferred["plan"] = validation_plan(decision, contracts)
                return decision  # not final: recorded when the worker reports its validations
            record(conn, decision)
        return decision
    except StoreUnavailable as exc:
        log.error("gate for %s blocked: store unavailable: %s", job, _masked(exc.message, db_or_settings))
        refusal = blocked(job, purpose, raw_inputs, "store_unavailable",
                          _masked(f"the lineage store or contract registry cannot be reached ({exc.message}); "
                                  "the gate fails closed, so the run is blocked", db_or_settings))
        _record_refusal(None, refusal, folder)
        return refusal
    except LineageError as exc:
        refusal = blocked(job, purpose, raw_inputs, "gate_error", _masked(f"{exc.message}; the run is blocked", db_or_settings))
        _record_refusal(db, refusal, folder)
        return refusal
    except Exception as exc:  # fail closed on anything unexpected, naming it
        # The traceback is logged masked too: a driver's error text can quote the password.
        log.error("gate for %s failed:\n%s", job, _masked("".join(traceback.format_exception(exc)), db_or_settings))
        refusal = blocked(job, purpose, raw_inputs, "gate_error",
                          _masked(f"the gate could not decide ({type(exc).__name__}: {exc}); it fails closed, so the run is blocked",
                                  db_or_settings))
        _record_refusal(db, refusal, folder)
        return refusal
    finally:
        if owned is not None:
            owned.close()


def _derived(db: Any, db_or_settings: Any) -> bool:
    """Is every event acknowledged before now derived (waiting up to LINEAGE_READ_WAIT)?"""
    from lineage.store.derive import catch_up

    wait = getattr(db_or_settings, "read_wait", None)
    if wait is None:
        from lineage.config import Settings

        wait = Settings().read_wait
    return catch_up(db, wait)


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


def _default_pending(db_or_settings: Any) -> Path | None:
    home = getattr(db_or_settings, "home", None)
    if home is None:
        try:
            from lineage.config import Settings

            home = Settings().home
        except Exception:  # settings that do not load: no pending file, and the log says so
            log.exception("no LINEAGE_HOME for pending gate decisions")
            return None
    return pending.directory(home)


def _record_refusal(db: Any, decision: Decision, folder: Path | None) -> None:
    """Log a refusal: in the store if ``db`` still answers, else in a pending file; never raises."""
    if db is not None:
        try:
            with db.connection() as conn:
                record(conn, decision)
            return
        except Exception as exc:  # the store is gone (or refuses): keep it for later
            log.warning("could not record refusal %s in the store (%s); keeping it pending", decision.decision_id, type(exc).__name__)
    if folder is None:
        log.error("gate refusal %s could not be recorded anywhere: %s", decision.decision_id, decision.render())
        return
    try:
        path = pending.write(folder, decision_row(decision))
        log.warning("gate refusal %s kept in %s until the store is reachable", decision.decision_id, path)
    except Exception:
        log.exception("gate refusal %s could not be written to %s: %s", decision.decision_id, folder, decision.render())


# -- the decision log ---------------------------------------------------------------------------
def split_job(job: str) -> tuple[str, str]:
    return split_qualified(job, "job")


def decision_row(decision: Decision) -> DecisionRow:
    """The decision as a ``gate_decisions`` row; text PostgreSQL cannot hold (NUL, lone surrogates) is replaced."""
    ns, name = split_job(decision.job)
    d = decision.as_dict()
    row: DecisionRow = {
        "decision_id": decision.decision_id,
        "job_namespace": ns,
        "job_name": name,
        "purpose": decision.purpose,
        "allowed": decision.allowed,
        # `unvalidated`: the log says outright which inputs no suite ran on (a worker that reports
        # `validated: []`, or a check without data), not only by an empty `validations`.
        "inputs": {"inputs": d["inputs"], "sources": d["sources"], "checked": d["checked"], "passedBy": d["passedBy"],
                   "unvalidated": list(decision.unvalidated)},
        "reasons": d["reasons"],
        "contracts": d["contracts"],
        "validations": d["validations"],
        "facets": input_facets(decision),
        "decided_at": decision.decided_at,
    }
    return _storable(row)


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v) for v in value]
    return value


def record(conn: psycopg.Connection, decision: Decision) -> None:
    """Append ``decision`` to the log in the caller's transaction (a no-op if already there)."""
    log_sql.insert(conn, decision_row(decision))


def recent(conn: psycopg.Connection, job: str | None = None, limit: int = 50, as_of: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Stored decisions, newest first, optionally for one job (``NS:NAME``), as logged by ``as_of``."""
    return log_sql.recent(conn, split_job(job) if job else None, limit, as_of)
