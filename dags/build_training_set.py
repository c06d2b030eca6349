"""DAG ``build_training_set__<partner>``: curate training features from the raw zone.

Scheduled on the raw-zone Asset that ``ingest_partner_drop__<partner>`` updates, so every new
drop rebuilds the training set.  Reports ``raw-zone:<partner>/photos`` ->
``curated:<partner>/smile_training_set``; the training set's Asset triggers
``train_model__<partner>``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the example's own package lives beside its DAGs
    sys.path.append(str(Path(__file__).resolve().parent))

from airflow.sdk import DAG, Asset

from example_pipeline.operators import CurateTrainingSetOperator
from example_pipeline.pipeline import CURATE_TASK, PARTNERS

for partner in PARTNERS.values():
    build_dag_id = partner.dag_ids[1]
    with DAG(
        dag_id=build_dag_id,
        description=f"Curate the smile training set from {partner.display_name}'s raw photos",
        schedule=[Asset(uri=partner.raw.asset_uri, name=partner.raw.id)],
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["lineage", "curate", f"partner:{partner.name}"],
        default_args={"owner": "ml-platform", "retries": 2},
        doc_md=__doc__,
    ) as dag:
        CurateTrainingSetOperator(
            task_id=CURATE_TASK,
            partner=partner.name,
            outlets=[Asset(uri=partner.training_set.asset_uri, name=partner.training_set.id)],
        )
    globals()[build_dag_id] = dag
