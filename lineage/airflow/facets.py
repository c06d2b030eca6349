"""Custom OpenLineage facets this project adds to Airflow's events.

Two facets, both plain attrs values (like the client's generated facets) with their own
``_schemaURL`` so a consumer can tell them apart from the standard ones:

* :class:`ContractDatasetFacet` (key ``contract``) on a dataset: which source contract governs
  it, its version and status, and the purposes it permits.
* :class:`ContractGateRunFacet` (key ``contractGate``) on a run: the gate's decision for a
  training run — allowed or not, for which purpose and inputs, and every reason.

They are serialised by the OpenLineage client's ``Serde`` like any other facet.  Nothing here
does I/O.
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet

PRODUCER = "https://github.com/lineage-ml/lineage/tree/main/lineage/airflow"
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
