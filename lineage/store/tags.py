"""Tags and soft deletes: the writes the Marquez UI offers, each one a record of who and when.

Tables (migration 0009), all append-only, keyed by names so a rebuild of the derived tables
keeps them:

* ``tag_definitions``: a tag and its description (``PUT /api/v1/tags/{tag}``); the latest
  definition of a name is its current description.
* ``tag_changes``: a tag added to or removed from a dataset, a job or a dataset's field.  The
  current tags of a target are those whose latest change is ``add``.
* ``node_deletions``: a dataset or job deleted (hidden).  A node is hidden while its latest
  deletion was recorded after its last event time (``updated_at``): raw events and every
  derived row stay, and a newer event brings the node back, as in Marquez.

Tagging needs the tag to be defined first (404 naming the next step otherwise) and the target
to exist and not be deleted (404).  Reads take tags for many targets in one query
(:func:`tags_for`).
"""

from __future__ import annotations

import psycopg

from lineage.errors import BadRequest, NotFound

#: SQL: is the node (kind literal, namespace expr, name expr, updated_at expr) hidden?
#: Plain equality (a hash index on ``name`` serves lookups, whatever a name's length), so a
#: query over many rows joins it as a cheap hash anti-join rather than computing a key per row.
HIDDEN_SQL = """EXISTS (SELECT 1 FROM node_deletions x
    WHERE x.name = {name} AND x.kind = '{kind}' AND x.namespace = {ns} AND x.recorded_at > {updated})"""


def hidden_sql(kind: str, ns: str, name: str, updated: str) -> str:
    assert kind in ("dataset", "job")
    return HIDDEN_SQL.format(kind=kind, ns=ns, name=name, updated=updated)


def _check_name(tag: str) -> None:
    if not tag.strip() or len(tag) > 255:
        raise BadRequest("tag", "must be 1-255 characters, not blank")


def define_tag(conn: psycopg.Connection, tag: str, description: str | None, who: str) -> None:
    _check_name(tag)
    conn.execute("INSERT INTO tag_definitions (name, description, recorded_by) VALUES (%s, %s, %s)", (tag, description, who))


def list_tags(conn: psycopg.Connection, limit: int, offset: int) -> dict:
    rows = conn.execute(
        """SELECT DISTINCT ON (name) name, description FROM tag_definitions ORDER BY name, id DESC""").fetchall()
    total = len(rows)
    page = rows[offset:offset + limit] if offset < total else []
    return {"tags": [{"name": n, "description": d} for n, d in page], "totalCount": total}


def _tag_exists(conn: psycopg.Connection, tag: str) -> None:
    if conn.execute("SELECT 1 FROM tag_definitions WHERE name = %s LIMIT 1", (tag,)).fetchone() is None:
        exc = NotFound("tag", tag)
        exc.message += f": define it first with PUT /api/v1/tags/{tag}"
        raise exc


def _visible(conn: psycopg.Connection, kind: str, namespace: str, name: str) -> None:
    table = "datasets" if kind == "dataset" else "jobs"
    row = conn.execute(
        f"SELECT {hidden_sql(kind, 'n.name', 't.name', 't.updated_at')} FROM {table} t "
        "JOIN namespaces n ON n.id = t.namespace_id WHERE n.name = %s AND t.name = %s",
        (namespace, name),
    ).fetchone()
    if row is None or row[0]:
        raise NotFound(kind, f"{namespace}:{name}")


def change_tag(conn: psycopg.Connection, target: str, namespace: str, name: str, field: str | None, tag: str,
               action: str, who: str) -> None:
    """Add or remove ``tag`` on a dataset, a job or a field (``target`` ``field``, ``field`` given)."""
    _check_name(tag)
    _visible(conn, "job" if target == "job" else "dataset", namespace, name)
    if target == "field":
        known = conn.execute(
            """SELECT EXISTS (SELECT 1 FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
                   JOIN dataset_schemas s ON s.id = d.schema_id, jsonb_array_elements(s.fields) f
                   WHERE n.name = %s AND d.name = %s AND f ->> 'name' = %s)""",
            (namespace, name, field),
        ).fetchone()[0]
        if not known:
            raise NotFound("field", f"{namespace}:{name}:{field}")
    if action == "add":
        _tag_exists(conn, tag)
    conn.execute(
        "INSERT INTO tag_changes (target, namespace, name, field, tag, action, recorded_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (target, namespace, name, field or "", tag, action, who),
    )


def tags_for(conn: psycopg.Connection, kind: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str, str], list[str]]:
    """``(namespace, name, field)`` → current tags, for datasets or jobs ``keys`` (field ``''``
    for the node itself; dataset keys also carry their fields' tags).  One query."""
    if not keys:
        return {}
    targets = ["job"] if kind == "job" else ["dataset", "field"]
    rows = conn.execute(
        """SELECT namespace, name, field, tag FROM (
               SELECT DISTINCT ON (c.target, c.namespace, c.name, c.field, c.tag) c.namespace, c.name, c.field, c.tag, c.action
               FROM unnest(%(ns)s::text[], %(n)s::text[]) k(ns, name)
               CROSS JOIN unnest(%(t)s::text[]) tt(target)
               JOIN tag_changes c ON lineage_node_key(c.target, c.namespace, c.name) = lineage_node_key(tt.target, k.ns, k.name)
                    AND c.target = tt.target AND c.namespace = k.ns AND c.name = k.name
               ORDER BY c.target, c.namespace, c.name, c.field, c.tag, c.id DESC) x
           WHERE action = 'add' ORDER BY tag""",
        {"ns": [k[0] for k in keys], "n": [k[1] for k in keys], "t": targets},
    ).fetchall()
    out: dict[tuple[str, str, str], list[str]] = {}
    for ns, name, field, tag in rows:
        out.setdefault((ns, name, field), []).append(tag)
    return out


def delete_node(conn: psycopg.Connection, kind: str, namespace: str, name: str, who: str) -> None:
    """Hide a dataset or job (404 if unknown or already hidden); nothing is removed."""
    _visible(conn, kind, namespace, name)
    conn.execute("INSERT INTO node_deletions (kind, namespace, name, recorded_by) VALUES (%s, %s, %s, %s)",
                 (kind, namespace, name, who))
    try:
        _visible(conn, kind, namespace, name)
    except NotFound:
        return
    # Still visible: its last event time is later than now (a producer's clock ahead of ours).
    # Raising rolls the deletion back rather than record one that hides nothing.
    raise BadRequest(kind, f"`{namespace}:{name}` has events dated later than now; it cannot be hidden before then")
