"""A gate decision as OpenLineage input-dataset facets.

For each input dataset of a decision:

* ``dataQualityAssertions`` — the standard facet (OpenLineage 1-1-0): one assertion per
  expectation the gate ran on that input's data, named ``contract@version:clause`` (the ODCS
  term or rule behind it), with the ODCS threshold as ``expected`` and what was observed as
  ``actual``, a SQL rule's query as ``content``, and in ``params`` the clause, the counts and at
  most a few sample values (none for a contract holding sensitive data categories);
* ``sourceContract`` — this project's facet, versioned by its schema URL
  (:data:`SOURCE_CONTRACT_SCHEMA_URL`, JSON Schema shipped as
  ``lineage/contracts/SourceContractDatasetFacet.json``): the purpose asked for, the verdict,
  the input's original sources with the contract (``id@version``) that covered each, and the
  reasons that concern this input.

Facets are plain dicts in the OpenLineage wire shape (``_producer``, ``_schemaURL``), ready to
put under ``inputs[].inputFacets`` (assertions) and ``inputs[].facets`` (contract) of a run
event.  Pure; no I/O.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lineage import PRODUCER
from lineage.times import iso
from lineage.events.ids import split_qualified
from lineage.gate.decision import Decision

FACET_VERSION = "1-0-0"
SOURCE_CONTRACT_SCHEMA_URL = (
    f"https://lineage-ml.github.io/spec/facets/{FACET_VERSION}/SourceContractDatasetFacet.json"
    "#/$defs/SourceContractDatasetFacet"
)
DQ_SCHEMA_URL = "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "contracts" / "SourceContractDatasetFacet.json"


def facet_schema() -> dict[str, Any]:
    """The JSON Schema of the ``sourceContract`` facet."""
    return json.loads(SCHEMA_FILE.read_text())


def _split(dataset: str) -> tuple[str, str]:
    return split_qualified(dataset, "dataset")


def source_contract_facet(decision: Decision, dataset: str) -> dict[str, Any]:
    sources = []
    for src in decision.sources.get(dataset, ()):
        ns, name = _split(src)
        sources.append({"namespace": ns, "name": name, "contract": decision.passed_by.get(src)})
    return {
        "_producer": PRODUCER,
        "_schemaURL": SOURCE_CONTRACT_SCHEMA_URL,
        "decisionId": decision.decision_id,
        "job": decision.job,
        "purpose": decision.purpose,
        "allowed": decision.allowed,
        "decidedAt": iso(decision.decided_at),
        "sources": sources,
        "reasons": [
            {k: v for k, v in r.as_dict().items() if v is not None and k != "dataset"}
            for r in decision.reasons
            if r.dataset in (dataset, None)
        ],
    }


def assertions_facet(decision: Decision, dataset: str) -> dict[str, Any] | None:
    assertions = []
    for v in decision.validations:
        if v.dataset != dataset:
            continue
        for r in v.results:
            a: dict[str, Any] = {"assertion": r["type"], "success": r["success"], "severity": "error"}
            if r.get("column"):
                a["column"] = r["column"]
            if r.get("clause"):
                a["name"] = f"{v.contract or v.suite}:{r['clause']}"
            if r.get("check"):
                a["description"] = r["check"]
            if r.get("threshold"):
                a["expected"] = r["threshold"]
                a["actual"] = str(r.get("observed"))
            elif r.get("unexpected_count") is not None:
                a["actual"] = str(r["unexpected_count"])
                a["expected"] = "0"
            if r.get("query"):
                a["content"], a["contentType"] = r["query"], "sql"
            params = {k: r[k] for k in ("clause", "unexpected_count", "element_count", "sample", "error") if r.get(k) not in (None, [])}
            if r.get("hidden"):
                params["sample"] = "not shown: the contract's data categories are sensitive"
            if params:
                a["params"] = {"contract": v.contract, **params} if v.contract else params
            assertions.append(a)
    if not assertions:
        return None
    return {"_producer": PRODUCER, "_schemaURL": DQ_SCHEMA_URL, "assertions": assertions}


def input_facets(decision: Decision) -> dict[str, dict[str, Any]]:
    """Per input dataset id: ``{"facets": {...}, "inputFacets": {...}}`` for a run event."""
    out: dict[str, dict[str, Any]] = {}
    for dataset in decision.inputs:
        entry: dict[str, Any] = {"facets": {"sourceContract": source_contract_facet(decision, dataset)}, "inputFacets": {}}
        dq = assertions_facet(decision, dataset)
        if dq:
            entry["inputFacets"]["dataQualityAssertions"] = dq
        out[dataset] = entry
    return out


def input_datasets(decision: Decision) -> list[dict[str, Any]]:
    """The inputs of a run event (``[{namespace, name, facets, inputFacets}]``) carrying the facets."""
    out = []
    for dataset, facets in input_facets(decision).items():
        ns, name = _split(dataset)
        out.append({"namespace": ns, "name": name, **facets})
    return out


def gate_event(decision: Decision, run_id: str | None = None) -> dict[str, Any]:
    """An OpenLineage RunEvent for the gate check itself (job ``<job>.contract_gate``).

    COMPLETE when allowed, FAIL when blocked; its inputs carry the facets above, so any
    OpenLineage consumer (this store, Marquez) sees the verdict on the datasets.
    """
    import uuid

    ns, name = split_qualified(decision.job, "job")
    return {
        "eventType": "COMPLETE" if decision.allowed else "FAIL",
        "eventTime": iso(decision.decided_at),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"lineage-gate/{decision.decision_id}")), "facets": {}},
        "job": {"namespace": ns or "default", "name": f"{name}.contract_gate", "facets": {}},
        "inputs": input_datasets(decision),
        "outputs": [],
    }
