"""The gate operator under Airflow: a worker without ``LINEAGE_URL`` fails closed and says why;
one configured by an Airflow connection asks the server that connection names.

It must not fall back to anything local: no database URL is read, no embedded PostgreSQL is
started (the worker's ``LINEAGE_HOME`` gets no ``pg`` directory), and the failure names what
to set.
"""

from __future__ import annotations

import pytest

from lineage.airflow import runner

pytestmark = [pytest.mark.airflow]

DAG_FILE = '''
from datetime import datetime
from airflow.sdk import DAG
from lineage.airflow.gate import ContractGateOperator

with DAG("gate_only", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    ContractGateOperator(task_id="contract_gate", job="any-team:train.fit", inputs=["features:sales/customer_totals"])

with DAG("gate_by_connection", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag2:
    ContractGateOperator(task_id="contract_gate", job="any-team:train.by_conn", inputs=["features:sales/customer_totals"],
                         lineage_conn_id="lineage")
'''


def test_a_worker_without_lineage_url_is_blocked_with_what_to_set(airflow_home, tmp_path, monkeypatch):
    from lineage.config import Settings

    for name in ("LINEAGE_URL", "LINEAGE_TOKEN", *runner.DATABASE_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "gate_only.py").write_text(DAG_FILE)
    home = tmp_path / "worker-home"
    env = runner.airflow_env(Settings(home=home), server_url="http://127.0.0.1:9", dags_folder=dags, airflow_home=airflow_home)
    del env["LINEAGE_URL"]  # the transport still has its own URL; the gate has none
    # The server named by an Airflow connection (host = URL, password = token), here one that is down.
    env["AIRFLOW_CONN_LINEAGE"] = '{"conn_type": "http", "host": "http://127.0.0.1:9", "password": "lin_x"}'
    result = runner.run(["gate_only", "gate_by_connection"], env, log_path=tmp_path / "run.log")
    assert [r["state"] for r in result["runs"]] == ["failed", "failed"]
    decision = result["gate"]["any-team:train.fit"]
    assert decision["allowed"] is False
    assert "no lineage server is configured" in decision["decision"] and "LINEAGE_URL" in decision["decision"]
    assert not (home / "pg").exists(), "a worker must never start an embedded PostgreSQL"
    by_conn = result["gate"]["any-team:train.by_conn"]
    assert by_conn["allowed"] is False
    assert "could not be reached at http://127.0.0.1:9/api/v1/gate/check" in by_conn["decision"], by_conn
