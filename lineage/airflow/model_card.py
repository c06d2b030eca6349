"""The model card written next to every trained model.

A model card says what the model is, what it was trained on (dataset ids and content
versions), which sources and contracts stand behind that data, what the contract gate decided,
and how the model performed.  It is itself an output dataset (``models:<partner>/...-card``), so
the card's lineage is the model's lineage.  Pure text rendering; no I/O.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lineage.airflow.pipeline import TRAINING_PURPOSE, Partner


def render_model_card(
    partner: Partner,
    *,
    model_version: str,
    data_version: str,
    metrics: dict[str, Any],
    gate: dict[str, Any] | None,
) -> str:
    """Markdown for the model card of ``partner``'s model."""
    gate_lines = ["- no gate decision was passed to the training task"]
    if gate:
        verdict = "allowed" if gate.get("allowed") else "blocked"
        gate_lines = [f"- decision: **{verdict}** for purpose `{gate.get('purpose', TRAINING_PURPOSE)}`"]
        gate_lines += [f"- {reason}" for reason in gate.get("reasons", [])]
    metric_lines = [f"| {k} | {v} |" for k, v in metrics.items()]
    return "\n".join(
        [
            f"# Model card: {partner.model.name}",
            "",
            f"- model dataset: `{partner.model.id}` version `{model_version}`",
            f"- written: {datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
            "- task: binary classification of `smiling` from 16-dimensional image embeddings",
            "- algorithm: scikit-learn LogisticRegression",
            "",
            "## Training data",
            "",
            f"- `{partner.training_set.id}` version `{data_version}`",
            f"- curated from `{partner.raw.id}`, landed from `{partner.drop.id}`",
            f"- source: {partner.display_name} — {partner.description}",
            f"- source contract: `{partner.contract_id}`",
            "",
            "## Contract gate",
            "",
            *gate_lines,
            "",
            "## Evaluation (held-out 25%)",
            "",
            "| metric | value |",
            "|---|---|",
            *metric_lines,
            "",
            "## Erasure",
            "",
            f"If `{partner.drop.id}` must be erased, this model and this card must go with it:",
            f"`lineage` answers what is downstream of `dataset:{partner.drop.namespace}:{partner.drop.name}`.",
            "",
        ]
    )
