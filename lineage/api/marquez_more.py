"""More Marquez-compatible reads: tags, sources, run facets, stats, column lineage and search.

The rest of what the Marquez web UI asks for, beside :mod:`lineage.api.marquez` (whose
:class:`~lineage.api.marquez.EncodedPathRoute` these routes use too, so names with ``/``
arrive percent-encoded as one segment).  Shapes are described in
:mod:`lineage.store.marquez_reads`, :mod:`lineage.store.column_lineage`,
:mod:`lineage.store.search` and :mod:`lineage.store.tags`.  Every route here reads, with the
read roles.  ``/api/v2beta/search/*`` is Marquez's OpenSearch-backed search, answered from
the same indexes as ``/api/v1/search``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from lineage.api.deps import Page, Text, paging, utf8_query
from lineage.api.marquez import EncodedPathRoute
from lineage.api.security import READ, require
from lineage.api.models import _Model
from lineage.store import column_lineage, marquez_reads, search, tags

router = APIRouter(prefix="/api/v1", tags=["marquez"], route_class=EncodedPathRoute,
                   dependencies=[Depends(require(*READ)), Depends(utf8_query)])
v2_router = APIRouter(prefix="/api/v2beta", tags=["marquez"], route_class=EncodedPathRoute,
                      dependencies=[Depends(require(*READ)), Depends(utf8_query)])
Paging = Annotated[Page, Depends(paging)]


def _conn(request: Request):
    return request.app.state.db.connection()


class Tag(_Model):
    name: str
    description: str | None = None


class TagList(_Model):
    tags: list[Tag]
    totalCount: int


class Source(_Model):
    type: str
    name: str
    createdAt: str | None
    updatedAt: str | None
    connectionUrl: str
    description: str | None = None


class SourceList(_Model):
    sources: list[Source]
    totalCount: int


class FacetsResult(_Model):
    runId: str
    facets: dict[str, Any]


class SearchResult(_Model):
    type: Literal["DATASET", "JOB"]
    name: str
    updatedAt: str | None
    namespace: str
    nodeId: str


class SearchResultList(_Model):
    totalCount: int
    totalCountExact: bool
    results: list[SearchResult]


class ColumnNode(_Model):
    id: str
    type: Literal["DATASET_FIELD"]
    data: dict[str, Any]
    inEdges: list[dict[str, str]]
    outEdges: list[dict[str, str]]


class ColumnLineageGraph(_Model):
    graph: list[ColumnNode]


@router.get("/tags", summary="Every defined tag", response_model=TagList)
def list_tags(request: Request, page: Paging) -> dict:
    with _conn(request) as conn:
        return tags.list_tags(conn, page.limit, page.offset)


@router.get("/sources", summary="Data sources (the datasets' source names)", response_model=SourceList)
def list_sources(request: Request, page: Paging) -> dict:
    with _conn(request) as conn:
        return marquez_reads.list_sources(conn, page.limit, page.offset)


@router.get("/sources/{source}", summary="One data source", response_model=Source)
def get_source(request: Request, source: Annotated[Text, Path(description="The source name, percent-encoded.")]) -> dict:
    with _conn(request) as conn:
        return marquez_reads.get_source(conn, source)


@router.get("/jobs/runs/{id}/facets", summary="A run's run or job facets, merged over its events", response_model=FacetsResult)
def get_run_facets(request: Request, run_id: Annotated[uuid.UUID, Path(alias="id")],
                   type: Annotated[Literal["run", "job"], Query(description="`run` or `job` facets.")]) -> dict:
    with _conn(request) as conn:
        return marquez_reads.run_facets(conn, run_id, type)


Period = Annotated[Literal["DAY", "WEEK"], Query(description="DAY: 24 hourly buckets; WEEK: 7 daily buckets.")]
Zone = Annotated[Text, Query(max_length=64, description="IANA time zone of the buckets, e.g. `Europe/Paris`.")]


@router.get("/stats/lineage-events", summary="Events per bucket by type (the Marquez home page)")
def stats_events(request: Request, period: Period = "DAY", timezone: Zone = "UTC") -> list[dict]:
    with _conn(request) as conn:
        return marquez_reads.lineage_event_stats(conn, period, timezone)


@router.get("/stats/{what}", summary="New jobs, datasets or sources per bucket")
def stats_counts(request: Request, what: Literal["jobs", "datasets", "sources"], period: Period = "DAY",
                 timezone: Zone = "UTC") -> list[dict]:
    with _conn(request) as conn:
        return marquez_reads.interval_stats(conn, what, period, timezone)


@router.get("/column-lineage", summary="Column lineage around a dataset, a field or a job", response_model=ColumnLineageGraph)
def get_column_lineage(
    request: Request,
    nodeId: Annotated[Text, Query(description="`dataset:NS:NAME`, `datasetField:NS:NAME:FIELD` or `job:NS:NAME`.")],
    depth: Annotated[int, Query(ge=0, le=100, description="How many field hops to walk.")] = 20,
    withDownstream: Annotated[bool, Query(description="Also walk downstream.")] = False,
) -> dict:
    with _conn(request) as conn:
        return column_lineage.column_lineage_graph(conn, nodeId, depth, withDownstream)


Q = Annotated[Text, Query(min_length=1, max_length=1024, description="A name pattern (`%` any run, `_` one character).")]


@router.get("/search", summary="Datasets and jobs by name, ranked", response_model=SearchResultList)
def search_v1(
    request: Request,
    q: Q,
    filter: Annotated[Literal["dataset", "job", "DATASET", "JOB"] | None, Query(description="Only datasets or jobs.")] = None,
    sort: Annotated[Literal["name", "updated_at", "NAME", "UPDATED_AT"] | None,
                    Query(description="Default: relevance (whole name, then prefix, then contains).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    namespace: Annotated[Text | None, Query(max_length=1024)] = None,
    before: Annotated[date | None, Query(description="Updated before this day (YYYY-MM-DD, UTC).")] = None,
    after: Annotated[date | None, Query(description="Updated on or after this day (YYYY-MM-DD, UTC).")] = None,
) -> dict:
    kinds = [filter.upper()] if filter else ["DATASET", "JOB"]
    with _conn(request) as conn:
        return search.search(conn, q, kinds=kinds, sort=sort.lower() if sort else None, limit=limit, offset=offset,
                             namespace=namespace, before=before, after=after)


@v2_router.get("/search/jobs", summary="Jobs by name (Marquez's OpenSearch shape)")
def search_jobs_v2(request: Request, q: Q, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    with _conn(request) as conn:
        return search.search_v2(conn, q, "JOB", limit)


@v2_router.get("/search/datasets", summary="Datasets by name (Marquez's OpenSearch shape)")
def search_datasets_v2(request: Request, q: Q, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    with _conn(request) as conn:
        return search.search_v2(conn, q, "DATASET", limit)
