"""Node ids in Marquez's form: ``dataset:NAMESPACE:NAME`` and ``job:NAMESPACE:NAME``.

Namespaces often contain colons themselves (``postgres://db:5432``), names rarely do, so an id
is split at its *last* colon: ``dataset:postgres://db:5432:public.users`` is namespace
``postgres://db:5432``, name ``public.users``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lineage.errors import BadRequest


@dataclass(frozen=True, slots=True)
class NodeId:
    type: str  # "dataset" | "job"
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.namespace}:{self.name}"


def parse_node_id(value: str, field: str = "nodeId") -> NodeId:
    """Parse ``dataset:NS:NAME`` or ``job:NS:NAME``; a :class:`BadRequest` naming ``field`` otherwise."""
    kind, sep, rest = value.partition(":")
    namespace, sep2, name = rest.rpartition(":")
    if not sep or kind not in ("dataset", "job") or not sep2 or not namespace or not name:
        raise BadRequest(field, f"`{value}` is not a node id; expected `dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME`")
    return NodeId(kind, namespace, name)
