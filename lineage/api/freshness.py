"""Read your writes: every request but ingest and the probes first waits for derivation.

Ingest acknowledges an event before its graph is derived (:mod:`lineage.store.derive`).  So
that a client which sent events and then asks about them sees them — Marquez's behaviour, and
what the gate needs to fail closed — every other request first waits until each event
acknowledged before it arrived is derived, deriving pending work itself beside the workers.
The wait is bounded by ``LINEAGE_READ_WAIT`` (default 5 s); a request answered before it
caught up carries ``X-Lineage-Derivation-Lag`` (seconds) so a client can tell.  The gate does
not rely on this header: it checks for itself and blocks (:mod:`lineage.gate.service`).

A route that *records* something computed from the graph calls :func:`refuse_if_behind` once
its caller is authorised: 503 with ``Retry-After`` when the wait ran out, never an answer from
part of the graph.  The erasure manifest does: written from a graph still missing a training
run's events it would miss that model, and be complete once its (too few) items are deleted.

When nothing is queued the wait is one indexed ``max(id)`` on an empty table.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from lineage.errors import LineageError, StoreUnavailable

log = logging.getLogger("lineage.api.freshness")

_INGEST = ("/api/v1/lineage", "/api/v1/lineage/batch")


def _waits(scope) -> bool:
    """Every API request waits but ingest and the liveness route (probes, metrics and the
    dashboard's static files are outside /api/)."""
    if scope["type"] != "http":
        return False
    path = route_path(scope)
    if scope["method"] == "POST" and path in _INGEST:
        return False
    return path.startswith("/api/") and path != "/api/v1/health"


def route_path(scope) -> str:
    """The path the routes see: without the prefix the app is served under (``root_path``,
    e.g. uvicorn ``--root-path``), which ASGI servers now include in ``path``.  Comparing the
    raw path would let every read under a prefix skip the wait (and the erasure its refusal)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


class ReadAfterWrite:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if not _waits(scope):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        caught_up = True
        try:
            from lineage.store.derive import catch_up

            caught_up = await run_in_threadpool(catch_up, state.db, state.settings.read_wait)
        except LineageError as exc:  # the store is unreachable: the request itself will say so
            log.debug("read-after-write wait skipped: %s", exc.message)
        except Exception:  # noqa: BLE001 - deriving failed unexpectedly: answer, saying it may be behind (never a 500)
            log.exception("read-after-write wait failed; answering with the derivation lag")
            caught_up = False
        if caught_up:
            await self.app(scope, receive, send)
            return

        lag = await run_in_threadpool(_lag, state.db)
        scope.setdefault("state", {})[_LAG] = lag  # for refuse_if_behind

        async def send_with_lag(message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [(b"x-lineage-derivation-lag", f"{lag:.3f}".encode())]
            await send(message)

        await self.app(scope, receive, send_with_lag)


_LAG = "lineage_derivation_lag"


def refuse_if_behind(request) -> None:
    """503 (retry) if this request's wait for derivation ran out: for routes whose answer is
    recorded, so must not be computed from part of the graph."""
    lag = getattr(request.state, _LAG, None)
    if lag is not None:
        raise StoreUnavailable(
            f"lineage acknowledged before this request is not derived yet (oldest underived event {lag:.1f} s old; "
            "derivation is behind or stopped, see /readyz): this request records what the graph holds, so it is "
            "refused rather than answered from part of it; retry")


def _lag(db) -> float:
    from lineage.store.derive import lag_seconds

    try:
        with db.connection() as conn:
            return lag_seconds(conn)
    except LineageError:
        return -1.0
