"""The ``erase_source`` DAG deletes only inside the pipeline's storage.

A manifest's locations come from ``dataSource`` facets that producers send, so an event could
name ``file:///etc`` or a path that climbs out with ``..``; the DAG must refuse those (the item
stays outstanding) rather than delete them.  Checked in a child process configured for
Airflow, as the DAG runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lineage.airflow import runner
from lineage.config import Settings

pytestmark = [pytest.mark.airflow]

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "erase_source.py"

PROBE = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("erase_source_dag", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
root = Path(sys.argv[2]).resolve()
print(json.dumps({loc: (str(p) if (p := mod.local_path(loc, root)) else None) for loc in json.loads(sys.argv[3])}))
"""


def test_only_file_locations_under_the_storage_root_are_deleted(tmp_path, airflow_home):
    root = tmp_path / "home"
    (root / "lake" / "models").mkdir(parents=True)
    inside = (root / "lake" / "models" / "m").as_uri()
    cases = {
        inside: str((root / "lake" / "models" / "m").resolve()),
        (root / "lake" / "a b%20c").as_uri(): str((root / "lake" / "a b%20c").resolve()),
        root.as_uri(): None,  # the whole storage root, never
        "file:///etc/passwd": None,
        root.as_uri() + "/lake/../../escaped": None,
        "file://other-host" + str(root / "lake"): None,
        "s3://bucket/acme/photos": None,
        "postgres://db:5432/public.photos": None,
        "": None,
    }
    env = {**os.environ, **runner.airflow_env(Settings(home=root), airflow_home=airflow_home)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(DAG_FILE), str(root), json.dumps(list(cases))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == cases
