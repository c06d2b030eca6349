"""Helpers for gate tests: dataset ids of the demo pipeline, contracts, photo frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
TRAIN_JOB = "ml-pipeline:train_model.train"
ACME = "dataset:partner-drops:acme/photos"
LOVE = "dataset:partner-drops:lovematch/photos"
CURATED = "dataset:curated:training.face_photos_v1"
STEWARD = "dpo@example.com"


def ingest(db, events: list[dict]) -> None:
    from lineage.events import parse_event
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in events])


def acme_frame(n: int = 200, contract: str = "acme-stock-photos") -> pd.DataFrame:
    """A drop with exactly the columns the ACME contract declares (as the Airflow demo writes it)."""
    frame = pd.DataFrame(
        {
            "photo_id": [f"a{i}" for i in range(n)],
            "image_uri": [f"partner-drops://acme/photos/images/{i}.jpg" for i in range(n)],
            "license_id": ["LIC-ACME-0001"] * n,
            "captured_at": ["2026-01-01"] * n,
            "source_contract_id": [contract] * n,
        }
    )
    for i in range(16):
        frame[f"emb_{i:02d}"] = [((i * 7 + j) % 13) / 13 for j in range(n)]
    frame["smiling"] = [j % 2 for j in range(n)]
    return frame


def register(db, name: str, approve_as: str | None = None):
    from lineage.contracts import registry
    from lineage.contracts.document import load_contract

    doc = load_contract(CONTRACTS / name)
    with db.connection() as conn:
        state = registry.register(conn, doc)
        if approve_as:
            state = registry.approve(conn, doc.id, approve_as)
    return state


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]
