"""Column lineage: derived from the OpenLineage ``columnLineage`` facet, answered as Marquez does.

Derivation (:func:`derive`) runs at ingest and in the rebuild, on the raw events just stored:
every output dataset (and a DatasetEvent's dataset) whose ``facets.columnLineage.fields`` maps
an output field to ``inputFields`` gives one edge per (input field → output field), with the
transformation the event named: the 1-2-0 facet's ``inputFields[].transformations[0]``
(``type``, and ``subtype`` or ``description``), or the older field-level
``transformationType``/``transformationDescription``.  Edges are upserted: ``first_seen`` and
``recorded_at`` keep the earliest, the transformation follows the latest event.  Malformed
parts of the facet (an input without a field name, a non-object) are skipped, never an error:
the event was already accepted and the facet is the producer's.

Reading (:func:`column_lineage_graph`) starts from a dataset (all its fields), one field, or a
job (the fields of the datasets it writes), walks upstream ``depth`` hops (and downstream
with ``withDownstream``), one recursive query per direction over the indexed keys, and
answers Marquez's ``{"graph": [{id, type: "DATASET_FIELD", data, inEdges, outEdges}]}`` with
``datasetField:NS:NAME:FIELD`` ids.  Edges run from input field (origin) to output field
(destination), as in the dataset graph.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from lineage.errors import BadRequest
from lineage.events import parse_node_id

_ARRAY = "CASE WHEN jsonb_typeof({x}) = 'array' THEN {x} ELSE '[]'::jsonb END"
_OBJECT = "CASE WHEN jsonb_typeof({x}) = 'object' THEN {x} ELSE '{{}}'::jsonb END"

DERIVE_SQL = f"""
INSERT INTO column_lineage AS c (out_key, in_key, out_namespace, out_name, out_field, in_namespace, in_name, in_field,
                                 transformation_type, transformation_description, first_seen, last_seen, recorded_at)
SELECT DISTINCT ON (out_key, in_key) out_key, in_key, out_ns, out_name, out_field, in_ns, in_name, in_field, t_type, t_desc,
       min(event_time) OVER w, max(event_time) OVER w, min(recorded_at) OVER w
FROM (
    SELECT lineage_node_key(o ->> 'namespace', o ->> 'name', f.key) AS out_key,
           lineage_node_key(i ->> 'namespace', i ->> 'name', i ->> 'field') AS in_key,
           o ->> 'namespace' AS out_ns, o ->> 'name' AS out_name, f.key AS out_field,
           i ->> 'namespace' AS in_ns, i ->> 'name' AS in_name, i ->> 'field' AS in_field,
           coalesce(i -> 'transformations' -> 0 ->> 'type', f.value ->> 'transformationType') AS t_type,
           coalesce(i -> 'transformations' -> 0 ->> 'description', i -> 'transformations' -> 0 ->> 'subtype',
                    f.value ->> 'transformationDescription') AS t_desc,
           r.event_time, r.recorded_at, r.id
    FROM raw_events r
    CROSS JOIN LATERAL jsonb_array_elements({_ARRAY.format(x="r.payload -> 'outputs'")}
        || CASE WHEN jsonb_typeof(r.payload -> 'dataset') = 'object' THEN jsonb_build_array(r.payload -> 'dataset') ELSE '[]'::jsonb END) o
    CROSS JOIN LATERAL jsonb_each({_OBJECT.format(x="CASE WHEN jsonb_typeof(o) = 'object' THEN o -> 'facets' -> 'columnLineage' -> 'fields' END")}) f
    CROSS JOIN LATERAL jsonb_array_elements({_ARRAY.format(x="CASE WHEN jsonb_typeof(f.value) = 'object' THEN f.value -> 'inputFields' END")}) i
    WHERE r.id = ANY(%(ids)s) AND jsonb_typeof(i) = 'object'
      AND jsonb_typeof(i -> 'namespace') = 'string' AND jsonb_typeof(i -> 'name') = 'string' AND jsonb_typeof(i -> 'field') = 'string'
      AND jsonb_typeof(o -> 'namespace') = 'string' AND jsonb_typeof(o -> 'name') = 'string'
) e
WINDOW w AS (PARTITION BY out_key, in_key)
ORDER BY out_key, in_key, event_time DESC, id DESC
ON CONFLICT (out_key, in_key) DO UPDATE SET
    first_seen = least(c.first_seen, excluded.first_seen),
    recorded_at = least(c.recorded_at, excluded.recorded_at),
    last_seen = greatest(c.last_seen, excluded.last_seen),
    transformation_type = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.transformation_type ELSE c.transformation_type END,
    transformation_description = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.transformation_description
                                      ELSE c.transformation_description END
