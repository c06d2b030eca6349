"""Strict YAML for contracts: the subset an ODCS document needs, and nothing that can hurt.

:func:`parse_yaml` returns the composed node tree (for mapping errors back to lines) and the
constructed data, or raises :class:`~lineage.errors.ContractError` naming the file, the line
and the key path.  On top of PyYAML's safe loader it refuses:

* **anchors and aliases** (``&a`` / ``*a``): a contract never needs them, and they are how a few
  kilobytes expand into billions of nodes (the "billion laughs").  They are refused while
  composing, so a bomb never builds a single expanded node;
* **any tag but the plain JSON-like types** (``!!python/object``, ``!!binary``, ``!!set``,
  local ``!tags``...), and merge keys (``<<``);
* **a key given twice in one mapping**: YAML would silently keep the last, so a second
  ``value:`` line could erase ``[train_ai_system]`` from a list of prohibitions;
* **complex keys** (a list or mapping as a key) and nesting deeper than :data:`MAX_DEPTH`
  (the passes here and in :mod:`lineage.contracts.document` recurse);
* scalars PyYAML types implicitly but Python cannot hold (``2027-02-30``), by their line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from lineage.contracts.terms import render_path
from lineage.errors import ContractError

MAX_DEPTH = 64  # ODCS documents nest about eight levels deep
_SAFE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
)


class _Refused(Exception):
    """A construct the strict loader does not accept; ``mark`` locates it, ``path`` names it."""

    def __init__(self, mark: yaml.Mark | None, path: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.mark, self.path, self.reason = mark, path, reason


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader with anchors, aliases and deep nesting refused while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, (), f"YAML aliases are not allowed in contracts (`*{event.anchor}`); write the value out")
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, (),
                           f"YAML anchors are not allowed in contracts (`&{event.anchor}`), nor aliases; write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(event.start_mark, (), f"the document nests more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        # A scalar the implicit resolver typed but Python cannot hold raises ValueError deep
        # inside PyYAML (an impossible date, an integer of more than 4,300 digits).
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            if isinstance(node, yaml.ScalarNode):
                kind = node.tag.rsplit(":", 1)[-1]
                raise _Refused(node.start_mark, (), f"`{node.value[:40]}` cannot be read as YAML {kind} ({exc}); quote it") from None
            raise


def parse_yaml(file: str, text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree and the constructed data of one YAML document from ``text``."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = None
        if root is not None:
            _check(loader, root, ())
            data = loader.construct_document(root)
    except _Refused as exc:
        raise ContractError(file, exc.mark.line + 1 if exc.mark else None, render_path(exc.path), exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = f"malformed YAML: {exc.problem or exc.context}"
        raise ContractError(file, mark.line + 1 if mark else None, "$", reason) from None
    except yaml.YAMLError as exc:
        raise ContractError(file, None, "$", f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    return root, data


def _check(loader: _StrictLoader, node: yaml.Node, path: tuple[str | int, ...]) -> None:
    """Refuse unsafe tags, merge and complex keys, and duplicate keys, naming the key path."""
    if node.tag not in _SAFE_TAGS:
        if node.tag == "tag:yaml.org,2002:merge":
            raise _Refused(node.start_mark, path, "YAML merge keys (`<<`) are not allowed in contracts; write the keys out")
        tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
        raise _Refused(node.start_mark, path, f"the YAML tag `{tag}` is not allowed in contracts (plain values only)")
    if isinstance(node, yaml.ScalarNode):
        try:
            loader.construct_object(node)  # cached: construct_document reuses it
        except _Refused as exc:
            raise _Refused(exc.mark, path, exc.reason) from None
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check(loader, item, path + (i,))
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise _Refused(key.start_mark, path, "a mapping key must be a plain value, not a list or a mapping")
            _check(loader, key, path)
            # Compare keys as the stored document will hold them: `1` and "1" are one key there.
            name = str(jsonable(loader.construct_object(key)))
            here = path + (name,)
            if name in first_line:
                raise _Refused(key.start_mark, here,
                               f"duplicate key `{name}` (first given on line {first_line[name]}); "
                               "YAML would silently keep only the last, so the document is refused")
            first_line[name] = key.start_mark.line + 1
            _check(loader, value, here)


def jsonable(value: Any) -> Any:
    """YAML turns unquoted dates into date objects; JSON Schema and the store want strings."""
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
