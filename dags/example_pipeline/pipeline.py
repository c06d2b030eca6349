"""The example ML pipeline as plain data: partners, zones and the datasets that flow between them.

This is the demo's, not a library: ``lineage.airflow`` knows nothing of it.  The DAG files in
``dags/``, :mod:`example_pipeline.demo`, the tests and the benchmark build on it.

A partner's drop moves through four zones, each an OpenLineage dataset namespace:

``partner-drops`` ──ingest──> ``raw-zone`` ──curate──> ``curated`` ──gate, train──> ``models``

Dataset names follow ``<partner>/<dataset>`` (``acme/photos``), so a dataset id looks like
``partner-drops:acme/photos`` and a node id like ``dataset:partner-drops:acme/photos``.

Everything here is known at DAG parse time and cheap to import (no Airflow, no pandas): the
DAG files build their tasks from it, the operators resolve it to files under the *data root*
only when they run, and the demo and tests use it to know what to expect.  The data root is
explicit configuration: the operators' ``data_root`` argument, else the environment variable
``LINEAGE_EXAMPLE_DATA`` (:func:`data_root`); never guessed from ``LINEAGE_HOME``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lineage.events.ids import node_id

DATA_ENV = "LINEAGE_EXAMPLE_DATA"

DROPS = "partner-drops"
RAW = "raw-zone"
CURATED = "curated"
MODELS = "models"

# Where each zone lives under the data root (the drop zone is where partners deliver).
ZONE_DIRS = {DROPS: "drops", RAW: "lake/raw", CURATED: "lake/curated", MODELS: "lake/models"}

TRAINING_PURPOSE = "train_ai_system"
PLATFORM_OWNER = "team:ml-platform"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The example's data root: ``explicit``, else ``$LINEAGE_EXAMPLE_DATA``; an error if neither."""
    value = explicit or os.environ.get(DATA_ENV)
    if not value:
        raise ValueError(f"the example pipeline has no data root: set {DATA_ENV} on the workers (the directory holding "
                         "drops/ and lake/) or pass data_root= to the operator")
    return Path(value).expanduser()


@dataclass(frozen=True)
class ZonedDataset:
    """One dataset of the example: its OpenLineage identity and where its file lives under a data root."""

    namespace: str
    name: str
    filename: str  # file inside the dataset's directory
    description: str = ""
    owners: tuple[str, ...] = (PLATFORM_OWNER,)
    contract_id: str | None = None

    @property
    def id(self) -> str:
        """``namespace:name``, the form the gate and the CLI take."""
        return f"{self.namespace}:{self.name}"

    @property
    def node_id(self) -> str:
        return node_id("dataset", self.namespace, self.name)

    @property
    def asset_uri(self) -> str:
        """URI of the Airflow Asset that stands for this dataset in DAG scheduling."""
        return f"lineage://{self.namespace}/{self.name}"

    def zone_root(self, root: Path) -> Path:
        return root / ZONE_DIRS[self.namespace]

    def path(self, root: Path) -> Path:
        return self.zone_root(root) / self.name / self.filename

    def resolved(self) -> Path:
        """The file under the configured data root (:func:`data_root`), resolved when called."""
        return self.path(data_root())

    def spec(self, root: Path):
        """The generic :class:`~lineage.airflow.datasets.DatasetSpec` of this dataset under ``root``."""
        from lineage.airflow.datasets import DatasetSpec

        return DatasetSpec(self.namespace, self.name, path=self.path(root), description=self.description, owners=self.owners,
                           contract_id=self.contract_id, source_uri=self.zone_root(root).resolve().as_uri())


@dataclass(frozen=True)
class Partner:
    """A partner that delivers data drops, and the datasets its drop becomes."""

    name: str
    display_name: str
    description: str
    contract_id: str
    seed: int
    kind: str  # "stock": licensed stock portraits; "dating": dating-app profiles with demographics and location
    rows: int = 400
    contact: str = ""
    extra_owners: tuple[str, ...] = field(default=())

    @property
    def drop(self) -> ZonedDataset:
        return ZonedDataset(
            DROPS,
            f"{self.name}/photos",
            "records.csv",
            f"Photo records delivered by {self.display_name}: image references with demographic and location fields.",
            owners=(f"partner:{self.name}", *self.extra_owners),
            contract_id=self.contract_id,
        )

    @property
    def raw(self) -> ZonedDataset:
        return ZonedDataset(
            RAW,
            f"{self.name}/photos",
            "photos.csv",
            f"{self.display_name} photo records as landed in the raw zone, unchanged.",
            owners=(PLATFORM_OWNER, f"partner:{self.name}"),
            contract_id=self.contract_id,
        )

    @property
    def training_set(self) -> ZonedDataset:
        return ZonedDataset(
            CURATED,
            f"{self.name}/smile_training_set",
            "training_set.csv",
            "Image embeddings, the smiling label and row provenance, deduplicated; identifiers, demographics and location dropped.",
        )

    @property
    def model(self) -> ZonedDataset:
        return ZonedDataset(
            MODELS,
            f"{self.name}/smile-classifier",
            "model.joblib",
            "Logistic-regression smile classifier over image embeddings (scikit-learn).",
        )

    @property
    def model_card(self) -> ZonedDataset:
        return ZonedDataset(
            MODELS,
            f"{self.name}/smile-classifier/model-card",
            "model_card.md",
            "Model card: training data, sources and their contracts, gate decision, evaluation.",
        )

    @property
    def dag_ids(self) -> tuple[str, str, str]:
        return (f"ingest_partner_drop__{self.name}", f"build_training_set__{self.name}", f"train_model__{self.name}")


PARTNERS: dict[str, Partner] = {
    p.name: p
    for p in (
        Partner(
            name="acme",
            display_name="ACME Stock Photos",
            description="Licensed stock photos; models signed releases permitting AI training.",
            contract_id="acme-stock-photos",
            seed=7,
            kind="stock",
            contact="data-partnerships@acme.example",
        ),
        Partner(
            name="lovematch",
            display_name="LoveMatch (dating app)",
            description="Dating-app profile photos with demographic and location fields.",
            contract_id="lovematch-photos",
            seed=11,
            kind="dating",
            contact="privacy@lovematch.example",
        ),
    )
}

# Tasks of the pipeline, as the OpenLineage job names the provider gives them (dag_id.task_id).
TRANSFER_TASK = "transfer_drop"
CURATE_TASK = "curate_features"
GATE_TASK = "contract_gate"
TRAIN_TASK = "train"


def job_names(partner: Partner) -> dict[str, str]:
    ingest, build, train = partner.dag_ids
    return {
        "transfer": f"{ingest}.{TRANSFER_TASK}",
        "curate": f"{build}.{CURATE_TASK}",
        "gate": f"{train}.{GATE_TASK}",
        "train": f"{train}.{TRAIN_TASK}",
    }
