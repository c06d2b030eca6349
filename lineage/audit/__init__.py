"""The tamper-evident record: a ledger of every record of accountability, sealed and signed.

* :mod:`~lineage.audit.hashing` — the formats (record, leaf, RFC 6962 root, block hash): pure.
* :mod:`~lineage.audit.seal` — queue → blocks, in transaction order, after commit.
* :mod:`~lineage.audit.checkpoint` — Ed25519-signed heads, key and files outside the database.
* :mod:`~lineage.audit.verify` — the database checked against its ledger and checkpoints.
* :mod:`~lineage.audit.bundle` — evidence bundles, exported and verified offline.
* :mod:`~lineage.audit.service` — the server's background sealer (and scheduled checkpoints).
* :mod:`~lineage.audit.cli` — ``lineage audit seal|checkpoint|verify|export|verify-bundle``.

The schema (queue, entries, blocks, ``lineage_ledger_table(regclass)``) is migration 0010.
"""
