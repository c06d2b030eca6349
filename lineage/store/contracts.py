"""The contract registry's SQL: append-only rows in ``contract_documents``,
``contract_dataset_links`` and ``contract_versions`` (migrations 0002 and 0005).

Every function takes an open psycopg connection (the caller owns the transaction) and returns
plain rows (dicts or tuples); :mod:`lineage.contracts.registry` turns them into
:class:`~lineage.contracts.registry.ContractState`\\ s and enforces the rules.  Nothing here
updates or deletes, and the tables' triggers refuse it.

Two notions of "the state of a contract" live here, and they differ on purpose:

* the *current* state (:func:`current_rows`) is the contract's highest version, whatever it
  says: what a steward acts on (approve the proposed revision, revoke, ...);
* the *governing* state (:func:`governing_rows`) is what the gate obeys: the contract's latest
  ``approve`` version, unless a ``revoke`` or ``expire`` was recorded after it, in which case
  the current state governs (revoked, expired, or a newer proposed revision after a
  revocation).  A contract never approved is governed by its current state (proposed or
  revoked).  So a later proposed revision does not un-approve the approved one, and a
  revocation after the approval revokes the contract.  A dataset is covered by a contract when
  the *governing* revision's links name it, compared in Unicode normal form C (PostgreSQL's
  ``normalize``, which needs a UTF8 database: elsewhere the lookup fails and the gate with it,
  closed).  An ``endorse`` version (the first of the two
  approvals a special-category contract needs) leaves the status ``proposed`` and never governs
  in place of an earlier approval.

Every version row records the actor (a principal's normalised name), the credential that
authenticated it, and the time.  The owners of consuming jobs come from the
``namespace_owners`` registry (:mod:`lineage.store.governance`), never from event facets.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

_CURRENT = """
SELECT DISTINCT ON (v.contract_id)
       v.contract_id, v.version, v.revision, v.action, v.status, v.actor, v.credential, v.reason, v.recorded_at,
       d.terms, d.sha256, d.source_file, d.registered_by, d.registered_credential, d.document
FROM contract_versions v
JOIN contract_documents d ON d.contract_id = v.contract_id AND d.revision = v.revision
{where}
ORDER BY v.contract_id, v.version DESC
"""

# The governing version of each candidate contract (see the module docstring).  Names are
# compared under Unicode canonical equivalence (NFC): `café` typed in a contract and `café`
# from a macOS path in an event are the same text, and a prohibition must not miss one of them.
_SAME = "normalize(l.namespace, NFC) = normalize(w.namespace, NFC) AND normalize(l.name, NFC) = normalize(w.name, NFC)"
_GOVERNING = """
WITH wanted (namespace, name) AS (SELECT * FROM unnest(%(ns)s::text[], %(names)s::text[])),
cand AS (SELECT DISTINCT l.contract_id FROM contract_dataset_links l JOIN wanted w ON {same}),
marks AS (
    SELECT v.contract_id,
           max(v.version) AS latest,
           max(v.version) FILTER (WHERE v.action = 'approve') AS approved,
           max(v.version) FILTER (WHERE v.action IN ('revoke', 'expire')) AS denied
    FROM contract_versions v JOIN cand USING (contract_id)
    WHERE %(as_of)s::timestamptz IS NULL OR v.recorded_at <= %(as_of)s
    GROUP BY v.contract_id
),
gov AS (
    SELECT contract_id,
           CASE WHEN approved IS NOT NULL AND (denied IS NULL OR denied < approved) THEN approved ELSE latest END AS version
    FROM marks
)
SELECT DISTINCT ON (w.namespace, w.name, v.contract_id)
       w.namespace AS dataset_namespace, w.name AS dataset_name, l.namespace AS link_namespace, l.name AS link_name,
       v.contract_id, v.version, v.revision, v.action, v.status, v.actor, v.credential, v.reason, v.recorded_at,
       d.terms, d.sha256, d.source_file, d.registered_by, d.registered_credential, d.document
