"""DAG ``train_model__<partner>``: contract gate, then training, then the model and its card.

Scheduled on the training-set Asset that ``build_training_set__<partner>`` updates.  The
contract gate runs first and fails closed: if the partner's contract does not permit
``train_ai_system`` (or the lineage server cannot be reached) the run fails at the gate with the
reasons, and nothing is trained.  Otherwise scikit-learn trains on the curated features and
the task reports ``curated:<partner>/smile_training_set`` -> ``models:<partner>/smile-classifier``
and its model card.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the example's own package lives beside its DAGs
    sys.path.append(str(Path(__file__).resolve().parent))

from airflow.sdk import DAG, Asset

from lineage.airflow.gate import ContractGateOperator
from example_pipeline.operators import TrainModelOperator
from example_pipeline.pipeline import GATE_TASK, PARTNERS, TRAIN_TASK, TRAINING_PURPOSE

for partner in PARTNERS.values():
    train_dag_id = partner.dag_ids[2]
    with DAG(
        dag_id=train_dag_id,
        description=f"Gate and train the smile classifier on {partner.display_name}'s data",
        schedule=[Asset(uri=partner.training_set.asset_uri, name=partner.training_set.id)],
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["lineage", "train", f"partner:{partner.name}"],
        default_args={"owner": "ml-platform", "retries": 1},
        doc_md=__doc__,
    ) as dag:
        gate = ContractGateOperator(
            task_id=GATE_TASK,
            job=f"{train_dag_id}.{TRAIN_TASK}",
            purpose=TRAINING_PURPOSE,
            inputs=[partner.training_set.id],
            data={partner.training_set.id: partner.training_set.resolved},  # the file, found when the task runs
        )
        train = TrainModelOperator(
            task_id=TRAIN_TASK,
            partner=partner.name,
            gate_task_id=GATE_TASK,
            outlets=[Asset(uri=partner.model.asset_uri, name=partner.model.id)],
        )
        gate >> train
    globals()[train_dag_id] = dag
