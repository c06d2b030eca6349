"""Read an ODCS v3 contract document: YAML, JSON Schema, model, terms, in that order.

:func:`load_contract` is the only entry point.  Each stage that fails raises
:class:`~lineage.errors.ContractError` naming the file, the line and the field:

0. size: a document over ``max_bytes`` (``LINEAGE_MAX_CONTRACT_BYTES``) is refused before it
   is parsed (:class:`~lineage.errors.ContractTooLarge`, HTTP 413);
1. YAML, read strictly (see :mod:`lineage.contracts.yaml_strict`): syntax, safe types only, no
   anchors or aliases, no duplicate keys, bounded nesting;
2. the ODCS JSON Schema shipped with ``open-data-contract-standard`` (the error's path is mapped
   back to a line through the composed YAML node tree);
3. the package's pydantic model (:class:`OpenDataContractStandard`), which forbids unknown
   top-level keys;
4. the governance terms in ``customProperties`` (see :mod:`lineage.contracts.terms`), with
   Fides taxonomy keys checked;
5. compilation to expectations (see :mod:`lineage.contracts.compile`): a type, option or
   quality rule the gate cannot check is an error at its line, never silently dropped.

Nothing here touches the store; a document that fails any stage is never registered.
Parsing is CPU-bound: callers on an event loop run :func:`load_contract` in a thread.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from lineage.config import DEFAULT_MAX_CONTRACT_BYTES
from lineage.contracts.terms import ContractTerms, TermProblem, extract_terms, render_path
from lineage.contracts.yaml_strict import jsonable, parse_yaml
from lineage.errors import ContractError, ContractTooLarge


@dataclass(frozen=True)
class ContractDocument:
    """A parsed, validated contract: the document as JSON-able data plus its terms."""

    document: dict[str, Any]
    terms: ContractTerms
    sha256: str
    source_file: str

    @property
    def id(self) -> str:
        return self.terms.id


def load_contract(
    source: str | Path, *, text: str | None = None, max_bytes: int = DEFAULT_MAX_CONTRACT_BYTES
) -> ContractDocument:
    """Parse and check a contract from ``source`` (a path), or from ``text`` labelled ``source``.

    A document larger than ``max_bytes`` (UTF-8) is refused unparsed with
    :class:`~lineage.errors.ContractTooLarge`; a file is never read past that.
    """
    file = str(source)
    if text is None:
        text = _read(file, max_bytes)
    elif len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise too_large(file, f"{len(text.encode('utf-8'))} bytes", max_bytes)
    root, data = parse_yaml(file, text)
    if not isinstance(data, dict):
        raise ContractError(file, 1, "$", "a contract must be a YAML mapping (an ODCS v3 document)")
    data = jsonable(data)

    errors = list(_validator().iter_errors(data))
    if errors:
        err = _pick(errors)
        path = tuple(err.absolute_path) + _unexpected_key(err)
        raise ContractError(file, _line(root, path), render_path(path), f"does not match the ODCS v3 schema: {err.message}")

    from open_data_contract_standard.model import OpenDataContractStandard
    from pydantic import ValidationError

    try:
        OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = tuple(first["loc"])
        raise ContractError(file, _line(root, path), render_path(path), first["msg"]) from None

    try:
        terms = extract_terms(data)
        # Every rule must compile: one the gate cannot check is refused here, with its line.
        from lineage.contracts.compile import compile_terms

        compile_terms(terms)
    except TermProblem as exc:
        raise ContractError(file, _line(root, exc.path), render_path(exc.path), exc.reason) from None
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return ContractDocument(data, terms, hashlib.sha256(canonical.encode()).hexdigest(), file)


def load_contracts(directory: str | Path, *, max_bytes: int = DEFAULT_MAX_CONTRACT_BYTES) -> list[ContractDocument]:
    """Every ``*.yaml``/``*.yml`` contract in a directory, sorted by file name."""
    paths = sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml"))
    return [load_contract(p, max_bytes=max_bytes) for p in paths]


def too_large(file: str, size: str, limit: int) -> ContractTooLarge:
    """The error for a document of ``size`` (text) over ``limit`` bytes."""
    return ContractTooLarge(
        file, None, "$", f"the document is {size}, over the limit of {limit} bytes (LINEAGE_MAX_CONTRACT_BYTES)"
    )


def _read(file: str, max_bytes: int) -> str:
    """The file's text, reading at most one byte past the limit (a huge file is never loaded)."""
    try:
        with open(file, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ContractError(file, None, "$", f"cannot read the file: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise too_large(file, f"more than {max_bytes} bytes", max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ContractError(file, line, "$", f"the file is not UTF-8 text (byte {exc.start})") from None


@lru_cache(maxsize=1)
def _validator():
    import jsonschema
    from open_data_contract_standard.model import OpenDataContractStandard

    schema = json.loads(OpenDataContractStandard.json_schema())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _pick(errors):
    """The most useful schema error: an unexpected key if there is one (the common typo),
    otherwise jsonschema's own best match."""
    import jsonschema

    unexpected = [e for e in errors if e.validator in ("additionalProperties", "unevaluatedProperties")]
    if unexpected:
        return min(unexpected, key=lambda e: len(e.absolute_path))
    return jsonschema.exceptions.best_match(errors)


def _unexpected_key(error) -> tuple[str, ...]:
    """For "unexpected property" errors, point at the unexpected key rather than its parent."""
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        for name in re.findall(r"'([^']+)'", error.message):
            if name in error.instance:
                return (name,)
    return ()


def _line(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest node along ``path`` that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value if not isinstance(value, yaml.ScalarNode) or value.value != "" else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
