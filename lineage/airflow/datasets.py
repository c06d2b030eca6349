"""Datasets as OpenLineage input and output datasets with their facets: any team's, any namespace.

An operator knows *which* datasets it reads and writes before it runs (a :class:`DatasetSpec`:
namespace, name, and where its file is) and learns *what* they contain while it runs (an
:class:`Observation`: columns, content version, row count, size).  :func:`input_dataset` and
:func:`output_dataset` combine the two into ``openlineage.client.event_v2`` datasets carrying:

* ``schema`` — column names and types (from the observation);
* ``dataSource`` — the namespace and a URI (``source_uri``, else the file's directory);
* ``version`` (datasetVersion) — a content hash, so the same bytes give the same version;
* ``ownership`` — the owners given;
* ``documentation`` — the description given;
* ``contract`` — the source contract that governs it (:class:`~lineage.airflow.facets.ContractDatasetFacet`);
* on outputs, ``outputStatistics`` — rows and bytes written.

On START an operator has no observation yet for what it will write; facets that need one are
simply left out.  Nothing here does I/O except :func:`observe_file`, which hashes a file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    output_statistics_output_dataset,
    ownership_dataset,
    schema_dataset,
)

from lineage import PRODUCER
from lineage.airflow.facets import ContractDatasetFacet, ContractGateRunFacet, contract_facet
from lineage.events.ids import node_id

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ContractDatasetFacet", "ContractGateRunFacet", "DatasetSpec", "Observation", "contract_facet",
           "input_dataset", "observe_file", "output_dataset"]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its OpenLineage identity (``namespace``, ``name``) and, for a file, its ``path``."""

    namespace: str
    name: str
    path: str | os.PathLike | None = None
    description: str = ""
    owners: tuple[str, ...] = ()  # e.g. ("team:ml-platform",): the part before ":" is the owner type
    contract_id: str | None = None
    source_uri: str | None = None  # the dataSource facet's URI; default: the file's directory

    @property
    def id(self) -> str:
        """``namespace:name``, the form the gate and the CLI take."""
        return f"{self.namespace}:{self.name}"

    @property
    def node_id(self) -> str:
        return node_id("dataset", self.namespace, self.name)

    @property
    def asset_uri(self) -> str:
        """URI of an Airflow Asset that can stand for this dataset in DAG scheduling."""
        return f"lineage://{self.namespace}/{self.name}"

    def file(self) -> Path:
        if self.path is None:
            raise ValueError(f"dataset {self.id} has no path: give DatasetSpec(..., path=...) to observe its file")
        return Path(self.path)

    def at(self, path: str | os.PathLike) -> "DatasetSpec":
        return replace(self, path=path)


@dataclass(frozen=True)
class Observation:
    """What an operator saw of a dataset while it ran."""

    version: str
    columns: tuple[tuple[str, str], ...] = ()
    rows: int | None = None
    size: int | None = None


def file_version(path: Path) -> str:
    """A content version: the first 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def observe_file(path: Path, frame: "pd.DataFrame | None" = None) -> Observation:
    """Observe a written or read file; with ``frame``, also its columns and row count."""
    columns: tuple[tuple[str, str], ...] = ()
    rows = None
    if frame is not None:
        columns = tuple((str(c), _ol_type(str(t))) for c, t in frame.dtypes.items())
        rows = int(len(frame))
    return Observation(version=file_version(path), columns=columns, rows=rows, size=path.stat().st_size)


def _ol_type(dtype: str) -> str:
    if dtype.startswith(("int", "Int")):
        return "integer"
    if dtype.startswith(("float", "Float")):
        return "double"
    if dtype in ("bool", "boolean"):
        return "boolean"
    if dtype.startswith("datetime"):
        return "timestamp"
    return "string"


def _facets(spec: DatasetSpec, seen: Observation | None, contracts: dict[str, dict] | None) -> dict:
    facets: dict = {}
    uri = spec.source_uri or (spec.file().resolve().parent.as_uri() if spec.path is not None else None)
    if uri:
        facets["dataSource"] = datasource_dataset.DatasourceDatasetFacet(name=spec.namespace, uri=uri, producer=PRODUCER)
    if spec.owners:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=o, type=o.split(":", 1)[0] if ":" in o else None) for o in spec.owners],
            producer=PRODUCER,
        )
    if spec.description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(description=spec.description, producer=PRODUCER)
    if spec.contract_id:
        summary = (contracts or {}).get(spec.contract_id) or {"id": spec.contract_id}
        facets.update(contract_facet(summary))
    if seen is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=seen.version, producer=PRODUCER)
        if seen.columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in seen.columns], producer=PRODUCER
            )
    return facets


def input_dataset(spec: DatasetSpec, seen: Observation | None = None, contracts: dict[str, dict] | None = None) -> InputDataset:
    return InputDataset(namespace=spec.namespace, name=spec.name, facets=_facets(spec, seen, contracts))


def output_dataset(spec: DatasetSpec, seen: Observation | None = None, contracts: dict[str, dict] | None = None) -> OutputDataset:
    output_facets = {}
    if seen is not None and (seen.rows is not None or seen.size is not None):
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=seen.rows, size=seen.size, producer=PRODUCER
        )
    return OutputDataset(namespace=spec.namespace, name=spec.name, facets=_facets(spec, seen, contracts), outputFacets=output_facets)
