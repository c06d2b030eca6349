"""The governance terms of a source contract, as plain values.

An ODCS v3 document has no fields for consent, purposes or data categories, and forbids unknown
top-level keys, so the terms live in its ``customProperties`` list:

===================== ======== ==============================================================
property              required value
===================== ======== ==============================================================
``provider``          yes      who supplies the data (the partner)
``requester``         yes      who asked for the data (a principal name, e.g. an email); may
                               not approve the contract
``requesterOrganization`` no   the organisation the requester acts for; a steward with a
                               declared tie to it (or to the provider) may not approve
``legalBasis``        yes      one of the GDPR art. 6 bases (``consent``, ``contract``, ...)
``consentEvidence``   no       where the consent or licence can be inspected
``dataSubjects``      no       Fides data-subject keys
``dataCategories``    yes      Fides data-category keys the data holds
``permittedPurposes`` yes      Fides data-use keys, each a key (permits every category the
                               contract holds) or ``{purpose, dataCategories}`` (only those)
``prohibitedPurposes`` no      Fides data-use keys that may never be used
``expires``           no       ISO date after which the contract no longer permits anything
``provenanceColumn``  no       row-level provenance column holding contract ids
``datasets``          yes      ``[{namespace, name, schema}]``: the OpenLineage datasets
                               covered, and the ODCS schema object that describes each
===================== ======== ==============================================================

:func:`extract_terms` turns a validated ODCS document (a dict) into :class:`ContractTerms`, or
raises :class:`TermProblem` naming the JSON path of the offending value, so the caller can map it
to a file and line.  Taxonomy keys are checked here, with the hierarchy (see ``taxonomy``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from lineage.auth.principal import normalise_name
from lineage.contracts import taxonomy

REQUIRED = ("provider", "requester", "legalBasis", "dataCategories", "permittedPurposes", "datasets")
KNOWN = REQUIRED + ("requesterOrganization", "consentEvidence", "dataSubjects", "prohibitedPurposes", "expires", "provenanceColumn")


class TermProblem(ValueError):
    """A term that is missing or wrong; ``path`` is a tuple of keys and indexes into the document."""

    def __init__(self, path: tuple[str | int, ...], reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{render_path(path)}: {reason}")


def render_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "$"


@dataclass(frozen=True)
class Permission:
    """A permitted purpose; ``categories`` None means every category the contract holds."""

    purpose: str
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetLink:
    namespace: str
    name: str
    schema: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Column:
    name: str
    required: bool = False
    logical_type: str | None = None


@dataclass(frozen=True)
class ContractTerms:
    id: str
    name: str
    provider: str
    requester: str
    legal_basis: str
    data_categories: tuple[str, ...]
    permitted: tuple[Permission, ...]
    datasets: tuple[DatasetLink, ...]
    prohibited: tuple[str, ...] = ()
    data_subjects: tuple[str, ...] = ()
    consent_evidence: str | None = None
    expires: dt.date | None = None
    provenance_column: str | None = None
    requester_organization: str | None = None
    #: ODCS schema object name -> its columns, in document order
    schemas: dict[str, tuple[Column, ...]] = field(default_factory=dict)
    #: the document's ODCS schema objects as written (types, keys, options, quality rules):
    #: what ``compile`` turns into expectations; empty for terms stored before it was kept
    objects: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["expires"] = self.expires.isoformat() if self.expires else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ContractTerms":
        return cls(
            id=data["id"],
            name=data["name"],
            provider=data["provider"],
            requester=data["requester"],
            legal_basis=data["legal_basis"],
            data_categories=tuple(data["data_categories"]),
            permitted=tuple(
                Permission(p["purpose"], tuple(p["categories"]) if p["categories"] is not None else None)
                for p in data["permitted"]
            ),
            datasets=tuple(DatasetLink(**d) for d in data["datasets"]),
            prohibited=tuple(data.get("prohibited", ())),
            data_subjects=tuple(data.get("data_subjects", ())),
            consent_evidence=data.get("consent_evidence"),
            expires=dt.date.fromisoformat(data["expires"]) if data.get("expires") else None,
            provenance_column=data.get("provenance_column"),
            requester_organization=data.get("requester_organization"),
            schemas={k: tuple(Column(**c) for c in v) for k, v in data.get("schemas", {}).items()},
            objects=tuple(data.get("objects") or ()),
        )


def extract_terms(doc: dict[str, Any]) -> ContractTerms:
    """Read and check the governance terms of a schema-valid ODCS document."""
    if not doc.get("id"):
        raise TermProblem(("id",), "a contract needs an `id`; it is how stewards approve and revoke it")
    props: dict[str, tuple[int, Any]] = {}
    for i, cp in enumerate(doc.get("customProperties") or []):
        name = cp.get("property")
        if name in props:
            raise TermProblem(("customProperties", i, "property"), f"`{name}` is given twice")
        if name not in KNOWN:
            raise TermProblem(("customProperties", i, "property"), f"unknown contract term `{name}`; known: {', '.join(KNOWN)}")
        props[name] = (i, cp.get("value"))
    for name in REQUIRED:
        if name not in props:
            raise TermProblem(("customProperties",), f"missing required term `{name}` (add `- property: {name}` with a value)")

    def at(name: str) -> tuple[str | int, ...]:
        return ("customProperties", props[name][0], "value")

    def text(name: str, required: bool = True) -> str | None:
        if name not in props:
            return None
        value = props[name][1]
        if not isinstance(value, str) or not value.strip():
            raise TermProblem(at(name), f"`{name}` must be a non-empty string")
        return value.strip()

    def key_list(name: str, kind: taxonomy.Kind, value: Any = None, path: tuple = ()) -> tuple[str, ...]:
        if name not in props and not path:
            return ()
        value = props[name][1] if not path else value
        path = path or at(name)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise TermProblem(path, f"`{name}` must be a non-empty list of Fides {kind.replace('_', ' ')} keys")
        out = []
        for j, key in enumerate(value):
            try:
                out.append(taxonomy.check_key(kind, key))
            except taxonomy.UnknownKey as exc:
                raise TermProblem(path + (j,), str(exc)) from None
        return tuple(out)

    legal_basis = text("legalBasis")
    if legal_basis not in taxonomy.LEGAL_BASES:
        raise TermProblem(at("legalBasis"), f"unknown legal basis `{legal_basis}`; one of {', '.join(sorted(taxonomy.LEGAL_BASES))}")
    categories = key_list("dataCategories", "data_category")

    raw_permitted = props["permittedPurposes"][1]
    if not isinstance(raw_permitted, list) or not raw_permitted:
        raise TermProblem(at("permittedPurposes"), "`permittedPurposes` must be a non-empty list")
    permitted = []
    for j, item in enumerate(raw_permitted):
        path = at("permittedPurposes") + (j,)
        if isinstance(item, dict):
            if set(item) - {"purpose", "dataCategories"}:
                raise TermProblem(path, f"unknown keys {sorted(set(item) - {'purpose', 'dataCategories'})}; use `purpose` and `dataCategories`")
            purpose = key_list("purpose", "data_use", item.get("purpose"), path + ("purpose",))[0]
            cats = key_list("dataCategories", "data_category", item.get("dataCategories"), path + ("dataCategories",)) if "dataCategories" in item else None
            permitted.append(Permission(purpose, cats))
        else:
            permitted.append(Permission(key_list("permittedPurposes", "data_use", [item], path)[0]))

    expires = None
    if "expires" in props:
        try:
            expires = dt.date.fromisoformat(str(props["expires"][1]))
        except ValueError:
            raise TermProblem(at("expires"), f"`{props['expires'][1]}` is not an ISO date (YYYY-MM-DD)") from None

    schemas = _schemas(doc)
    datasets = _datasets(props["datasets"][1], at("datasets"), schemas)
    provenance = text("provenanceColumn") if "provenanceColumn" in props else None
    from lineage.contracts.governance import normalise_organisation

    requester = text("requester")
    # Separation of duties compares the requester with authenticated principals' normal form; a
    # name that has none (invisible characters, mixed scripts) could never match, so refuse it.
    _check_name("requester", requester, at("requester"), normalise_name)
    requester_org = text("requesterOrganization") if "requesterOrganization" in props else None
    if requester_org:
        _check_name("requesterOrganization", requester_org, at("requesterOrganization"), normalise_organisation)
    _check_name("provider", text("provider"), at("provider"), normalise_organisation)
    if provenance and not any(c.name == provenance for cols in schemas.values() for c in cols):
        raise TermProblem(at("provenanceColumn"), f"provenance column `{provenance}` is not a property of any schema object")
    return ContractTerms(
        id=doc["id"],
        name=doc.get("name") or doc["id"],
        provider=text("provider"),
        requester=requester,
        legal_basis=legal_basis,
        data_categories=categories,
        permitted=tuple(permitted),
        datasets=datasets,
        prohibited=key_list("prohibitedPurposes", "data_use"),
        data_subjects=key_list("dataSubjects", "data_subject"),
        consent_evidence=text("consentEvidence") if "consentEvidence" in props else None,
        expires=expires,
        provenance_column=provenance,
        requester_organization=requester_org,
        schemas=schemas,
        objects=tuple(doc.get("schema") or ()),
    )


def _check_name(term: str, value: Any, path: tuple, normalise: Any) -> None:
    from lineage.errors import BadRequest

    try:
        normalise(value, term)
    except BadRequest as exc:
        raise TermProblem(path, f"`{term}` {exc.reason}") from None


def _schemas(doc: dict[str, Any]) -> dict[str, tuple[Column, ...]]:
    out: dict[str, tuple[Column, ...]] = {}
    for obj in doc.get("schema") or []:
        out[obj["name"]] = tuple(
            Column(p["name"], bool(p.get("required")), p.get("logicalType")) for p in obj.get("properties") or []
        )
    return out


def _datasets(value: Any, path: tuple, schemas: dict[str, tuple[Column, ...]]) -> tuple[DatasetLink, ...]:
    if not isinstance(value, list) or not value:
        raise TermProblem(path, "`datasets` must list the OpenLineage datasets covered, as `{namespace, name, schema}`")
    out = []
    for j, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("namespace"), str) or not isinstance(item.get("name"), str):
            raise TermProblem(path + (j,), "each dataset needs a string `namespace` and `name` (OpenLineage naming)")
        schema = item.get("schema")
        if schema is not None and schema not in schemas:
            raise TermProblem(path + (j, "schema"), f"no schema object named `{schema}` (have: {', '.join(schemas) or 'none'})")
        out.append(DatasetLink(item["namespace"], item["name"], schema))
    return tuple(out)
