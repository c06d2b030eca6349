"""The hash formats: RFC 6962 trees, leaves that depend on the table and on every value."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
import rfc8785
from hypothesis import given, strategies as st

from lineage.audit.hashing import EMPTY_ROOT, block_hash, block_header, leaf_hash, merkle_root, record_bytes


def _rfc6962(leaves: list[bytes]) -> bytes:
    """The RFC 6962 definition, recursively: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:k]) + _rfc6962(leaves[k:])).digest()


@pytest.mark.parametrize("n", range(0, 70))
def test_merkle_root_is_rfc_6962(n):
    leaves = [hashlib.sha256(b"\x00" + str(i).encode()).digest() for i in range(n)]
    assert merkle_root(leaves) == _rfc6962(leaves)


def test_empty_root_and_order_matter():
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([a, b]) != merkle_root([b, a])


def test_leaf_is_prefixed_and_separates_tables():
    row = json.dumps({"id": 1, "reason": "x"})
    assert leaf_hash("erasures", row) == hashlib.sha256(b"\x00lineage-ledger/v1\x00erasures\x00" + rfc8785.dumps({"id": 1, "reason": "x"})).digest()
    assert leaf_hash("erasures", row) != leaf_hash("role_grants", row)


def test_null_columns_are_left_out_so_a_new_nullable_column_changes_nothing():
    assert record_bytes('{"id": 1, "b": null}') == record_bytes('{"id": 1}')
    assert record_bytes('{"id": 1, "b": "x"}') != record_bytes('{"id": 1}')


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k), kids, max_size=4),
                    max_leaves=20))
def test_a_record_is_hashed_in_rfc_8785_form_whatever_its_spelling(value):
    row = {"id": 1, "v": value} if value is not None else {"id": 1}  # top-level nulls are left out
    assert record_bytes(json.dumps(row)) == rfc8785.dumps(row)
    assert record_bytes(json.dumps(row, indent=3, sort_keys=True)) == rfc8785.dumps(row)


def test_block_hash_covers_every_header_field():
    at = datetime(2026, 11, 27, tzinfo=timezone.utc)
    base = block_header(2, b"\x01" * 32, b"\x02" * 32, 10, 20, at)
    variants = [block_header(3, b"\x01" * 32, b"\x02" * 32, 10, 20, at), block_header(2, b"\x03" * 32, b"\x02" * 32, 10, 20, at),
                block_header(2, b"\x01" * 32, b"\x03" * 32, 10, 20, at), block_header(2, b"\x01" * 32, b"\x02" * 32, 11, 20, at),
                block_header(2, b"\x01" * 32, b"\x02" * 32, 10, 21, at),
                block_header(2, b"\x01" * 32, b"\x02" * 32, 10, 20, at.replace(microsecond=1))]
    assert len({block_hash(h) for h in [base, *variants]}) == 7