FROM gov
JOIN contract_versions v ON v.contract_id = gov.contract_id AND v.version = gov.version
JOIN contract_documents d ON d.contract_id = v.contract_id AND d.revision = v.revision
JOIN contract_dataset_links l ON l.contract_id = v.contract_id AND l.revision = v.revision
JOIN wanted w ON {same}
ORDER BY w.namespace, w.name, v.contract_id
""".format(same=_SAME)

_OWNERS = """
WITH RECURSIVE ds (dataset_id, depth) AS (
    SELECT d.id, 0 FROM contract_dataset_links l
    JOIN namespaces n ON n.name = l.namespace JOIN datasets d ON d.namespace_id = n.id AND d.name = l.name
    WHERE l.contract_id = %(cid)s AND l.revision = %(rev)s
    UNION
    SELECT o.dataset_id, ds.depth + 1 FROM ds
    JOIN job_io i ON i.dataset_id = ds.dataset_id AND i.direction = 'i'
    JOIN job_io o ON o.job_id = i.job_id AND o.direction = 'o'
    WHERE ds.depth < 20
),
consumers AS (
    SELECT DISTINCT n.name AS job_namespace, j.name AS job_name FROM ds
    JOIN job_io i ON i.dataset_id = ds.dataset_id AND i.direction = 'i'
    JOIN jobs j ON j.id = i.job_id JOIN namespaces n ON n.id = j.namespace_id
)
SELECT DISTINCT c.job_namespace || ':' || c.job_name, o.owner
FROM consumers c
JOIN namespace_owners o ON o.namespace = c.job_namespace
WHERE NOT EXISTS (SELECT 1 FROM namespace_owner_revocations r WHERE r.owner_id = o.id)
ORDER BY 1, 2
"""


def lock(conn: psycopg.Connection, contract_id: str) -> None:
    """Serialise changes to one contract until the end of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", ("contract:" + contract_id,))


def current_row(conn: psycopg.Connection, contract_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_CURRENT.format(where="WHERE v.contract_id = %s"), (contract_id,)).fetchone()


def current_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The current state of every contract, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_CURRENT.format(where="")).fetchall()


def version_rows(conn: psycopg.Connection, contract_id: str) -> list[dict[str, Any]]:
    """Every version of one contract, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT version, revision, action, status, actor, credential, reason, recorded_at FROM contract_versions "
            "WHERE contract_id = %s ORDER BY version",
            (contract_id,),
        ).fetchall()


def latest_document(conn: psycopg.Connection, contract_id: str) -> tuple[int, str] | None:
    """``(revision, sha256)`` of the newest registered revision, or None."""
    row = conn.execute(
        "SELECT revision, sha256 FROM contract_documents WHERE contract_id = %s ORDER BY revision DESC LIMIT 1", (contract_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def insert_document(
    conn: psycopg.Connection,
    contract_id: str,
    revision: int,
    document: dict[str, Any],
    terms: dict[str, Any],
    sha256: str,
    source_file: str | None,
    registered_by: str,
    registered_credential: str,
    links: Sequence[tuple[str, str, str | None]],
) -> None:
    """Store a revision and the datasets ``(namespace, name, schema)`` it covers."""
    conn.execute(
        """INSERT INTO contract_documents (contract_id, revision, document, terms, sha256, source_file, registered_by, registered_credential)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (contract_id, revision, Jsonb(document), Jsonb(terms), sha256, source_file, registered_by, registered_credential),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO contract_dataset_links (contract_id, revision, namespace, name, schema_name) VALUES (%s, %s, %s, %s, %s)",
            [(contract_id, revision, ns, name, schema) for ns, name, schema in links],
        )


def append_version(
    conn: psycopg.Connection, contract_id: str, revision: int, action: str, status: str, actor: str, credential: str, reason: str | None
) -> None:
    """Append the contract's next version (one more than its highest), recording who acted with which credential."""
    conn.execute(
        """INSERT INTO contract_versions (contract_id, version, revision, action, status, actor, credential, reason)
           SELECT %s, coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s, %s FROM contract_versions WHERE contract_id = %s""",
        (contract_id, revision, action, status, actor, credential, reason, contract_id),
    )


def endorsers(conn: psycopg.Connection, contract_id: str, revision: int) -> list[str]:
    """Who recorded an ``endorse`` (a first approval) of this revision, oldest first."""
    rows = conn.execute(
        "SELECT actor FROM contract_versions WHERE contract_id = %s AND revision = %s AND action = 'endorse' ORDER BY version",
        (contract_id, revision),
    ).fetchall()
    return [r[0] for r in rows]


def governing_rows(conn: psycopg.Connection, datasets: Iterable[tuple[str, str]], as_of: Any = None) -> list[dict[str, Any]]:
    """For the given ``(namespace, name)``\\ s, one row per (dataset, contract whose governing revision covers it).

    With ``as_of`` (a ``datetime``), the governing version as it stood then: only versions
    recorded at or before that moment count, so a contract approved then and revoked since is
    approved as of then, and one registered later is absent.

    Each row carries the dataset as asked (``dataset_namespace``/``dataset_name``), the link
    that matched it (``link_namespace``/``link_name``, the same text up to Unicode
    normalisation) and the governing version.  One query.
    """
    pairs = sorted(set(datasets))
    if not pairs:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_GOVERNING, {"ns": [p[0] for p in pairs], "names": [p[1] for p in pairs], "as_of": as_of}).fetchall()


def consumer_owners(conn: psycopg.Connection, contract_id: str, revision: int) -> list[tuple[str, str | None]]:
    """``(job, owner)`` for every registered owner (``namespace_owners``, not revoked) of the
    namespace of a job downstream (up to 20 jobs) of the revision's datasets."""
    return conn.execute(_OWNERS, {"cid": contract_id, "rev": revision}).fetchall()
