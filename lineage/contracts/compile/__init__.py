"""Compile contracts to Great Expectations (GX Core 1.x) expectation suites.

Each ODCS schema object of a contract becomes one suite, named ``CONTRACT.SCHEMA``, written
as ``expectations/CONTRACT.SCHEMA.json`` in GX's own suite JSON.  A suite holds, in order:

* ``expect_table_columns_to_match_set`` with ``exact_match``: an undeclared column (a silent
  location or ethnicity field) fails, and so does a missing one;
* per property (see :mod:`.properties`): its logical (and physical) type, ``required`` (not
  null), ``primaryKey``/``unique`` (unique; a composite key, by ``primaryKeyPosition``, as
  ``expect_compound_columns_to_be_unique``), ``logicalTypeOptions`` (bounds, lengths, pattern,
  format) and ``enum``, then its ``quality`` rules (see :mod:`.quality`);
* the schema object's own ``quality`` rules (row count, duplicate combinations, SQL, custom);
* on the contract's ``provenanceColumn``, ``expect_column_values_to_be_in_set`` whose value set is
  the suite parameter ``approved_contract_ids``: the gate supplies, at run time, the ids of the
  approved contracts that permit the purpose.  (:data:`PROVENANCE_SUITE` holds that one check
  alone, for derived datasets that carry the column but have no contract of their own.)

Every expectation's ``meta`` names the contract, the schema object, the property and the
``clause`` (the ODCS term or rule behind it, e.g. ``schema[photos].quality[0] (rowCount
mustBeGreaterOrEqualTo 100)``), ``samples: false`` where the values may not be shown (the
contract holds special categories of data, or the property is classified
confidential/restricted; the provenance column is always shown), and for counted quality rules
the exact ODCS ``threshold`` the runner decides by.  Anything the compiler cannot check raises
:class:`~lineage.contracts.terms.TermProblem` at the rule's path; ``document.load_contract``
compiles every contract it loads, so the error names the file and line and such a contract is
never registered.  Output is deterministic (ids are UUIDv5 of the content), so
``lineage contracts compile --check`` can prove the checked-in suites are current.

Compilation is pure; only :func:`to_gx_suite` and custom GX rules import great_expectations.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Iterable

from lineage.contracts.compile.properties import Spec, key_specs, option_specs, type_specs
from lineage.contracts.compile.quality import holds, rule_specs
from lineage.contracts.terms import ContractTerms, TermProblem

__all__ = ["APPROVED_PARAMETER", "GX_VERSION", "PROVENANCE_COLUMN", "PROVENANCE_SUITE", "compile_terms", "holds",
           "render", "suite_name", "to_gx_suite", "write_suites"]

GX_VERSION = "1.24.1"
APPROVED_PARAMETER = "approved_contract_ids"
_NS = uuid.UUID("6f1d8c1e-3c55-4e43-9a53-0c9f1f0b7a10")
#: ODCS property classifications whose values are never shown in a failure
HIDDEN_CLASSIFICATIONS = frozenset({"confidential", "restricted", "sensitive", "secret", "special"})


def quiet_gx() -> None:
    """Before importing GX: no analytics, no INFO chatter."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _expectation(suite: str, kind: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    ident = uuid.uuid5(_NS, json.dumps([suite, kind, kwargs], sort_keys=True))
    return {"type": kind, "kwargs": kwargs, "meta": meta, "id": str(ident), "severity": "critical"}


def suite_name(contract_id: str, schema: str) -> str:
    return f"{contract_id}.{schema}"


def compile_terms(terms: ContractTerms, sha256: str | None = None) -> dict[str, dict[str, Any]]:
    """Suite name -> GX suite JSON, one per schema object of the contract.

    Raises :class:`TermProblem` (with the document path) for a term or rule it cannot check.
    """
    from lineage.contracts.registry import special_categories_of

    special = bool(special_categories_of(terms))
    objects = {o.get("name"): (i, o) for i, o in enumerate(terms.objects)}
    suites: dict[str, dict[str, Any]] = {}
    for schema, columns in terms.schemas.items():
        name = suite_name(terms.id, schema)
        index, obj = objects.get(schema, (None, None))
        if obj is None:  # terms stored before the schema objects were kept: what Column knows
            obj = {"properties": [{"name": c.name, "required": c.required, "logicalType": c.logical_type} for c in columns]}
        names = [c.name for c in columns]
        exps: list[dict[str, Any]] = []

        def add(spec: Spec, prop: str | None, shown: bool = True) -> None:
            kwargs = dict(spec.kwargs)
            meta: dict[str, Any] = {"contract": terms.id, "schema": schema, "property": prop, "clause": spec.clause, "check": spec.check}
            threshold = kwargs.pop("meta_threshold", None)
            if threshold:
                meta["threshold"] = threshold
            if not shown:
                meta["samples"] = False
            exps.append(_expectation(name, spec.type, kwargs, meta))

        add(Spec("expect_table_columns_to_match_set", {"column_set": names, "exact_match": True},
                 f"schema[{schema}].properties", "columns match the contract's schema"), None)
        path0: tuple = ("schema", index) if index is not None else ("schema",)
        props = obj.get("properties") or []
        keys = sorted((p for p in props if p.get("primaryKey")), key=lambda p: (p.get("primaryKeyPosition", -1), props.index(p)))
        composite = len(keys) > 1
        for j, prop in enumerate(props):
            col = prop["name"]
            at, path = f"schema[{schema}].properties[{col}]", path0 + ("properties", j)
            shown = not special and str(prop.get("classification") or "").lower() not in HIDDEN_CLASSIFICATIONS
            shown = shown or col == terms.provenance_column
            for spec in type_specs(prop, at, path) + key_specs(prop, at, composite) + option_specs(prop, at, path):
                add(spec, col, shown)
            for k, rule in enumerate(prop.get("quality") or []):
                for spec in rule_specs(rule, path + ("quality", k), f"{at}.quality[{k}]", col, names):
                    add(spec, col, shown)
        if composite:
            cols = [p["name"] for p in keys]
            add(Spec("expect_compound_columns_to_be_unique", {"column_list": cols},
                     f"schema[{schema}].primaryKey({', '.join(cols)})", "primary key combinations are unique"), None, not special)
        for k, rule in enumerate(obj.get("quality") or []):
            for spec in rule_specs(rule, path0 + ("quality", k), f"schema[{schema}].quality[{k}]", None, names):
                add(spec, None, not special)
        if terms.provenance_column and terms.provenance_column in names:
            exps.append(_provenance(name, terms.provenance_column, {"contract": terms.id, "schema": schema, "property": terms.provenance_column}))
        meta = {"great_expectations_version": GX_VERSION, "contract": terms.id, "schema": schema}
        unchecked = [f"schema[{schema}]" + (f".properties[{p['name']}]" if p is not obj else "") + f".quality[{k}]"
                     for p in [obj, *props] for k, r in enumerate(p.get("quality") or []) if isinstance(r, dict) and r.get("type") == "text"]
        if unchecked:
            meta["unchecked"] = unchecked  # prose rules: shown to reviewers, not machine-checkable
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
    quiet_gx()
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {}).to_domain_obj()
        for e in suite["expectations"]
    ]
    return gx.ExpectationSuite(name=suite["name"], expectations=exps, meta=suite.get("meta") or {})