"""


def derive(conn: psycopg.Connection, raw_ids: list[int]) -> None:
    """Derive the column edges of the raw events ``raw_ids`` (those carrying ``columnLineage``)."""
    if raw_ids:
        conn.execute(DERIVE_SQL, {"ids": raw_ids})


def with_column_lineage(payloads, ids) -> list[int]:
    """The ids whose payload (bytes or str) mentions ``columnLineage``: a cheap pre-filter."""
    out = []
    for payload, raw_id in zip(payloads, ids):
        if (b"columnLineage" in payload) if isinstance(payload, bytes) else ("columnLineage" in payload):
            out.append(raw_id)
    return out


_WALK = """
WITH RECURSIVE walk(key, depth) AS (
    SELECT k, 0 FROM unnest(%(start)s::uuid[]) k
    UNION
    SELECT c.{next}, w.depth + 1 FROM walk w JOIN column_lineage c ON c.{this} = w.key WHERE w.depth < %(d)s
)
SELECT DISTINCT c.out_namespace, c.out_name, c.out_field, c.in_namespace, c.in_name, c.in_field,
       c.transformation_type, c.transformation_description
FROM walk w JOIN column_lineage c ON c.{this} = w.key WHERE w.depth < %(d)s
"""

_START_DATASET = """
SELECT out_key FROM column_lineage WHERE lineage_node_key(out_namespace, out_name) = lineage_node_key(%(ns)s, %(name)s)
UNION SELECT in_key FROM column_lineage WHERE lineage_node_key(in_namespace, in_name) = lineage_node_key(%(ns)s, %(name)s)
"""

_START_JOB = """
SELECT c.out_key FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
JOIN job_io e ON e.job_id = j.id AND e.direction = 'o'
JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
JOIN column_lineage c ON lineage_node_key(c.out_namespace, c.out_name) = lineage_node_key(dn.name, d.name)
WHERE n.name = %(ns)s AND j.name = %(name)s
"""


def field_node_id(namespace: str, name: str, field: str) -> str:
    return f"datasetField:{namespace}:{name}:{field}"


def parse_column_node(node_id: str) -> tuple[str, str, str, str | None]:
    """``(kind, namespace, name, field)`` of a ``dataset:``, ``job:`` or ``datasetField:`` id.

    A field id is ``datasetField:NS:NAME:FIELD``: the field is after the last colon (a field
    name may not hold one); the rest is read as a dataset id by the one node-id parser.
    """
    if node_id.startswith("datasetField:"):
        rest, sep, field = node_id[len("datasetField:"):].rpartition(":")
        if not sep or not field:
            raise BadRequest("nodeId", "a field id is `datasetField:NS:NAME:FIELD`")
        node = parse_node_id("dataset:" + rest)
        return "datasetField", node.namespace, node.name, field
    node = parse_node_id(node_id)
    return node.type, node.namespace, node.name, None


def column_lineage_graph(conn: psycopg.Connection, node_id: str, depth: int, with_downstream: bool) -> dict:
    kind, ns, name, field = parse_column_node(node_id)
    params = {"ns": ns, "name": name}
    if kind == "datasetField":
        start = [conn.execute("SELECT lineage_node_key(%s, %s, %s)", (ns, name, field)).fetchone()[0]]
    else:
        start = [r[0] for r in conn.execute(_START_DATASET if kind == "dataset" else _START_JOB, params)]
    edges: set[tuple] = set()
    if start:
        with conn.cursor() as cur:
            edges |= {tuple(r) for r in cur.execute(_WALK.format(this="out_key", next="in_key"), {"start": start, "d": depth})}
            if with_downstream:
                edges |= {tuple(r) for r in cur.execute(_WALK.format(this="in_key", next="out_key"), {"start": start, "d": depth})}
    return _graph(conn, sorted(edges, key=lambda e: tuple(x or "" for x in e)))


def _graph(conn: psycopg.Connection, edges: list[tuple]) -> dict:
    fields: dict[tuple[str, str, str], dict] = {}
    for e in edges:
        fields.setdefault(e[0:3], {"in": [], "out": []})["in"].append(e)
        fields.setdefault(e[3:6], {"in": [], "out": []})["out"].append(e)
    datasets = sorted({(k[0], k[1]) for k in fields})
    info: dict[tuple[str, str], tuple[str | None, dict[str, str | None]]] = {}
    if datasets:
        with conn.cursor(row_factory=dict_row) as cur:
            for r in cur.execute(
                """SELECT n.name AS ns, d.name, d.current_version, s.fields FROM unnest(%s::text[], %s::text[]) k(ns, name)
                   JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name
                   LEFT JOIN dataset_schemas s ON s.id = d.schema_id""",
                ([d[0] for d in datasets], [d[1] for d in datasets]),
            ):
                types = {f.get("name"): f.get("type") for f in (r["fields"] or []) if isinstance(f, dict)}
                info[(r["ns"], r["name"])] = (r["current_version"], types)

    def ref(ns: str, name: str, field: str, t_type, t_desc) -> dict:
        return {"namespace": ns, "dataset": name, "datasetVersion": info.get((ns, name), (None, {}))[0], "field": field,
                "transformationDescription": t_desc, "transformationType": t_type}

    graph = []
    for (ns, name, field), io in sorted(fields.items()):
        nid = field_node_id(ns, name, field)
        version, types = info.get((ns, name), (None, {}))
        inputs = [ref(e[3], e[4], e[5], e[6], e[7]) for e in io["in"]]
        graph.append({
            "id": nid,
            "type": "DATASET_FIELD",
            "data": {
                "namespace": ns, "dataset": name, "datasetVersion": version, "field": field, "fieldType": types.get(field),
                "transformationDescription": inputs[0]["transformationDescription"] if len(inputs) == 1 else None,
                "transformationType": inputs[0]["transformationType"] if len(inputs) == 1 else None,
                "inputFields": inputs,
            },
            "inEdges": [{"origin": field_node_id(*e[3:6]), "destination": nid} for e in io["in"]],
            "outEdges": [{"origin": nid, "destination": field_node_id(*e[0:3])} for e in io["out"]],
        })
    return {"graph": graph}


def dataset_column_lineage(conn: psycopg.Connection, namespace: str, name: str) -> list[dict]:
    """A dataset's ``columnLineage`` as Marquez puts it on the dataset: each field's inputs."""
    rows = conn.execute(
        """SELECT out_field, in_namespace, in_name, in_field, transformation_type, transformation_description
           FROM column_lineage WHERE lineage_node_key(out_namespace, out_name) = lineage_node_key(%s, %s)
             AND out_namespace = %s AND out_name = %s
           ORDER BY out_field, in_namespace, in_name, in_field""",
        (namespace, name, namespace, name),
    ).fetchall()
    out: dict[str, dict] = {}
    for field, ins, inn, inf, ttype, tdesc in rows:
        entry = out.setdefault(field, {"name": field, "inputFields": [], "transformationDescription": tdesc,
                                       "transformationType": ttype})
        entry["inputFields"].append({"namespace": ins, "dataset": inn, "field": inf,
                                     "transformationDescription": tdesc, "transformationType": ttype})
    return list(out.values())
