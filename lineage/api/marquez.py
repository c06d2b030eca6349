"""Marquez-compatible reads: namespaces, datasets (and versions), jobs, runs, raw events.

Names are taken from the raw (percent-encoded) path, one segment each, so namespaces such as
``postgres://db:5432`` and names such as ``acme/photos`` work when clients encode them, as
``marquez-python`` does.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response

from lineage.api.deps import paging, time_param
from lineage.errors import BadRequest, NotFound
from lineage.store import reads

router = APIRouter(prefix="/api/v1", tags=["marquez"])


@router.get("/namespaces", summary="List namespaces")
def list_namespaces(request: Request, limit: str | None = None, offset: str | None = None) -> dict:
    lim, off = paging(limit, offset)
    with request.app.state.db.connection() as conn:
        return reads.list_namespaces(conn, lim, off)


def _segments(request: Request) -> list[str]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    prefix = "/api/v1/namespaces/"
    return [unquote(s) for s in path[len(prefix):].split("/")]


@router.get("/namespaces/{rest:path}", summary="Namespace, datasets, dataset versions, jobs and runs")
def namespace_tree(request: Request, rest: str, limit: str | None = None, offset: str | None = None) -> dict:
    seg = _segments(request)
    lim, off = paging(limit, offset)
    with request.app.state.db.connection() as conn:
        match seg:
            case [ns]:
                return reads.get_namespace(conn, ns)
            case [ns, "datasets"]:
                return reads.list_datasets(conn, ns, lim, off)
            case [ns, "datasets", name]:
                return reads.get_dataset(conn, ns, name)
            case [ns, "datasets", name, "versions"]:
                return reads.list_dataset_versions(conn, ns, name, lim, off)
            case [ns, "datasets", name, "versions", version]:
                return reads.get_dataset_version(conn, ns, name, version)
            case [ns, "jobs"]:
                return reads.list_jobs(conn, ns, lim, off)
            case [ns, "jobs", name]:
                return reads.get_job(conn, ns, name)
            case [ns, "jobs", name, "runs"]:
                return reads.list_runs(conn, ns, name, lim, off)
    raise NotFound("resource", "/api/v1/namespaces/" + "/".join(seg))


def _run_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest("runId", f"must be a UUID, got `{value}`") from None


@router.get("/jobs/runs/{run_id}", summary="One run")
@router.get("/runs/{run_id}", summary="One run", include_in_schema=False)
def get_run(request: Request, run_id: str) -> dict:
    with request.app.state.db.connection() as conn:
        return reads.get_run(conn, _run_id(run_id))


@router.get("/events/lineage", summary="Raw OpenLineage events, newest first")
@router.get("/events", include_in_schema=False)
def list_events(request: Request, before: str | None = None, after: str | None = None,
                limit: str | None = None, offset: str | None = None, namespace: str | None = None) -> Response:
    lim, off = paging(limit, offset)
    b, a = time_param("before", before), time_param("after", after)
    with request.app.state.db.connection() as conn:
        page = reads.list_events(conn, before=b, after=a, limit=lim, offset=off, namespace=namespace)
    # Events are stored as JSON already: splice them rather than parse and re-serialise.
    body = '{"events":[' + ",".join(page["events_raw"]) + '],"totalCount":' + str(page["totalCount"]) + "}"
    return Response(body, media_type="application/json")
