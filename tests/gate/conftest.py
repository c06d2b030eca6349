"""Fixtures for gate tests: the demo pipeline's lineage in a fresh store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test modules here import `gate_helpers` by name.
sys.path.insert(0, str(Path(__file__).parent))

from gate_helpers import ingest  # noqa: E402


@pytest.fixture(autouse=True)
def own_home(tmp_path, monkeypatch):
    """Each test its own LINEAGE_HOME: refusals kept pending by one test must not reach another's store."""
    monkeypatch.setenv("LINEAGE_HOME", str(tmp_path / "lineage-home"))
    return tmp_path / "lineage-home"


@pytest.fixture
def pipeline(db):
    """Two partner drops → raw zone → curated training set → model, as OpenLineage events."""
    from example_pipeline.sample import ml_pipeline_sample

    ingest(db, ml_pipeline_sample())
    return db
