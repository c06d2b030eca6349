"""The lineage dashboard, served by ``lineage serve`` itself at ``/ui/`` (no second server).

:func:`mount` adds to the API application:

* ``GET /`` — a redirect to ``/ui/`` (a browser opening the server lands on the dashboard);
* ``GET /ui/`` — the single page (``static/index.html``), with a strict Content-Security-Policy:
  scripts, styles and connections from this origin only, no inline script, no plug-ins, no
  framing.  Every name on the pages is put in the DOM as text (``textContent``), never as
  markup; the policy is the second line of defence;
* ``/ui/static/...`` — the built bundle (``app.js``: the page code with sigma.js and graphology,
  bundled by esbuild from ``web/``; ``make dashboard`` rebuilds it) and the stylesheet.
  Nothing is fetched from another origin at run time;
* the JSON routes of :mod:`lineage.dashboard.routes` (``/api/v1/dashboard/...``).

The page and its assets hold no data and need no credential.  Every datum comes from the JSON
API, with the API's own authentication: the page sends the bearer token the user pasted once
(kept in ``sessionStorage``, so it ends with the tab), or nothing, in which case a trusted
proxy's identity header (``LINEAGE_TRUSTED_PROXIES``) authenticates the request as it does for
any API client.  The pages are read-only; they are meant for the ``viewer`` and ``auditor``
roles (the decision log needs ``auditor`` or ``steward``, the erasure manifests
``auditor`` or ``steward``, the record's status ``auditor``, as in the API; a page whose
endpoint answers 403 says which role it needs).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"

#: The page's policy: nothing from another origin, no inline or evaluated script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount(app: FastAPI) -> None:
    """Add the dashboard's page, assets and JSON routes to ``app``."""
    from lineage.dashboard.cache import ResponseCache
    from lineage.dashboard.routes import router

    app.state.dashboard_answers = ResponseCache()  # graph answers by request and store stamp
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(f"{PREFIX}/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")
