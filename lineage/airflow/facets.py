"""This project's custom OpenLineage facets, plain attrs values like the client's generated ones.

* :class:`ContractDatasetFacet` (key ``contract``): the source contract that governs a dataset;
* :class:`ContractGateRunFacet` (key ``contractGate``): the gate's decision on a run, set by
  :class:`~lineage.airflow.gate.ContractGateOperator`.

Each has its own ``_schemaURL``.  No I/O, no Airflow.
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet

from lineage import PRODUCER

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
    """``{"contract": facet}`` from a contract summary (``id``, ``version``, ``status``,
    ``purposes``, ``categories``), or ``{}`` when there is none."""
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
