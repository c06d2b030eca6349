"""Response models of the read API, so the OpenAPI document shows every shape.

They follow Marquez's component schemas (``Namespace``, ``Dataset``, ``DatasetVersion``,
``Job``, ``Run``, ``LineageGraph``) with the fields this server fills.  Times are strings in
the one format of :func:`lineage.times.iso` (declared ``format: date-time``), not
``datetime``, so the serialiser cannot change their form.  Every model allows extra keys:
a field added in the store reaches clients even before it is modelled here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-26T10:00:00.123456Z"])]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Namespace(_Model):
    name: str
    createdAt: Time
    updatedAt: Time
    ownerName: str
    description: str | None = None
    isHidden: bool = False


class NamespaceList(_Model):
    namespaces: list[Namespace]
    totalCount: int = Field(description="How many namespaces there are, whatever the page.")


class DatasetId(_Model):
    namespace: str
    name: str


class DatasetVersionId(_Model):
    namespace: str
    name: str
    version: str


class SchemaField(_Model):
    name: str
    type: str | None = None
    tags: list[str] = []
    description: str | None = None


class Dataset(_Model):
    id: DatasetId
    type: str
    name: str
    physicalName: str
    createdAt: Time
    updatedAt: Time
    namespace: str
    sourceName: str
    fields: list[SchemaField]
    tags: list[str]
    lastModifiedAt: Time = None
    description: str | None = None
    currentVersion: str | None = Field(None, description="The dataset's latest version (see DatasetVersion.version).")
    facets: dict[str, Any] = {}
    deleted: bool = False


class DatasetList(_Model):
    datasets: list[Dataset]
    totalCount: int


class RunRef(_Model):
    id: str


class DatasetVersion(_Model):
    id: DatasetVersionId
    type: str
    name: str
    physicalName: str
    createdAt: Time
    version: str
    namespace: str
    sourceName: str
    fields: list[SchemaField]
    tags: list[str]
    description: str | None = None
    createdByRun: RunRef | None = None
    facets: dict[str, Any] = {}


_KEYSET = {
    "totalCountExact": "false when totalCount is the planner's estimate (more than 10,000 matching).",
    "nextCursor": "Pass as `cursor` for the next page; null on the last page.",
}


class DatasetVersionList(_Model):
    versions: list[DatasetVersion]
    totalCount: int
    totalCountExact: bool = Field(description=_KEYSET["totalCountExact"])
    nextCursor: str | None = Field(description=_KEYSET["nextCursor"])


class DatasetVersionRef(_Model):
    datasetVersionId: DatasetVersionId
    facets: dict[str, Any] = {}


class Run(_Model):
    id: str
    createdAt: Time
    updatedAt: Time
    nominalStartTime: Time = None
    nominalEndTime: Time = None
    state: Literal["NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"]
    startedAt: Time = None
    endedAt: Time = None
    durationMs: int | None = None
    parentRunId: str | None = None
    args: dict[str, Any] = {}
    facets: dict[str, Any] = {}


class RunDetail(Run):
    inputDatasetVersions: list[DatasetVersionRef] = []
    outputDatasetVersions: list[DatasetVersionRef] = []


class RunList(_Model):
    runs: list[Run]
    totalCount: int
    totalCountExact: bool = Field(description=_KEYSET["totalCountExact"])
    nextCursor: str | None = Field(description=_KEYSET["nextCursor"])


class Job(_Model):
    id: DatasetId
    type: Literal["BATCH", "STREAM", "SERVICE"]
    name: str
    simpleName: str
    parentJobName: str | None = None
    createdAt: Time
    updatedAt: Time
    namespace: str
    inputs: list[DatasetId]
    outputs: list[DatasetId]
    location: str | None = None
    description: str | None = None
    latestRun: Run | None = None
    facets: dict[str, Any] = {}


class JobList(_Model):
    jobs: list[Job]
    totalCount: int


class LineageEventList(_Model):
    events: list[dict[str, Any]] = Field(description="OpenLineage events as stored.")
    totalCount: int
    totalCountExact: bool = Field(description=_KEYSET["totalCountExact"])
    nextCursor: str | None = Field(description=_KEYSET["nextCursor"])


class Edge(_Model):
    origin: str
    destination: str


class GraphNode(_Model):
    id: str
    type: Literal["DATASET", "JOB"]
    data: dict[str, Any]
    inEdges: list[Edge]
    outEdges: list[Edge]


class LineageGraph(_Model):
    graph: list[GraphNode]


class WalkNode(_Model):
    id: str
    type: Literal["dataset", "job"]
    namespace: str
    name: str


class Walk(_Model):
    nodes: list[WalkNode]
    edges: list[Edge]
