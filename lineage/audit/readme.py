"""The README written into every evidence bundle (for the third party who checks it)."""

TEXT = """\
# Evidence bundle of a lineage ledger

This directory is a range of a tamper-evident ledger: the records (OpenLineage events,
contract versions, approvals and revocations, API tokens, role grants, gate decisions, erasure
records...), their hashes, the blocks that seal them, and signed checkpoints. You can check it
without any access to the system that produced it.

## Check it

    python -m venv v && v/bin/pip install lineage   # or the wheel you were given; needs no database
    v/bin/lineage audit verify-bundle THIS_DIR --public-key KEY.pem

`KEY.pem` is the organisation's checkpoint public key **obtained independently** (from its
published key, a regulator's copy, an earlier bundle): `public-key.pem` inside this directory
is used when `--public-key` is omitted, which proves consistency only, not origin. Exit code 0
and a line starting `OK:` mean: every record hashes to its sealed leaf, every block's Merkle
root and chain link hold, and a checkpoint signed by that key covers the end of the range.
Otherwise the first problem is printed, naming the table and key of the record concerned
(`--json` prints every problem).

## Check it without our code

Everything is SHA-256, RFC 8785 (JSON Canonicalization Scheme) and Ed25519:

* record: a line of `records/TABLE.jsonl`, with top-level `null` members removed, in RFC 8785 form;
  in `records/raw_events.jsonl` the member `payload` (the event, as the text PostgreSQL stored
  it) is first replaced by `"payload#sha256"`: the lowercase hex SHA-256 of that text's UTF-8 bytes;
* leaf: `SHA-256(0x00 || "lineage-ledger/v1" || 0x00 || TABLE || 0x00 || record)`;
* block root: the RFC 6962 Merkle Tree Hash of the block's leaves in `seq` order
  (node `SHA-256(0x01 || left || right)`);
* block hash: `SHA-256("lineage-block/v1" || 0x00 || JCS({seq, prev, root, first, last, sealedAt}))`,
  `prev` being the previous block's hash (64 zeros for block 1);
* checkpoint signature: Ed25519 over `"lineage-checkpoint/v1" || 0x00 || JCS(checkpoint without "signature")`,
  base64; `blockHash` must equal the hash of block `block`, and `entries` its `last`.

`manifest.json` lists entries exported without their record and why: `erased` (deleted by a
recorded erasure: the erasure record names it), `superseded` (a later version of the same
record is in the bundle) or `updated after the range`. Their leaves still count in the roots,
so a withheld record cannot have been altered, only left out.
"""
