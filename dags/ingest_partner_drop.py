"""DAG ``ingest_partner_drop__<partner>``: land each partner's daily drop in the raw zone.

One DAG per partner (see ``dags/example_pipeline/pipeline.py``), scheduled daily.  Its single task
copies the drop into the raw zone and reports ``partner-drops:<partner>/photos`` ->
``raw-zone:<partner>/photos`` through the OpenLineage provider; the raw dataset's Asset
triggers ``build_training_set__<partner>``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the example's own package lives beside its DAGs
    sys.path.append(str(Path(__file__).resolve().parent))

from airflow.sdk import DAG, Asset

from example_pipeline.operators import PartnerDropTransferOperator
from example_pipeline.pipeline import PARTNERS, TRANSFER_TASK

for partner in PARTNERS.values():
    ingest_dag_id = partner.dag_ids[0]
    with DAG(
        dag_id=ingest_dag_id,
        description=f"Land {partner.display_name}'s drop in the raw zone",
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["lineage", "ingest", f"partner:{partner.name}"],
        default_args={"owner": "ml-platform", "retries": 2},
        doc_md=__doc__,
    ) as dag:
        PartnerDropTransferOperator(
            task_id=TRANSFER_TASK,
            partner=partner.name,
            inlets=[Asset(uri=partner.drop.asset_uri, name=partner.drop.id)],
            outlets=[Asset(uri=partner.raw.asset_uri, name=partner.raw.id)],
        )
    globals()[ingest_dag_id] = dag
