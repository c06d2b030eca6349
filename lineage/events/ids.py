"""Node ids in Marquez's form: ``dataset:NAMESPACE:NAME`` and ``job:NAMESPACE:NAME``.

This module is the one place that builds and parses node ids; nothing else splits them.

Namespaces often contain colons themselves (``postgres://db:5432``), names rarely do, so an id
is split at its *last* colon: ``dataset:postgres://db:5432:public.users`` is namespace
``postgres://db:5432``, name ``public.users``.  A name that itself contains a colon cannot be
written as a node id unambiguously; address it through the typed routes
(``/api/v1/namespaces/{namespace}/datasets/{name}``) instead.

Where a caller accepts a bare ``NAMESPACE:NAME`` for one kind (a gate's inputs are always
datasets), :func:`parse_node_id` takes ``kind=`` and then accepts either form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lineage.errors import BadRequest

NodeType = Literal["dataset", "job"]
KINDS: tuple[str, ...] = ("dataset", "job")


@dataclass(frozen=True, slots=True)
class NodeId:
    type: str  # "dataset" | "job"
    namespace: str
    name: str

    def __str__(self) -> str:
        return node_id(self.type, self.namespace, self.name)


def node_id(kind: str, namespace: str, name: str) -> str:
    """The string id of a node: ``KIND:NAMESPACE:NAME``."""
    return f"{kind}:{namespace}:{name}"


def parse_node_id(value: str, field: str = "nodeId", *, kind: str | None = None) -> NodeId:
    """Parse ``dataset:NS:NAME`` or ``job:NS:NAME``; a :class:`BadRequest` naming ``field`` otherwise.

    With ``kind``, the id must be of that kind, and the ``KIND:`` prefix may be left out
    (``NS:NAME``).
    """
    prefix, sep, rest = value.partition(":")
    if sep and prefix in KINDS:
        typ = prefix
    elif kind is not None:
        typ, rest = kind, value
    else:
        typ = ""
    namespace, sep2, name = rest.rpartition(":")
    if typ not in KINDS or not sep2 or not namespace or not name or "\x00" in value:
        expected = f"`{kind}:NAMESPACE:NAME` or `NAMESPACE:NAME`" if kind else "`dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME`"
        raise BadRequest(field, f"`{value}` is not a node id; expected {expected}")
    if kind is not None and typ != kind:
        raise BadRequest(field, f"`{value}` is a {typ} id; expected a {kind}")
    return NodeId(typ, namespace, name)


def split_qualified(value: str, kind: str) -> tuple[str, str]:
    """``(namespace, name)`` of ``KIND:NS:NAME`` or ``NS:NAME``, without raising.

    For ids that were validated already, or that must be recorded whatever they hold (a
    gate refusal is logged even for a malformed job name): a value without a colon has an
    empty namespace.  Use :func:`parse_node_id` to validate input.
    """
    prefix = f"{kind}:"
    body = value[len(prefix):] if value.startswith(prefix) else value
    namespace, _, name = body.rpartition(":")
    return namespace, name
