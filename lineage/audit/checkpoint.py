"""Signed checkpoints: the ledger's head, signed with an Ed25519 key held outside the database.

Contract:

* The signing key is a PEM (PKCS#8) file: ``LINEAGE_AUDIT_KEY_FILE`` if set (production: a
  path to a mounted secret; it must exist), else ``LINEAGE_HOME/audit/signing-key``, created
  with mode 0600 on first use.  The public key is written beside it (``.pub``) and goes into
  every evidence bundle.  The database never sees either.
* A checkpoint is one JSON object: ``{"v": 1, "block": N, "blockHash": hex, "entries": last
  entry, "at": time, "keyId": hex, "signature": base64}``.  The signature is Ed25519 over
  ``"lineage-checkpoint/v1" || 0x00 || JCS(the object without "signature")``.  ``keyId`` is
  the SHA-256 of the raw public key, first 16 bytes, hex.
* :func:`write` saves it under the checkpoint directory (``LINEAGE_AUDIT_CHECKPOINT_DIR``, default
  ``LINEAGE_HOME/audit/checkpoints``) as ``<block>-<time>.json``; the CLI also prints it as one
  line on stdout, for a log system that keeps its own copy.
* :func:`check` verifies one checkpoint's signature against a trusted public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lineage.audit.hashing import when
from lineage.errors import ConfigError

TAG = b"lineage-checkpoint/v1\x00"


@dataclass(frozen=True)
class AuditPaths:
    key_file: Path
    checkpoint_dir: Path
    explicit_key: bool

    @classmethod
    def from_env(cls, home: Path) -> "AuditPaths":
        """Paths from ``LINEAGE_AUDIT_KEY_FILE`` / ``LINEAGE_AUDIT_CHECKPOINT_DIR``, defaults under ``home``."""
        key = os.environ.get("LINEAGE_AUDIT_KEY_FILE")
        folder = os.environ.get("LINEAGE_AUDIT_CHECKPOINT_DIR")
        return cls(Path(key) if key else home / "audit" / "signing-key",
                   Path(folder) if folder else home / "audit" / "checkpoints", bool(key))


def load_or_create_key(paths: AuditPaths) -> Ed25519PrivateKey:
    """The signing key; created (0600) on first use unless its path was given explicitly."""
    path = paths.key_file
    if not path.exists():
        if paths.explicit_key:
            raise ConfigError(f"LINEAGE_AUDIT_KEY_FILE `{path}` does not exist: mount the checkpoint signing key there")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        public_path(paths).write_bytes(public_pem(key.public_key()))
        return key
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the checkpoint signing key `{path}` is readable by others: chmod 600 it")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"`{path}` is not an Ed25519 private key")
    return key


def public_path(paths: AuditPaths) -> Path:
    return paths.key_file.with_name(paths.key_file.name + ".pub")


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the checkpoint public key is not an Ed25519 key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:16].hex()


def _message(body: dict[str, Any]) -> bytes:
    return TAG + rfc8785.dumps({k: v for k, v in body.items() if k != "signature"})


def sign(key: Ed25519PrivateKey, block: int, block_hash: bytes, entries: int, at: datetime | None = None) -> dict[str, Any]:
    body = {"v": 1, "block": block, "blockHash": block_hash.hex(), "entries": entries,
            "at": when(at or datetime.now(timezone.utc)), "keyId": key_id(key.public_key())}
    body["signature"] = base64.b64encode(key.sign(_message(body))).decode()
    return body


def check(checkpoint: dict[str, Any], public: Ed25519PublicKey) -> str | None:
    """None if ``checkpoint`` is well formed and signed by ``public``; else what is wrong."""
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        int(checkpoint["block"]), bytes.fromhex(checkpoint["blockHash"]), int(checkpoint["entries"])
    except (KeyError, TypeError, ValueError):
        return "malformed checkpoint (block, blockHash, entries and signature are required)"
    try:
        public.verify(signature, _message(checkpoint))
    except InvalidSignature:
        return f"signature does not verify with the trusted public key (key id {key_id(public)})"
    return None


def write(paths: AuditPaths, checkpoint: dict[str, Any]) -> Path:
    paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stamp = checkpoint["at"].replace(":", "").replace("-", "")
    path = paths.checkpoint_dir / f"{checkpoint['block']:012d}-{stamp}.json"
    path.write_text(json.dumps(checkpoint, sort_keys=True) + "\n")
    return path


def read_all(folder: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """``(file name, checkpoint or None if unreadable)`` for every ``*.json`` in ``folder``."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            value = json.loads(path.read_text())
            out.append((path.name, value if isinstance(value, dict) else None))
        except (OSError, ValueError):
            out.append((path.name, None))
    return out


def make(conn, key: Ed25519PrivateKey) -> dict[str, Any] | None:
    """Sign the current head of the ledger on ``conn`` (None if nothing is sealed yet)."""
    head = conn.execute("SELECT seq, block_hash, last_entry FROM ledger_blocks ORDER BY seq DESC LIMIT 1").fetchone()
    if head is None:
        return None
    return sign(key, head[0], bytes(head[1]), head[2])
