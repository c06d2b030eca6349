"""Turn the pipeline's datasets into OpenLineage input and output datasets with their facets.

An operator knows *which* datasets it reads and writes before it runs (a :class:`DatasetSpec`)
and learns *what* they contain while it runs (an :class:`Observation`: columns, content
version, row count, size).  :func:`input_dataset` and :func:`output_dataset` combine the two
into ``openlineage.client.event_v2`` datasets carrying:

* ``schema`` — column names and types (from the observation);
* ``dataSource`` — the zone (namespace) and the ``file://`` URI of its root;
* ``version`` (datasetVersion) — a content hash, so the same bytes give the same version;
* ``ownership`` — the partner and the platform team;
* ``documentation`` — what the dataset is;
* ``contract`` — the source contract that governs it (:class:`ContractDatasetFacet`, ours);
* on outputs, ``outputStatistics`` — rows and bytes written.

On START an operator has no observation yet for what it will write; facets that need one are
simply left out.  Nothing here does I/O except :func:`observe_file`, which hashes a file.

This module also defines the project's custom facets, plain attrs values like the client's
generated ones, each with its own ``_schemaURL``: :class:`ContractDatasetFacet` (key
``contract``) and :class:`ContractGateRunFacet` (key ``contractGate``, the gate's decision on a
run, set by :class:`~lineage.airflow.gate.ContractGateOperator`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attr

from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    datasource_dataset,
    documentation_dataset,
    output_statistics_output_dataset,
    ownership_dataset,
    schema_dataset,
)
from openlineage.client.facet_v2 import dataset_version_dataset
from openlineage.client.generated.base import DatasetFacet, RunFacet

from lineage import PRODUCER
from lineage.airflow.pipeline import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_BASE = "https://lineage-ml.github.io/spec/facets/1-0-0"


@attr.define
class ContractDatasetFacet(DatasetFacet):
    """The source contract that governs a dataset (``facets.contract``)."""

    id: str
    version: str | None = None
    status: str | None = None
    permittedPurposes: list[str] = attr.field(factory=list)  # noqa: N815 - OpenLineage casing
    dataCategories: list[str] = attr.field(factory=list)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/ContractDatasetFacet.json#/$defs/ContractDatasetFacet"


@attr.define
class ContractGateRunFacet(RunFacet):
    """The contract gate's decision for one run (``run.facets.contractGate``)."""

    allowed: bool
    purpose: str
    inputs: list[str] = attr.field(factory=list)
    reasons: list[str] = attr.field(factory=list)
    decision: str = ""

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/ContractGateRunFacet.json#/$defs/ContractGateRunFacet"


def contract_facet(contract: dict[str, Any] | None) -> dict[str, ContractDatasetFacet]:
    """``{"contract": facet}`` from a partner's contract summary, or ``{}`` when it has none."""
    if not contract:
        return {}
    return {
        "contract": ContractDatasetFacet(
            id=str(contract["id"]),
            version=contract.get("version"),
            status=contract.get("status"),
            permittedPurposes=list(contract.get("purposes", [])),
            dataCategories=list(contract.get("categories", [])),
            producer=PRODUCER,
        )
    }


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


def _facets(spec: DatasetSpec, home: Path, seen: Observation | None, contracts: dict[str, dict] | None) -> dict:
    facets: dict = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(
            name=spec.namespace, uri=spec.zone_root(home).resolve().as_uri(), producer=PRODUCER
        ),
        "ownership": ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=o, type=o.split(":", 1)[0]) for o in spec.owners], producer=PRODUCER
        ),
    }
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


def input_dataset(
    spec: DatasetSpec, home: Path, seen: Observation | None = None, contracts: dict[str, dict] | None = None
) -> InputDataset:
    return InputDataset(namespace=spec.namespace, name=spec.name, facets=_facets(spec, home, seen, contracts))


def output_dataset(
    spec: DatasetSpec, home: Path, seen: Observation | None = None, contracts: dict[str, dict] | None = None
) -> OutputDataset:
    output_facets = {}
    if seen is not None and (seen.rows is not None or seen.size is not None):
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=seen.rows, size=seen.size, producer=PRODUCER
        )
    return OutputDataset(
        namespace=spec.namespace, name=spec.name, facets=_facets(spec, home, seen, contracts), outputFacets=output_facets
    )
