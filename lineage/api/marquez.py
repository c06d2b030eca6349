"""Marquez-compatible reads: namespaces, datasets (and versions), jobs, runs, raw events.

One typed route per resource, as Marquez's ``openapi.yml`` lists them; shapes, paging and
counts are described in :mod:`lineage.store.reads`.

Names with slashes.  Namespaces (``s3://bucket``) and names (``acme/photos``) may contain
``/``; Marquez clients (``marquez-python``, the web UI) percent-encode it as ``%2F``.
Starlette decodes the path before routing, which would turn one segment into two.  So the
routes of this router (and only these) are :class:`EncodedPathRoute`: they match on the
path *as sent* (``raw_path``), one segment per parameter, and percent-decode each parameter
afterwards.  A name may therefore hold ``/``, ``:``, ``%`` or any other character, as long
as the client encodes it; NUL, and percent bytes that are not UTF-8 (``%FF``), are refused
with a 400 naming the parameter.

Paging: ``limit``/``offset`` everywhere; lists that grow with events (runs, dataset versions,
raw events) also take ``cursor`` (the previous page's ``nextCursor``) and page by key.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from lineage.api import models
from lineage.api.deps import CursorParam, Page, Text, UtcTime, paging, utf8_query
from lineage.api.security import READ, require
from lineage.store import reads


class EncodedPathRoute(APIRoute):
    """A route matched against the percent-encoded path, its parameters decoded after matching."""

    def matches(self, scope):  # type: ignore[no-untyped-def]
        raw = scope.get("raw_path")
        if scope.get("type") != "http" or not raw:
            return super().matches(scope)
        encoded = raw.decode("latin-1").split("?", 1)[0]
        match, child = super().matches({**scope, "path": encoded})
        if match is not Match.NONE:
            child["path_params"] = {
                # surrogateescape, not the default replacement: `%FF` must not become U+FFFD
                # and answer for a name really spelt "\ufffd"; the Text validator refuses it.
                k: unquote(v, errors="surrogateescape") if k in self.param_convertors and isinstance(v, str) else v
                for k, v in child["path_params"].items()
            }
        return match, child


router = APIRouter(prefix="/api/v1", tags=["marquez"], route_class=EncodedPathRoute,
                   dependencies=[Depends(require(*READ)), Depends(utf8_query)])

Namespace = Annotated[Text, Path(description="The namespace, percent-encoded (`s3%3A%2F%2Fbucket`).")]
DatasetName = Annotated[Text, Path(description="The dataset name, percent-encoded (`acme%2Fphotos`).")]
JobName = Annotated[Text, Path(description="The job name, percent-encoded.")]
Version = Annotated[Text, Path(description="A dataset version (`id.version` of a DatasetVersion).")]
Paging = Annotated[Page, Depends(paging)]


def _conn(request: Request):
    return request.app.state.db.connection()


@router.get("/namespaces", summary="List namespaces", response_model=models.NamespaceList)
def list_namespaces(request: Request, page: Paging) -> dict:
    with _conn(request) as conn:
        return reads.list_namespaces(conn, page.limit, page.offset)


@router.get("/namespaces/{namespace}", summary="One namespace", response_model=models.Namespace)
def get_namespace(request: Request, namespace: Namespace) -> dict:
    with _conn(request) as conn:
        return reads.get_namespace(conn, namespace)


@router.get("/namespaces/{namespace}/datasets", summary="List a namespace's datasets", response_model=models.DatasetList)
def list_datasets(request: Request, namespace: Namespace, page: Paging) -> dict:
    with _conn(request) as conn:
        return reads.list_datasets(conn, namespace, page.limit, page.offset)


@router.get("/namespaces/{namespace}/datasets/{dataset}", summary="One dataset", response_model=models.Dataset)
def get_dataset(request: Request, namespace: Namespace, dataset: DatasetName) -> dict:
    with _conn(request) as conn:
        return reads.get_dataset(conn, namespace, dataset)


@router.get("/namespaces/{namespace}/datasets/{dataset}/versions", summary="A dataset's versions, newest first",
            response_model=models.DatasetVersionList)
def list_dataset_versions(request: Request, namespace: Namespace, dataset: DatasetName, page: Paging,
                          cursor: CursorParam = None) -> dict:
    with _conn(request) as conn:
        return reads.list_dataset_versions(conn, namespace, dataset, page.limit, page.offset, cursor)


@router.get("/namespaces/{namespace}/datasets/{dataset}/versions/{version}", summary="One dataset version",
            response_model=models.DatasetVersion)
def get_dataset_version(request: Request, namespace: Namespace, dataset: DatasetName, version: Version) -> dict:
    with _conn(request) as conn:
        return reads.get_dataset_version(conn, namespace, dataset, version)


@router.get("/namespaces/{namespace}/jobs", summary="List a namespace's jobs", response_model=models.JobList)
def list_jobs(request: Request, namespace: Namespace, page: Paging) -> dict:
    with _conn(request) as conn:
        return reads.list_jobs(conn, namespace, page.limit, page.offset)


RunStates = Annotated[list[Text] | None, Query(description="Only jobs whose latest run is in one of these states "
                                                           "(NEW, RUNNING, COMPLETED, FAILED, ABORTED; repeat or comma-separate).")]


@router.get("/jobs", summary="Every namespace's jobs, latest updated first", response_model=models.JobList)
def list_all_jobs(request: Request, page: Paging, runState: RunStates = None, lastRunStates: RunStates = None) -> dict:
    states = reads.marquez_run_states((runState or []) + (lastRunStates or []))
    with _conn(request) as conn:
        return reads.list_jobs(conn, None, page.limit, page.offset, states)


@router.get("/namespaces/{namespace}/jobs/{job}", summary="One job", response_model=models.Job)
def get_job(request: Request, namespace: Namespace, job: JobName) -> dict:
    with _conn(request) as conn:
        return reads.get_job(conn, namespace, job)


@router.get("/namespaces/{namespace}/jobs/{job}/runs", summary="A job's runs, newest first", response_model=models.RunList)
def list_runs(request: Request, namespace: Namespace, job: JobName, page: Paging, cursor: CursorParam = None) -> dict:
    with _conn(request) as conn:
        return reads.list_runs(conn, namespace, job, page.limit, page.offset, cursor)


RunId = Annotated[uuid.UUID, Path(alias="id", description="The run's UUID.")]


@router.get("/jobs/runs/{id}", summary="One run, with the dataset versions it read and wrote", response_model=models.RunDetail)
@router.get("/runs/{id}", summary="One run", response_model=models.RunDetail, include_in_schema=False)
def get_run(request: Request, run_id: RunId) -> dict:
    with _conn(request) as conn:
        return reads.get_run(conn, run_id)


@router.get("/events/lineage", summary="Raw OpenLineage events, newest first",
            response_class=Response, responses={200: {"model": models.LineageEventList, "content": {"application/json": {}}}})
@router.get("/events", include_in_schema=False, response_class=Response)
def list_events(
    request: Request,
    page: Paging,
    before: Annotated[UtcTime | None, Query(description="Only events at or before this eventTime.")] = None,
    after: Annotated[UtcTime | None, Query(description="Only events at or after this eventTime.")] = None,
    namespace: Annotated[Text | None, Query(description="Only events of jobs in this namespace.")] = None,
    sortDirection: Annotated[Literal["asc", "desc"], Query(description="Order by eventTime.")] = "desc",
    cursor: CursorParam = None,
) -> Response:
    with _conn(request) as conn:
        result = reads.list_events(conn, before=before, after=after, limit=page.limit, offset=page.offset,
                                   namespace=namespace, cursor=cursor, ascending=sortDirection == "asc")
    # Events are stored as JSON already: splice them rather than parse and re-serialise.
    body = (
        '{"events":[' + ",".join(result["events_raw"]) + '],"totalCount":' + str(result["totalCount"])
        + ',"totalCountExact":' + json.dumps(result["totalCountExact"]) + ',"nextCursor":' + json.dumps(result["nextCursor"]) + "}"
    )
    return Response(body, media_type="application/json")
