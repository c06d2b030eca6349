"""`python -m lineage.demo` (what `make demo` runs) tells the whole story, and running it twice is safe."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo(home, port: int) -> str:
    env = {**os.environ, "LINEAGE_PORT": str(port)}
    env.pop("LINEAGE_DATABASE_URL", None)  # the demo runs on its own embedded PostgreSQL
    env.pop("LINEAGE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "lineage.demo", "--home", str(home)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_demo_tells_the_story_and_is_safe_to_rerun(tmp_path):
    home, port = tmp_path / "home", _free_port()
    first = _demo(home, port)
    assert "acme-stock-photos@2      approved" in first
    # Who approved what: one steward for ACME; LoveMatch's special categories needed two (four eyes).
    assert "registered by data-requests@example.com; approved by dpo@example.com\n" in first
    assert "registered by data-requests@example.com; approved by dpo@example.com + privacy-counsel@example.com" in first
    assert "event(s) waiting in" in first and "nothing was lost" in first
    assert "stored, 0 duplicate, 0 rejected" in first
    assert "train_model__acme                success" in first
    assert "Training BLOCKED for train_model__lovematch.train" in first
    assert "[purpose_prohibited] contract `lovematch-photos@3` prohibits `train_ai_system`" in first
    assert "=> models:acme/smile-classifier was trained from this source." in first
    assert "=> no model is built from this source: training stopped at the gate." in first
    assert (home / "lake" / "models" / "acme" / "smile-classifier" / "model-card" / "model_card.md").exists()
    assert not list((home / "spool").glob("pending-*.ndjson"))

    assert not (home / "pg" / "postmaster.pid").exists(), "the demo must not leave its PostgreSQL running"

    second = _demo(home, port)
    assert "Training BLOCKED for train_model__lovematch.train" in second
    assert "=> models:acme/smile-classifier was trained from this source." in second
    assert not (home / "pg" / "postmaster.pid").exists()
