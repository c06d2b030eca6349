"""Probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

* ``GET /healthz`` — **liveness**: the process answers HTTP.  It touches no database on
  purpose: a slow or unreachable store must take replicas out of rotation (readiness), not
  get every pod killed and restarted in a loop by the kubelet (liveness).
* ``GET /readyz`` — **readiness**: 200 ``{"status": "ready", "checks": {...}}`` when

  - ``database``: the store answers a query within :data:`READY_TIMEOUT` seconds;
  - ``schema``: the store is at this version's migration head (a positive answer is cached
    for :data:`SCHEMA_CACHE_SECONDS`).  A revision this code does not know is *newer* (the
    migration Job of a rolling upgrade ran first): still ready, said in the detail, so old
    replicas keep serving until the new ones are up (migrations are written to be additive);
  - ``derivation``: the oldest acknowledged event not derived yet is younger than
    ``LINEAGE_MAX_DERIVATION_LAG`` seconds (reads and the gate wait for derivation, so a
    replica whose reads would stall is not ready);
  - ``workers``: only when this process runs derivation threads — they are all alive;

  otherwise 503 ``{"status": "not ready", "failed": [names], "checks": {...}}``.  Each check is
  ``{"status": "ok" | "failed" | "skipped", "detail": "..."}``; details never hold SQL text or
  a password (the store's errors are classified first, then masked).
* ``GET /metrics`` — Prometheus text (:mod:`lineage.metrics`).  Labels carry only fixed values,
  never names or user data, so by default it needs no credential, as scrapers usually have
  none (``LINEAGE_METRICS_PUBLIC=true``); set it to false to require any valid credential.

Probes need no credential and do not wait for derivation (:mod:`lineage.api.freshness`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lineage import metrics
from lineage.errors import LineageError

READY_TIMEOUT = 2.0  # seconds for the store to hand out a connection and answer each statement
SCHEMA_CACHE_SECONDS = 30.0

router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="Liveness: the process answers (no database query)")
def healthz() -> dict:
    """Liveness only.  Deliberately no database query: a slow store must not get pods killed."""
    return {"status": "alive"}


@router.get("/readyz", summary="Readiness: store reachable, schema current, derivation lag under the limit",
            responses={503: {"description": "not ready; `failed` names each failed check"}})
async def readyz(request: Request) -> JSONResponse:
    try:
        # The store's own timeouts bound each step; this bounds the whole, even on a dead network.
        checks = await asyncio.wait_for(run_in_threadpool(readiness, request.app), timeout=READY_TIMEOUT * 2 + 1)
    except asyncio.TimeoutError:
        checks = {"database": _failed(f"no answer within {READY_TIMEOUT * 2 + 1:.0f} s"),
                  "schema": _skipped(), "derivation": _skipped()}
        _workers(request.app, checks)
    failed = [name for name, c in checks.items() if c["status"] == "failed"]
    if any(c["status"] != "ok" for c in checks.values()):  # a skipped check follows a failed one
        return JSONResponse({"status": "not ready", "failed": failed, "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


def readiness(app: FastAPI) -> dict[str, dict[str, str]]:
    """Run every readiness check against ``app``'s store; ``{name: {"status", "detail"}}``."""
    from lineage.store.derive import lag_seconds

    state = app.state
    checks: dict[str, dict[str, str]] = {}
    try:
        with state.db.connection(timeout=READY_TIMEOUT) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {int(READY_TIMEOUT * 1000)}")
            conn.execute("SELECT 1")
            checks["database"] = _ok("reachable")
            checks["schema"] = _schema(state, conn)
            if checks["schema"]["status"] != "ok":
                checks["derivation"] = _skipped("the schema is not current")
            else:
                lag, limit = lag_seconds(conn), state.settings.max_derivation_lag
                checks["derivation"] = (_ok if lag < limit else _failed)(
                    f"oldest underived event {lag:.1f} s old (limit {limit:g} s, LINEAGE_MAX_DERIVATION_LAG)")
    except LineageError as exc:  # classified by lineage.store.db: a fixed text with a SQLSTATE, no SQL
        _store_failure(checks, _masked(exc.message, state.db))
    except Exception as exc:  # anything else: its class only (driver texts can quote statements)
        _store_failure(checks, f"the store could not be queried ({type(exc).__name__})")
    _workers(app, checks)
    return checks


def _store_failure(checks: dict, detail: str) -> None:
    name = next((n for n in ("database", "schema", "derivation") if n not in checks), "derivation")
    checks[name] = _failed(detail)
    for rest in ("database", "schema", "derivation"):
        checks.setdefault(rest, _skipped(f"the {name} check failed"))


def _schema(state: Any, conn) -> dict[str, str]:
    now = time.monotonic()
    if getattr(state, "schema_ready_until", 0.0) > now:
        return _ok(f"at {head()} (checked in the last {SCHEMA_CACHE_SECONDS:g} s)")
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
    at = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()[0] if exists else None
    want = head()
    if at == want:
        state.schema_ready_until = now + SCHEMA_CACHE_SECONDS
        return _ok(f"at {want}")
    if at is not None and at not in known_revisions():
        return _ok(f"at {at}, newer than this version's {want} (a rolling upgrade: ready until replaced)")
    return _failed(f"at revision {at or 'none'}, this version needs {want}: run `lineage db upgrade`")


@functools.lru_cache(maxsize=1)
def head() -> str:
    from lineage.store.migrate import head as migration_head

    return migration_head()


@functools.lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    from lineage.store.migrate import MIGRATIONS

    return frozenset(s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def _workers(app: FastAPI, checks: dict) -> None:
    """The in-process derivation threads (``LINEAGE_DERIVE_WORKERS`` > 0), when there are any."""
    workers = getattr(app.state, "derivers", None)
    if workers is None:
        return
    from lineage.store.derive_cli import workers_healthy

    ok, detail = workers_healthy(workers)
    checks["workers"] = (_ok if ok else _failed)(detail)


def _ok(detail: str) -> dict[str, str]:
    return {"status": "ok", "detail": detail}


def _failed(detail: str) -> dict[str, str]:
    return {"status": "failed", "detail": detail}


def _skipped(why: str = "the database check failed") -> dict[str, str]:
    return {"status": "skipped", "detail": f"not checked: {why}"}


def _masked(text: str, db: Any) -> str:
    from lineage.config import redact_text

    url = getattr(db, "url", None)
    return redact_text(text, url if isinstance(url, str) else None)


def _metrics(request: Request) -> Response:
    body, kind = metrics.exposition(request.app.state.db)
    return Response(content=body, media_type=kind)


def install(app: FastAPI, settings: Any) -> None:
    """Add the probes, ``/metrics`` (public or behind any credential, per
    ``LINEAGE_METRICS_PUBLIC``) and the ingest latency timer to ``app``."""
    from lineage.api.security import require

    app.include_router(router)
    deps = [] if settings.metrics_public else [Depends(require())]
    app.add_api_route("/metrics", _metrics, methods=["GET"], tags=["meta"], dependencies=deps,
                      summary="Prometheus metrics (fixed labels only; see LINEAGE_METRICS_PUBLIC)",
                      response_class=Response)
    app.add_middleware(metrics.IngestTimer)
