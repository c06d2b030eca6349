"""The database owner tampers with the record; `verify` catches it and names the record.

The attacker here is the **owner** role (the strongest non-superuser there is): it disables the
user triggers of a table (the append-only guard and the ledger's queue trigger alike), then
updates, deletes or inserts a record, and enables them again.  For each ledgered table and
each of the three, :func:`lineage.audit.verify.verify` must fail and name exactly that record
(table and key).  Then the attacker who rewrites the record *and* recomputes every leaf, root
and block is caught against a checkpoint signed before, and a forged checkpoint is refused.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage.audit import checkpoint as cp
from lineage.audit.seal import key_columns, seal_all
from lineage.audit.verify import verify

# table -> (an UPDATE's SET clause forging the record, the SET clause that gives a copy a new key)
ATTACKS = {
    "raw_events": ("producer = 'https://forged.example'", "id = id + 1000000, event_key = gen_random_uuid()"),
    "contract_documents": ("registered_by = 'someone-else@example.com'", "revision = revision + 100"),
    "contract_dataset_links": ("schema_name = 'forged'", "name = name || '-forged'"),
    "contract_versions": ("status = 'approved', action = 'approve'", "version = version + 100"),
    "gate_decisions": ("allowed = NOT allowed", "id = id + 1000000, decision_id = gen_random_uuid()"),
    "api_tokens": ("roles = ARRAY['admin']", "id = 'ffffffffffff', name = 'forged-token'"),
    "role_grants": ("role = 'admin'", "id = id + 1000000"),
    "erasures": ("reason = 'forged reason'", "id = id + 1000000"),
    "namespace_owners": ("owner = 'mallory@example.com'", "id = id + 1000000"),
    "namespace_owner_revocations": ("reason = 'forged'", "owner_id = (SELECT max(id) FROM namespace_owners)"),
    "principal_ties": ("organisation = 'nobody'", "id = id + 1000000"),
    "principal_tie_revocations": ("reason = 'forged'", "tie_id = (SELECT max(id) FROM principal_ties)"),
    "tag_definitions": ("description = 'harmless'", "id = id + 1000000"),
    "tag_changes": ("action = 'remove'", "id = id + 1000000"),
    "node_deletions": ("name = 'evidence'", "id = id + 1000000"),
    "erasure_manifests": ("reason = 'nothing to see'", "id = id + 1000000, norm_name = norm_name || '-forged'"),
    "erasure_items": ("location = 'file:///elsewhere'", "id = id + 1000000, norm_name = norm_name || '-forged'"),
    "retentions": ("archive_sha256 = repeat('0', 64)", "id = id + 1000000, partition_name = partition_name || '-forged'"),
    "erasure_item_events": ("action = 'recreated'", "id = id + 1000000, action = 'recreated', run_uuid = gen_random_uuid()"),
}


def test_every_ledgered_table_is_attacked_here(filled, owner):
    assert set(key_columns(owner)) == set(ATTACKS)


def test_an_untouched_ledger_verifies(filled):
    with filled.connection() as conn:
        report = verify(conn)
    assert report.ok, report.summary()
    assert report.erased == 1 and report.records > 20 and report.blocks == 2 and report.pending == 0


# Rows others depend on (a foreign key) are not deleted alone: these pick one nothing references.
UNREFERENCED = {
    "raw_events": "NOT EXISTS (SELECT 1 FROM dataset_versions v WHERE v.raw_event_id = raw_events.id)",
    "namespace_owners": "id NOT IN (SELECT owner_id FROM namespace_owner_revocations)",
    "principal_ties": "id NOT IN (SELECT tie_id FROM principal_tie_revocations)",
    "erasure_manifests": "id NOT IN (SELECT manifest_id FROM erasure_items)",
    "erasure_items": "id NOT IN (SELECT item_id FROM erasure_item_events)",
}


def _last_key(owner, table: str, unreferenced: bool = False) -> dict:
    cols = key_columns(owner)[table]
    order = ", ".join(f"{c} DESC" for c in cols)
    where = f"WHERE {UNREFERENCED[table]}" if unreferenced and table in UNREFERENCED else ""
    row = owner.execute(f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY {order} LIMIT 1").fetchone()
    return dict(zip(cols, row))


def _where(key: dict) -> str:
    return " AND ".join(f"{c} = %({c})s" for c in key)


def _as_owner_without_triggers(owner, table: str, statement: str, params=None) -> None:
    owner.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        owner.execute(statement, params)
    finally:
        owner.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _problems(db):
    with db.connection() as conn:
        return verify(conn)


@pytest.mark.parametrize("table", sorted(ATTACKS))
def test_an_update_by_the_owner_is_named(filled, owner, table):
    key = _last_key(owner, table)
    _as_owner_without_triggers(owner, table, f"UPDATE {table} SET {ATTACKS[table][0]} WHERE {_where(key)}", key)
    report = _problems(filled)
    assert not report.ok
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("altered", table, key)]
    assert report.first.key == key


@pytest.mark.parametrize("table", sorted(ATTACKS))
def test_a_delete_by_the_owner_is_named(filled, owner, table):
    key = _last_key(owner, table, unreferenced=True)
    if table == "contract_documents":  # its dataset links and versions go with it (foreign keys)
        for child in ("contract_dataset_links", "contract_versions"):
            _as_owner_without_triggers(owner, child, f"DELETE FROM {child}")
    _as_owner_without_triggers(owner, table, f"DELETE FROM {table} WHERE {_where(key)}", key)
    report = _problems(filled)
    found = [(p.kind, p.table, p.key) for p in report.ordered()]
    assert ("deleted", table, key) in found
    if table == "erasures":  # the erasure record gone, the event it erased is unaccounted for too
        assert len(found) == 2 and found[0][:2] == ("deleted", "raw_events")
    elif table == "contract_documents":
        assert found[0] == ("deleted", table, key) and {f[1] for f in found[1:]} == {"contract_dataset_links", "contract_versions"}
    else:
        assert found == [("deleted", table, key)]


@pytest.mark.parametrize("table", sorted(ATTACKS))
def test_an_insert_by_the_owner_is_named(filled, owner, table):
    key = _last_key(owner, table)
    owner.execute(f"CREATE TEMP TABLE forged AS SELECT * FROM {table} WHERE {_where(key)}", key)
    owner.execute(f"UPDATE forged SET {ATTACKS[table][1]}")
    cols = key_columns(owner)[table]
    new_key = dict(zip(cols, owner.execute(f"SELECT {', '.join(cols)} FROM forged").fetchone()))
    _as_owner_without_triggers(owner, table, f"INSERT INTO {table} SELECT * FROM forged")
    report = _problems(filled)
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("inserted", table, new_key)]


def test_an_update_still_queued_is_pending_not_tampering(filled):
    from lineage.auth import tokens as api_tokens

    with filled.connection() as conn:
        api_tokens.revoke(conn, "kept", by="it-admin@example.com")
    report = _problems(filled)
    assert report.ok, report.summary()
    assert report.pending == 1


def test_an_altered_leaf_breaks_its_block(filled, owner):
    _as_owner_without_triggers(owner, "ledger_entries", "UPDATE ledger_entries SET leaf = sha256(leaf) WHERE seq = 5")
    report = _problems(filled)
    assert [(p.kind, p.block) for p in report.problems if p.kind == "block"] == [("block", 1)]
    assert any(p.kind == "altered" and p.seq == 5 for p in report.problems)


def _signed_checkpoint(db, key):
    with db.connection() as conn:
        return cp.make(conn, key)


def _rewrite_everything(owner, table: str, set_clause: str, key: dict) -> None:
    """The owner alters a record, then rebuilds the whole ledger so that it is consistent again."""
    _as_owner_without_triggers(owner, table, f"UPDATE {table} SET {set_clause} WHERE {_where(key)}", key)
    for t in ("ledger_entries", "ledger_blocks"):
        _as_owner_without_triggers(owner, t, f"DELETE FROM {t}")
    owner.execute("DELETE FROM ledger_queue")
    for name, cols in key_columns(owner).items():
        owner.execute(f"INSERT INTO ledger_queue (tbl, pk) SELECT '{name}', jsonb_build_array({', '.join(cols)}) FROM {name} ORDER BY 1")
    owner.autocommit = False
    seal_all(owner)
    owner.autocommit = True


def test_a_rewrite_that_recomputes_the_whole_chain_is_caught_by_an_earlier_checkpoint(filled, owner):
    key = Ed25519PrivateKey.generate()
    signed = _signed_checkpoint(filled, key)
    target = _last_key(owner, "contract_versions")
    _rewrite_everything(owner, "contract_versions", ATTACKS["contract_versions"][0], target)
    with filled.connection() as conn:
        without = verify(conn)
    assert without.ok, "the rewrite is internally consistent: only a checkpoint can catch it"
    with filled.connection() as conn:
        report = verify(conn, [("cp.json", signed)], key.public_key())
    assert not report.ok
    assert [p.kind for p in report.problems] == ["checkpoint"]
    assert report.first.block == signed["block"] and "rewritten" in report.first.detail


def test_a_checkpoint_signed_with_another_key_is_refused(filled):
    trusted, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = _signed_checkpoint(filled, forger)
    with filled.connection() as conn:
        report = verify(conn, [("forged.json", forged)], trusted.public_key())
    assert [p.kind for p in report.problems] == ["checkpoint"]
    assert "does not verify with the trusted public key" in report.problems[0].detail


def test_a_checkpoint_edited_after_signing_is_refused(filled):
    key = Ed25519PrivateKey.generate()
    signed = _signed_checkpoint(filled, key)
    signed["entries"] += 1
    with filled.connection() as conn:
        report = verify(conn, [("edited.json", signed)], key.public_key())
    assert [p.kind for p in report.problems] == ["checkpoint"]


def test_blocks_removed_after_a_checkpoint_are_caught(filled, owner):
    key = Ed25519PrivateKey.generate()
    signed = _signed_checkpoint(filled, key)
    _as_owner_without_triggers(owner, "ledger_blocks", "DELETE FROM ledger_blocks WHERE seq = %s", (signed["block"],))
    with filled.connection() as conn:
        report = verify(conn, [("cp.json", signed)], key.public_key())
    assert any(p.kind == "checkpoint" and "not in the ledger" in p.detail for p in report.problems)
    assert any(p.kind == "block" for p in report.problems)  # its entries belong to no block
