"""The example pipeline's operators: land a partner's drop, curate a training set, train a model.

Built on the reusable :class:`~lineage.airflow.operators.LineageOperator`; the partner, its
datasets and their files come from :mod:`example_pipeline.pipeline`.  Files live under the data
root: the ``data_root`` argument, else ``$LINEAGE_EXAMPLE_DATA`` (read when the task runs, never
at parse time).  pandas and scikit-learn are imported inside ``execute``.

:func:`render_model_card` writes the card next to every model: what it is, what it was trained
on (dataset ids and content versions), the sources and contracts behind that data, the gate's
decision, and the evaluation.  The card is itself an output dataset, so its lineage is the
model's.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lineage.airflow.datasets import DatasetSpec
from lineage.airflow.operators import LineageOperator
from example_pipeline.pipeline import PARTNERS, TRAINING_PURPOSE, Partner, ZonedDataset, data_root

REQUIRED_DROP_COLUMNS = ("photo_id", "image_uri", "smiling")


class PartnerOperator(LineageOperator):
    """A step of the example pipeline for one partner."""

    def __init__(self, *, partner: str, data_root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if partner not in PARTNERS:
            raise ValueError(f"unknown partner `{partner}`; known partners: {sorted(PARTNERS)} (dags/example_pipeline/pipeline.py)")
        self.partner = partner
        self.data_root = data_root
        self._root: Path | None = None

    @property
    def partner_config(self) -> Partner:
        return PARTNERS[self.partner]

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = data_root(self.data_root)
        return self._root

    def spec(self, dataset: ZonedDataset) -> DatasetSpec:
        return dataset.spec(self.root)


class PartnerDropTransferOperator(PartnerOperator):
    """Land a partner's drop in the raw zone, byte for byte, after checking it is readable."""

    def reads(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.drop)]

    def writes(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.raw)]

    def execute(self, context: Any) -> dict:
        import pandas as pd

        p = self.partner_config
        source, target = p.drop.path(self.root), p.raw.path(self.root)
        if not source.exists():
            raise FileNotFoundError(f"no drop from {p.display_name} at {source}; run `python -m example_pipeline.demo` to generate demo drops")
        frame = pd.read_csv(source)
        missing = [c for c in REQUIRED_DROP_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"drop {p.drop.id} lacks required column(s) {missing}; ask {p.contact or p.name} for a corrected drop")
        self.saw(self.spec(p.drop), frame)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        seen = self.saw(self.spec(p.raw), frame)
        self.log.info("landed %d records from %s in %s (version %s)", seen.rows, p.drop.id, p.raw.id, seen.version)
        return {"dataset": p.raw.id, "rows": seen.rows, "version": seen.version}


class CurateTrainingSetOperator(PartnerOperator):
    """Curate training features from the raw zone: embeddings and label only, deduplicated.

    Identifiers, demographic and location fields are dropped here (data minimisation); each row
    keeps ``source_contract_id`` (row-level provenance the gate checks), and the training set's
    lineage still leads back to the drop it came from.
    """

    def reads(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.raw)]

    def writes(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.training_set)]

    def execute(self, context: Any) -> dict:
        import pandas as pd

        from example_pipeline.drops import embedding_columns

        p = self.partner_config
        raw = pd.read_csv(p.raw.path(self.root))
        self.saw(self.spec(p.raw), raw)
        features = embedding_columns()
        curated = (
            raw.dropna(subset=[*features, "smiling"])
            .drop_duplicates(subset="photo_id")
            .loc[:, ["photo_id", "source_contract_id", *features, "smiling"]]
            .sort_values("photo_id")
            .reset_index(drop=True)
        )
        target = p.training_set.path(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        curated.to_csv(target, index=False, float_format="%.5f", lineterminator="\n")
        seen = self.saw(self.spec(p.training_set), curated)
        self.log.info("curated %d of %d records into %s", len(curated), len(raw), p.training_set.id)
        return {"dataset": p.training_set.id, "rows": seen.rows, "version": seen.version}


class TrainModelOperator(PartnerOperator):
    """Train a smile classifier (scikit-learn) and write the model and its model card."""

    def __init__(self, *, gate_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate_task_id = gate_task_id
        self._metrics: dict[str, float] = {}

    def reads(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.training_set)]

    def writes(self) -> list[DatasetSpec]:
        return [self.spec(self.partner_config.model), self.spec(self.partner_config.model_card)]

    def execute(self, context: Any) -> dict:
        import joblib
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, roc_auc_score
        from sklearn.model_selection import train_test_split

        p = self.partner_config
        data = pd.read_csv(p.training_set.path(self.root))
        trained_on = self.saw(self.spec(p.training_set), data)
        features = [c for c in data.columns if c.startswith("emb_")]
        x_train, x_test, y_train, y_test = train_test_split(
            data[features], data["smiling"], test_size=0.25, random_state=0, stratify=data["smiling"]
        )
        model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
        self._metrics = {
            "accuracy": round(float(accuracy_score(y_test, model.predict(x_test))), 4),
            "roc_auc": round(float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])), 4),
            "train_rows": len(x_train),
            "test_rows": len(x_test),
        }
        model_path = p.model.path(self.root)
        model_path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, model_path)
        model_seen = self.saw(self.spec(p.model))
        gate = context["ti"].xcom_pull(task_ids=self.gate_task_id) if self.gate_task_id else None
        card_path = p.model_card.path(self.root)
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card_path.write_text(
            render_model_card(p, model_version=model_seen.version, data_version=trained_on.version, metrics=self._metrics, gate=gate)
        )
        self.saw(self.spec(p.model_card))
        self.log.info("trained %s version %s: %s", p.model.id, model_seen.version, self._metrics)
        return {"model": p.model.id, "version": model_seen.version, "metrics": self._metrics}


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
        if gate.get("decision_id"):
            gate_lines.append(f"- decision id: `{gate['decision_id']}` (`lineage gate log` shows it)")
        gate_lines += [f"- reason: {reason}" for reason in gate.get("reasons", [])]
        if gate.get("decision"):
            gate_lines += ["", "```", gate["decision"], "```"]
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
