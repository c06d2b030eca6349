"""Every DAG file imports without errors and parses in under 2 s (Airflow's own DagBag)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from example_pipeline.pipeline import PARTNERS

PARSE = r"""
import json, sys, time
import airflow  # import cost is Airflow's, not the DAG files'
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(sys.argv[1])
total = time.perf_counter() - t
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dag_ids),
    "total": total,
    "files": {s.file: s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration for s in bag.dagbag_stats},
    "schedules": {d: type(t).__name__ + ":" + str(getattr(t, "expression", "")) for d, t in ((d, bag.dags[d].timetable) for d in bag.dag_ids)},
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in ("great_expectations", "sklearn")),
}))
"""


@pytest.mark.airflow
def test_dags_import_and_parse_fast(airflow_home, tmp_path):
    from lineage.airflow import runner
    from lineage.config import Settings

    env = runner.airflow_env(Settings(home=tmp_path), airflow_home=airflow_home)
    out = subprocess.run(
        [sys.executable, "-c", PARSE, env["AIRFLOW__CORE__DAGS_FOLDER"]],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    expected = {d for p in PARTNERS.values() for d in p.dag_ids} | {"erase_source"}
    assert set(report["dags"]) == expected
    assert report["total"] < 2.0, report["files"]
    assert report["heavy"] == [], "DAG files must not import GX or scikit-learn at parse time"
    for p in PARTNERS.values():
        ingest, build, train = p.dag_ids
        assert report["schedules"][ingest].split(":")[1] in ("@daily", "0 0 * * *"), report["schedules"]
        assert report["schedules"][build].startswith("AssetTriggered")
        assert report["schedules"][train].startswith("AssetTriggered")
    assert report["schedules"]["erase_source"].split(":")[1] in ("@hourly", "0 * * * *"), report["schedules"]
