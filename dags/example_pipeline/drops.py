"""Deterministic demo data: the drops partners deliver into ``<data root>/drops``.

A drop is one CSV of photo records plus a ``manifest.json``.  Each record references an image
(``image_uri``; the images themselves are not generated), names the contract it was received
under (``source_contract_id``, the contracts' provenance column), and carries a 16-dimensional
image embedding the partner computed and a ``smiling`` label.  A stock-photo partner adds
licence fields; a dating app adds demographic and precise location fields — the shape of the
data in the motivating case.  Small enough to train on in a second.

The same partner and seed always give the same bytes, so dataset versions (content hashes)
are stable across runs and machines, and writing a drop again is a no-op.  No downloads.
"""

from __future__ import annotations

import json
from pathlib import Path

from example_pipeline.pipeline import Partner

EMBEDDING_DIM = 16
AGE_RANGES = ["18-24", "25-34", "35-44", "45-54", "55+"]
GENDERS = ["female", "male", "nonbinary", "undisclosed"]
ETHNICITIES = ["asian", "black", "hispanic", "white", "mixed", "undisclosed"]
CITIES = [
    ("Berlin", "DE", 52.52, 13.405),
    ("Lisbon", "PT", 38.722, -9.139),
    ("Austin", "US", 30.267, -97.743),
    ("Toronto", "CA", 43.653, -79.383),
    ("Nairobi", "KE", -1.286, 36.817),
    ("Osaka", "JP", 34.694, 135.502),
]


def embedding_columns() -> list[str]:
    return [f"emb_{i:02d}" for i in range(EMBEDDING_DIM)]


def generate_records(partner: Partner, rows: int | None = None):
    """The partner's drop as a DataFrame; deterministic in ``partner.seed`` (and ``rows``)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(partner.seed)
    n = rows or partner.rows
    emb = rng.normal(size=(n, EMBEDDING_DIM)).round(5)
    # A fixed direction in embedding space decides "smiling", plus noise: learnable, not trivial.
    weights = np.random.default_rng(1234).normal(size=EMBEDDING_DIM)
    logits = emb @ weights / np.sqrt(EMBEDDING_DIM) * 3 + rng.normal(scale=0.7, size=n)
    frame = pd.DataFrame(
        {
            "photo_id": [f"{partner.name}-{i:06d}" for i in range(n)],
            "image_uri": [f"partner-drops://{partner.name}/photos/images/{i:06d}.jpg" for i in range(n)],
        }
    )
    if partner.kind == "dating":
        # The motivating case: profile photos with demographic and precise location fields.
        city_idx = rng.integers(0, len(CITIES), size=n)
        frame["user_id"] = [f"u{int(x):07d}" for x in rng.integers(0, 10_000_000, size=n)]
        frame["age_range"] = [AGE_RANGES[int(x)] for x in rng.integers(0, len(AGE_RANGES), size=n)]
        frame["gender"] = [GENDERS[int(x)] for x in rng.integers(0, len(GENDERS), size=n)]
        frame["ethnicity"] = [ETHNICITIES[int(x)] for x in rng.integers(0, len(ETHNICITIES), size=n)]
        frame["city"] = [CITIES[i][0] for i in city_idx]
        frame["latitude"] = [round(CITIES[i][2] + float(d), 4) for i, d in zip(city_idx, rng.normal(scale=0.05, size=n))]
        frame["longitude"] = [round(CITIES[i][3] + float(d), 4) for i, d in zip(city_idx, rng.normal(scale=0.05, size=n))]
    else:
        frame["license_id"] = [f"LIC-{partner.name.upper()}-{i % 97:04d}" for i in range(n)]
        frame["captured_at"] = [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)]
    frame["source_contract_id"] = partner.contract_id
    for j, col in enumerate(embedding_columns()):
        frame[col] = emb[:, j]
    frame["smiling"] = (logits > 0).astype(int)
    return frame


def write_drop(partner: Partner, home: Path, rows: int | None = None) -> Path:
    """Write the partner's drop under ``home`` (idempotent) and return the records file.

    ``rows`` overrides the partner's demo size (the overhead benchmark uses bigger drops).
    """
    path = partner.drop.path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = generate_records(partner, rows)
    text = frame.to_csv(index=False, float_format="%.5f", lineterminator="\n")
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    manifest = {
        "partner": partner.name,
        "dataset": partner.drop.id,
        "records": len(frame),
        "contract": partner.contract_id,
        "contact": partner.contact,
        "description": partner.description,
    }
    (path.parent / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return path
