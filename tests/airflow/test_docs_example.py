"""The operator example in docs/airflow.md runs as written, with its own (non-demo) namespaces.

The code block is read out of the document at test time, so the doc and this test cannot
drift: it is saved as the only DAG file of a DAGs folder and run with ``dag.test()`` against a
live server; the store must then hold its START and COMPLETE with the datasets it declared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lineage.airflow import runner

pytestmark = [pytest.mark.airflow]

DOC = Path(__file__).resolve().parents[2] / "docs" / "airflow.md"


def doc_example() -> str:
    """The first ```python block of section 3 of docs/airflow.md."""
    text = DOC.read_text()
    section = text[text.index("### 3. Make your tasks report their datasets"):text.index("### 4.")]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_operator_example_runs_as_written_and_reports_its_datasets(live_server, db, tokens, airflow_home, tmp_path):
    from lineage.config import Settings

    code = doc_example()
    assert "partner" not in code and "example_pipeline" not in code, "the example must not lean on the demo"
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "sales_features.py").write_text(code)
    data = tmp_path / "sales"
    data.mkdir()
    (data / "orders.csv").write_text("order_id,customer_id,amount\n1,c1,10.5\n2,c2,3.0\n3,c1,4.5\n")

    settings = Settings(home=tmp_path / "home", token=tokens("sales-airflow", "emitter"))
    env = runner.airflow_env(settings, server_url=live_server.url, dags_folder=dags, airflow_home=airflow_home)
    env["SALES_DATA"] = str(data)
    result = runner.run(["sales_features"], env, log_path=tmp_path / "run.log")
    assert [r["state"] for r in result["runs"]] == ["success"], (tmp_path / "run.log").read_text()[-3000:]
    assert (data / "customer_totals.csv").read_text().splitlines() == ["customer_id,amount", "c1,15.0", "c2,3.0"]

    with db.connection() as conn:
        rows = conn.execute("SELECT payload FROM raw_events WHERE job_name = 'sales_features.customer_totals' "
                            "ORDER BY event_time, id").fetchall()
    events = {r[0]["eventType"]: r[0] for r in rows}
    assert {"START", "COMPLETE"} <= set(events), [r[0]["eventType"] for r in rows]
    complete = events["COMPLETE"]
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [("warehouse", "sales/orders")]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [("features", "sales/customer_totals")]
    orders, totals = complete["inputs"][0], complete["outputs"][0]
    assert [f["name"] for f in orders["facets"]["schema"]["fields"]] == ["order_id", "customer_id", "amount"]
    assert orders["facets"]["dataSource"]["uri"] == data.resolve().as_uri()
    assert orders["facets"]["ownership"]["owners"] == [{"name": "team:sales", "type": "team"}]
    assert totals["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert totals["facets"]["documentation"]["description"] == "Order totals per customer"
    assert not list(settings.spool_dir.glob("pending-*.ndjson")), "delivered, so nothing left in the spool"
