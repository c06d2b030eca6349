"""Gate decisions waiting for the store: a directory of JSON files, replayed into the log.

When the gate cannot record a decision (the store is unreachable, or was lost mid-check), the
run is blocked and the blocked decision's log row is written here instead, one file per
decision (``<decision_id>.json`` under ``LINEAGE_HOME/gate-pending``).  A file is written
atomically: to a hidden temporary file in the same directory, flushed and ``fsync``\\ ed, then
renamed into place and the directory ``fsync``\\ ed, so a crash leaves either no file or a
whole one, never half a decision.

:func:`flush` inserts every pending file into ``gate_decisions`` (idempotent on
``decision_id``) and removes each file once the insert has committed.  A file left behind by a
crash between commit and removal is simply inserted again next time, which stores nothing new;
two gates flushing at once store each decision once.  A file that cannot be read, or that the
store refuses for its content, is renamed ``*.rejected`` and logged, so one bad file never
blocks the others (nor every later gate check).

Only what the gate writes here is replayed: a fail-closed refusal.  The directory is a file
system path anyone with access to ``LINEAGE_HOME`` can write, so :func:`read` refuses (and
:func:`flush` sets aside as ``*.rejected``) a file whose row is not a refusal (``allowed`` not
exactly ``false``), gives no reason or a reason other than ``store_unavailable`` /
``gate_error`` (contract decisions are only ever made, and logged, with the store), or whose
``decision_id`` is not a UUID equal to the file's name.  A forged file can therefore never put
an ALLOWED decision, nor a contract verdict, in the log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import psycopg

from lineage.store import decisions as log_sql
from lineage.store.decisions import DecisionRow

log = logging.getLogger("lineage.gate")
SUFFIX = ".json"
#: The only reasons a pending refusal may give: those of ``decision.blocked`` in ``service``.
REFUSAL_CODES = frozenset({"store_unavailable", "gate_error", "lineage_pending"})


def directory(home: Path) -> Path:
    """Where pending decisions live under ``home`` (``Settings.home``)."""
    return Path(home) / "gate-pending"


def write(folder: Path, row: DecisionRow) -> Path:
    """Write ``row`` atomically as ``folder/<decision_id>.json``; returns the path."""
    _check_id(str(row["decision_id"]))
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps({**row, "decided_at": row["decided_at"].isoformat()}, ensure_ascii=True, sort_keys=True, default=str)
    final = folder / f"{row['decision_id']}{SUFFIX}"
    tmp = folder / f".{row['decision_id']}{SUFFIX}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def read(path: Path) -> DecisionRow:
    """The refusal in ``path``; ValueError (or KeyError, TypeError) if it is not one the gate wrote."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not an object")
    missing = set(DecisionRow.__annotations__) - set(data)
    if missing:
        raise ValueError(f"missing {sorted(missing)}")
    data["decided_at"] = dt.datetime.fromisoformat(data["decided_at"])
    if _check_id(data["decision_id"]) != path.name[: -len(SUFFIX)]:
        raise ValueError("decision_id differs from the file's name")
    if data["allowed"] is not False:
        raise ValueError("not a refusal: only blocked decisions are ever kept pending")
    reasons = data["reasons"]
    if not isinstance(reasons, list) or not reasons:
        raise ValueError("a refusal without a reason")
    codes = {r.get("code") if isinstance(r, dict) else None for r in reasons}
    if not codes <= REFUSAL_CODES:
        raise ValueError(f"reasons {sorted(map(str, codes - REFUSAL_CODES))} are not fail-closed refusals")
    return data  # type: ignore[return-value]


def _check_id(value: Any) -> str:
    """``value`` if it is a UUID in canonical text form (so it is also a safe file name)."""
    if not isinstance(value, str) or str(uuid.UUID(value)) != value:
        raise ValueError("decision_id is not a UUID")
    return value


def pending(folder: Path) -> list[Path]:
    """Pending files, oldest name first (temporary and rejected files are not pending)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))


def flush(conn: psycopg.Connection, folder: Path) -> int:
    """Record every pending decision; return how many were newly stored.

    Each file is inserted and committed on its own, so a refused file does not undo the others.  Connection errors propagate: the caller treats them
    as the store being unreachable, and the files stay for the next time.
    """
    stored = 0
    for path in pending(folder):
        try:
            row = read(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _reject(path, f"unreadable: {exc}")
            continue
        try:
            stored += log_sql.insert(conn, row)
            conn.commit()
        except psycopg.OperationalError:
            conn.rollback()
            raise
        except (psycopg.Error, UnicodeError, ValueError) as exc:  # the store refused this row's content: set it aside, go on
            conn.rollback()
            _reject(path, f"refused by the store: {type(exc).__name__}")
            continue
        path.unlink(missing_ok=True)
    return stored


def _reject(path: Path, why: str) -> None:
    log.error("pending gate decision %s %s; kept as %s.rejected for an operator", path.name, why, path.name)
    try:
        os.replace(path, path.with_name(path.name + ".rejected"))
    except OSError:  # another gate moved it first
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
