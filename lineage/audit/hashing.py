"""The ledger's hashes: pure functions, shared by the sealer, the verifier and the offline
bundle verifier (nothing here touches a database or a file).

Formats (version 1; a third party can reimplement them from this list):

* **Record.**  A row as PostgreSQL's ``to_jsonb(row)`` gives it (timestamps in UTC, ``bytea`` as
  ``"\\\\x..."`` hex), with top-level ``null`` columns left out (so a later migration that adds a
  nullable column does not change the hash of rows sealed before it), in RFC 8785 canonical
  form (:func:`lineage.events.canonical.canonical`: the ``rfc8785`` package, or a fast path
  proven byte-identical to it).  A record that was already gone when sealed is ``null``.
* **Digested columns** (:data:`DIGESTED`: ``raw_events.payload``, the ~3 KB OpenLineage event).
  In the record such a column ``C`` is replaced by the member ``"C#sha256"``: the lowercase hex
  SHA-256 of the UTF-8 bytes of PostgreSQL's text output of the value (``C::text``; for
  ``jsonb``, its normalised text: keys sorted by length then bytes, ``", "`` and ``": "``).
  The digest is always recomputed from the value itself, never read from a stored column, so
  an edited payload changes the leaf; and it needs no canonicalisation, so the database can
  compute it in C (``sha256(convert_to(C::text, 'UTF8'))``) while verifying a million events.
  A bundle carries the value as that exact text (a JSON string), hashed as it stands.
  (Entries sealed before digested columns existed hashed the whole payload as a member: a
  store sealed by that first version reports its events as altered and must be re-ledgered.)
* **Leaf.**  ``SHA-256(0x00 || "lineage-ledger/v1" || 0x00 || TABLE || 0x00 || RECORD)``:
  RFC 6962's leaf prefix, then a domain tag and the table name, so the same row in two tables
  (or in another system's log) never has the same hash.
* **Merkle root** of a block's leaves, in ledger order: RFC 6962's Merkle Tree Hash (interior
  node ``SHA-256(0x01 || left || right)``; the empty tree ``SHA-256("")``).
* **Block hash.**  ``SHA-256("lineage-block/v1" || 0x00 || JCS(header))`` with header
  ``{"seq", "prev", "root", "first", "last", "sealedAt"}`` (hashes as lowercase hex,
  ``sealedAt`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``).  ``prev`` of block 1 is 64 zeros.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone
from typing import Any

import msgspec
import rfc8785

from lineage.events.canonical import canonical

LEAF_TAG = b"\x00lineage-ledger/v1\x00"
#: Columns that enter their table's record as the SHA-256 of their text (see the docstring).
DIGESTED: dict[str, tuple[str, ...]] = {"raw_events": ("payload",)}
DIGEST_SUFFIX = "#sha256"
BLOCK_TAG = b"lineage-block/v1\x00"
ZERO_HASH = bytes(32)
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Floats are the one kind of value where the fast canonical path may not apply (`1.0` vs `1`);
# the decoder notes, per thread, whether it met one.
_seen = threading.local()


def _float_hook(text: str) -> float:
    _seen.floats = True
    return float(text)


_decoder = msgspec.json.Decoder(float_hook=_float_hook)


def record_bytes(row_json: str | bytes | None) -> bytes:
    """RFC 8785 bytes of a record given as JSON text (``None``: the record was gone)."""
    if row_json is None:
        return b"null"
    _seen.floats = False
    value = _decoder.decode(row_json)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    return canonical(value, floats=_seen.floats)


def digest_text(text: str) -> str:
    """The member value of a digested column whose text output is ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_columns(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A record as a bundle carries it (digested columns as their text) -> as it is hashed.

    Raises ``TypeError`` if a digested column holds anything but text (the bundle was edited).
    """
    for column in DIGESTED.get(table, ()):
        if column in row:
            text = row.pop(column)
            if text is None:
                continue
            if not isinstance(text, str):
                raise TypeError(f"`{column}` must be the column's text, as exported")
            row[column + DIGEST_SUFFIX] = digest_text(text)
    return row


def leaf_hash(table: str, row_json: str | bytes | None) -> bytes:
    """The leaf hash of one record of ``table`` (see the module docstring)."""
    return hashlib.sha256(LEAF_TAG + table.encode() + b"\x00" + record_bytes(row_json)).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of ``leaves`` (already leaf hashes).

    Pairing neighbours level by level and carrying an odd last node up unchanged builds the
    same tree as RFC 6962's split at the largest power of two below n (tested against it).
    """
    if not leaves:
        return EMPTY_ROOT
    level = leaves
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def when(at: datetime) -> str:
    """The one text form of a time inside a hash: UTC, microseconds, ``Z``."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def block_header(seq: int, prev: bytes, root: bytes, first: int, last: int, sealed_at: datetime) -> dict[str, Any]:
    return {"seq": seq, "prev": prev.hex(), "root": root.hex(), "first": first, "last": last, "sealedAt": when(sealed_at)}


def block_hash(header: dict[str, Any]) -> bytes:
    return hashlib.sha256(BLOCK_TAG + rfc8785.dumps(header)).digest()

