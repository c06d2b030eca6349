"""Helpers for gate tests: dataset ids of the demo pipeline, contracts, photo frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests_support import principal

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
TRAIN_JOB = "ml-pipeline:train_model.train"
ACME = "dataset:partner-drops:acme/photos"
LOVE = "dataset:partner-drops:lovematch/photos"
CURATED = "dataset:curated:training.face_photos_v1"
STEWARD = principal("dpo@example.com", "steward")
#: A second, independent steward: contracts holding special categories need two approvals.
SECOND_STEWARD = principal("privacy-counsel@example.com", "steward")
REGISTRANT = principal("data-requests@example.com", "requester")


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


def register(db, name: str, approve_as=None):
    """Register contract ``name`` as :data:`REGISTRANT`; with ``approve_as`` (a steward
    Principal), approve it, and when its special categories need a second approval (the state
    stays ``proposed`` after an ``endorse``), have :data:`SECOND_STEWARD` give it."""
    from lineage.contracts import registry
    from lineage.contracts.document import load_contract

    doc = load_contract(CONTRACTS / name)
    with db.connection() as conn:
        state = registry.register(conn, doc, REGISTRANT)
        if approve_as:
            state = registry.approve(conn, doc.id, approve_as)
            if state.action == "endorse":
                state = registry.approve(conn, doc.id, SECOND_STEWARD)
    return state


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def contract_like(folder: Path, base: str, cid: str, dataset: str) -> Path:
    """A copy of contract ``base`` under id ``cid`` covering ``dataset`` (``dataset:NS:NAME``) instead."""
    ns, _, name = dataset[len("dataset:"):].rpartition(":")
    text = (CONTRACTS / base).read_text(encoding="utf-8")
    doc = load_yaml_contract_id(text)
    link = f"      - namespace: {doc[1]}\n        name: {doc[2]}\n"
    assert f"id: {doc[0]}\n" in text and link in text, base
    text = text.replace(f"id: {doc[0]}\n", f"id: {cid}\n", 1).replace(link, f"      - namespace: {ns}\n        name: {name}\n", 1)
    path = folder / f"{cid}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_yaml_contract_id(text: str) -> tuple[str, str, str]:
    """(id, namespace, name) of the first dataset link of a bundled contract's YAML."""
    import yaml

    data = yaml.safe_load(text)
    links = next(p["value"] for p in data["customProperties"] if p["property"] == "datasets")
    return data["id"], links[0]["namespace"], links[0]["name"]


def read_event(job: str, inputs: list[str], outputs: list[str], n: int = 1) -> list[dict]:
    """START and COMPLETE of one run of ``job`` (``NS:NAME``) reading ``inputs`` and writing ``outputs`` (dataset ids)."""
    from datetime import datetime, timezone

    from lineage.samples import dataset, run_pair

    def ds(i: str) -> dict:
        ns, _, name = i[len("dataset:"):].rpartition(":")
        return dataset(ns, name)

    ns, _, name = job.rpartition(":")
    return run_pair((ns, name), n, [ds(i) for i in inputs], [ds(o) for o in outputs], datetime(2026, 11, 2, tzinfo=timezone.utc))
