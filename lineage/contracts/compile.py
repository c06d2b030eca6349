"""Compile contracts to Great Expectations (GX Core 1.x) expectation suites.

Each ODCS schema object of a contract becomes one suite, named ``CONTRACT.SCHEMA``, written
as ``expectations/CONTRACT.SCHEMA.json`` in GX's own suite JSON.  A suite holds:

* ``expect_table_columns_to_match_set`` with ``exact_match``: an undeclared column (a silent
  location or ethnicity field) fails, and so does a missing one;
* ``expect_column_values_to_not_be_null`` for every ``required`` property;
* on the contract's ``provenanceColumn``, ``expect_column_values_to_be_in_set`` whose value set is
  the suite parameter ``approved_contract_ids``: the gate supplies, at run time, the ids of the
  approved contracts that permit the purpose, so rows from any other source are counted and
  sampled in the result.  (:data:`PROVENANCE_SUITE` holds that one check alone, for derived
  datasets that carry the column but have no contract of their own.)

Every expectation's ``meta`` names the contract and the clause it enforces, so a failure can be
reported as "contract X, clause Y".  Output is deterministic (ids are UUIDv5 of the content), so
``lineage contracts compile --check`` can prove the checked-in suites are current.

Compilation is pure; only :func:`to_gx_suite` imports great_expectations, lazily.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterable

from lineage.contracts.terms import ContractTerms

GX_VERSION = "1.24.1"
APPROVED_PARAMETER = "approved_contract_ids"
_NS = uuid.UUID("6f1d8c1e-3c55-4e43-9a53-0c9f1f0b7a10")


def _expectation(suite: str, kind: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    ident = uuid.uuid5(_NS, json.dumps([suite, kind, kwargs], sort_keys=True))
    return {"type": kind, "kwargs": kwargs, "meta": meta, "id": str(ident), "severity": "critical"}


def suite_name(contract_id: str, schema: str) -> str:
    return f"{contract_id}.{schema}"


def compile_terms(terms: ContractTerms, sha256: str | None = None) -> dict[str, dict[str, Any]]:
    """Suite name -> GX suite JSON, one per schema object of the contract."""
    suites: dict[str, dict[str, Any]] = {}
    for schema, columns in terms.schemas.items():
        name = suite_name(terms.id, schema)
        base = {"contract": terms.id}
        exps = [
            _expectation(
                name,
                "expect_table_columns_to_match_set",
                {"column_set": [c.name for c in columns], "exact_match": True},
                {**base, "clause": f"schema[{schema}].properties", "check": "columns match the contract's schema"},
            )
        ]
        for col in columns:
            if col.required:
                exps.append(
                    _expectation(
                        name,
                        "expect_column_values_to_not_be_null",
                        {"column": col.name},
                        {**base, "clause": f"schema[{schema}].properties[{col.name}].required", "check": "required column is not null"},
                    )
                )
        if terms.provenance_column and any(c.name == terms.provenance_column for c in columns):
            exps.append(_provenance(name, terms.provenance_column, base))
        meta = {"great_expectations_version": GX_VERSION, "contract": terms.id, "schema": schema}
        if sha256:
            meta["contract_sha256"] = sha256
        suites[name] = {"name": name, "id": str(uuid.uuid5(_NS, name)), "expectations": exps, "meta": meta, "notes": None}
    return suites


def _provenance(name: str, column: str, base: dict[str, Any]) -> dict[str, Any]:
    return _expectation(
        name,
        "expect_column_values_to_be_in_set",
        {"column": column, "value_set": {"$PARAMETER": APPROVED_PARAMETER}},
        {**base, "clause": "customProperties[provenanceColumn]", "check": "every row comes from an approved contract that permits the purpose"},
    )


#: For derived datasets (no contract of their own) that carry a provenance column.
PROVENANCE_COLUMN = "source_contract_id"
PROVENANCE_SUITE: dict[str, Any] = {
    "name": "provenance",
    "id": str(uuid.uuid5(_NS, "provenance")),
    "expectations": [_provenance("provenance", PROVENANCE_COLUMN, {"contract": None})],
    "meta": {"great_expectations_version": GX_VERSION},
    "notes": None,
}


def render(suite: dict[str, Any]) -> str:
    return json.dumps(suite, indent=2, sort_keys=True) + "\n"


def write_suites(docs: Iterable[Any], out_dir: str | Path, *, check: bool = False) -> list[Path]:
    """Write (or with ``check``, compare) the suites of ``docs`` (ContractDocuments) in ``out_dir``.

    Returns the paths written; with ``check``, the paths that are missing or stale instead.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    touched: list[Path] = []
    for doc in docs:
        for name, suite in compile_terms(doc.terms, doc.sha256).items():
            path = out / f"{name}.json"
            text = render(suite)
            if check:
                if not path.exists() or path.read_text() != text:
                    touched.append(path)
            else:
                path.write_text(text)
                touched.append(path)
    return touched


def to_gx_suite(suite: dict[str, Any]):
    """A ``great_expectations.ExpectationSuite`` built from suite JSON (imports GX)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {}).to_domain_obj()
        for e in suite["expectations"]
    ]
    return gx.ExpectationSuite(name=suite["name"], expectations=exps, meta=suite.get("meta") or {})
