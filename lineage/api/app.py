"""The FastAPI application: routers, error mapping, store lifecycle.

:func:`create_app` takes settings (and optionally an open :class:`Database`, which tests pass);
otherwise the app opens the store on start-up, applying migrations, and closes it on exit.
Every deliberate error becomes ``{"code": N, "message": "..."}`` with its status; a request
that fails validation names the field (``errors: [{"field", "reason"}]`` on every 400); a
database failure is classified in :mod:`lineage.store.db` (503 with ``Retry-After`` when
unreachable or busy, 400 when it refused a value); an unexpected error is a 500 without a
stack trace or SQL text.

Every route but health, the probes (:mod:`lineage.api.probes`), ``/openapi.json`` and ``/docs`` needs a credential
(:mod:`lineage.api.security` holds the decisions); a refused credential is a 401 with
``WWW-Authenticate: Bearer``, a missing role a 403 naming it.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from lineage import __version__, metrics
from lineage.config import Settings
from lineage.auth.errors import OutOfScope, Unauthenticated
from lineage.errors import BadRequest, InvalidEvent, LineageError, PayloadTooLarge, StoreUnavailable
from lineage.store.db import Database, open_database

log = logging.getLogger("lineage.api")


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = db is None
        app.state.db = db if db is not None else open_database(settings, migrate=True)
        from lineage.audit.service import background

        app.state.ledger = background(settings, app.state.db)  # seals the ledger (and checkpoints, if scheduled)
        from lineage.store.derive import Workers
        from lineage.store.group_commit import GroupCommitter

        app.state.committer = GroupCommitter(app.state.db)
        app.state.derivers = Workers(app.state.db, settings.derive_workers) if settings.derive_workers else None
        try:
            yield
        finally:
            app.state.committer.close()
            if app.state.derivers is not None:
                app.state.derivers.stop()
            app.state.ledger.stop()
            if owned:
                app.state.db.close()

    app = FastAPI(
        title="lineage",
        version=__version__,
        description="OpenLineage event store with source contracts and a consent gate for ML training.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    from lineage.api.freshness import ReadAfterWrite

    app.add_middleware(ReadAfterWrite)  # a read sees every event acknowledged before it (derivation watermark)
    from lineage.api.fast_ingest import FastIngest

    app.add_middleware(FastIngest)  # POST /api/v1/lineage's success case without the framework's layers
    if db is not None:
        app.state.db = db
    from lineage.auth.authenticate import Authenticator

    app.state.authenticator = Authenticator(settings)  # reads the OIDC key file now: a bad one stops start-up
    if settings.anonymous_viewer:
        # Explicit opt-in, but say it where operators look: anyone who reaches the port reads all lineage.
        log.warning("LINEAGE_ANONYMOUS_VIEWER is on: requests without a credential READ every lineage, contract and "
                    "Marquez route as `viewer` (GET only; writes still need a credential). Bind to loopback or put "
                    "an authenticating proxy in front unless everyone who can reach this port may read.")

    from lineage.api import auth, contracts, governance, marquez, marquez_more, marquez_writes
    from lineage.api import lineage as lineage_routes

    app.include_router(auth.router)
    app.include_router(lineage_routes.router)
    app.include_router(marquez.router)
    app.include_router(marquez_more.router)
    app.include_router(marquez_more.v2_router)
    app.include_router(marquez_writes.router)
    app.include_router(contracts.router)
    app.include_router(contracts.gate_router)
    app.include_router(governance.router)
    from lineage.api import erasure as erasure_routes
    app.include_router(erasure_routes.router)

    from lineage.dashboard import mount as mount_dashboard

    mount_dashboard(app)  # the dashboard at /ui/ (its page and assets need no credential; its data does)
    from lineage.api import audit

    app.include_router(audit.router)
    from lineage.api import probes

    probes.install(app, settings)  # /healthz, /readyz, /metrics and the ingest latency timer

    @app.get("/api/v1/health", tags=["meta"], summary="Liveness: answers without a credential")
    def health() -> dict:
        with app.state.db.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok", "version": __version__}

    @app.exception_handler(LineageError)
    async def lineage_error(request: Request, exc: LineageError) -> JSONResponse:
        metrics.ingest_refused(request.method, request.url.path, exc)  # counted by fixed reason (no-op off ingest)
        body: dict = {"code": exc.status, "message": exc.message}
        if isinstance(exc, InvalidEvent):
            body["errors"] = [p.as_dict() for p in exc.problems]
        elif isinstance(exc, BadRequest):
            body["errors"] = [{"field": exc.field, "reason": exc.reason}]
        elif isinstance(exc, PayloadTooLarge):
            body["errors"] = [{"field": exc.field, "reason": exc.message}]
        elif isinstance(exc, OutOfScope):
            body["errors"] = [{"field": exc.field, "reason": exc.reason}]
        headers = {}
        if isinstance(exc, StoreUnavailable):
            headers["Retry-After"] = "1"
        if isinstance(exc, Unauthenticated):
            # RFC 6750: name the scheme; say `invalid_token` when a credential was presented.
            presented = "authorization" in request.headers
            headers["WWW-Authenticate"] = 'Bearer realm="lineage"' + (', error="invalid_token"' if presented else "")
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        # The client went away mid-body: nobody reads this answer, and it is not our failure.
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"field": "$", "reason": "invalid request"}
        return JSONResponse({"code": 400, "message": f"{first['field']}: {first['reason']}", "errors": errors}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes and methods answer in the same {"code","message"} shape as the rest.
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse({"code": exc.status_code, "message": f"{message}: {request.method} {request.url.path}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        metrics.ingest_refused(request.method, request.url.path, exc)
        return JSONResponse({"code": 500, "message": "internal error; see the server log"}, status_code=500)

    return app
