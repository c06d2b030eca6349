"""`python -m example_pipeline.demo` (what `make demo` runs) tells the whole story, and running it twice is safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo(home, port: int) -> str:
    env = {**os.environ, "LINEAGE_PORT": str(port), "PYTHONPATH": str(Path(__file__).parents[1] / "dags")}  # as `make demo` runs it
    env.pop("LINEAGE_DATABASE_URL", None)  # the demo runs on its own embedded PostgreSQL
    env.pop("LINEAGE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "example_pipeline.demo", "--home", str(home)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_demo_tells_the_story_and_is_safe_to_rerun(tmp_path):
    home, port = tmp_path / "home", _free_port()
    first = _demo(home, port)
    assert "acme-stock-photos@2      approved" in first
    # Who approved what, as the server recorded it from each principal's own API token: one
    # steward for ACME; LoveMatch's special categories needed two different ones (four eyes).
    requester = "registered by data-requests@example.com (token demo-requester)"
    dpo, counsel = "dpo@example.com (token demo-steward-dpo)", "privacy-counsel@example.com (token demo-steward-counsel)"
    assert f"{requester}; approved by {dpo}\n" in first
    assert f"{requester}; approved by {dpo} + {counsel}\n" in first
    assert "demo:in-process" not in first
    assert "lin_" not in first, "the demo must never print a token"
    for name in ("demo-requester", "demo-steward-dpo", "demo-steward-counsel"):
        assert (home / "tokens" / name).stat().st_mode & 0o077 == 0, "people's tokens are private to their owner"
    assert "event(s) waiting in" in first and "nothing was lost" in first
    assert "delivered, 0 rejected, 0 malformed put aside, 0 still pending" in first
    assert "train_model__acme                success" in first
    assert "Training BLOCKED for train_model__lovematch.train" in first
    assert "[purpose_prohibited] contract `lovematch-photos@3` prohibits `train_ai_system`" in first
    assert "=> models:acme/smile-classifier was trained from this source." in first
    assert "=> no model is built from this source: training stopped at the gate." in first
    assert (home / "lake" / "models" / "acme" / "smile-classifier" / "model-card" / "model_card.md").exists()
    assert not list((home / "spool").glob("pending-*.ndjson"))

    assert not (home / "pg" / "postmaster.pid").exists(), "the demo must not leave its PostgreSQL running"

    second = _demo(home, port)
    # Idempotent: the same tokens are reused and the same approvals shown, none added.
    assert f"{requester}; approved by {dpo}\n" in second
    assert f"{requester}; approved by {dpo} + {counsel}\n" in second
    assert "Training BLOCKED for train_model__lovematch.train" in second
    assert "=> models:acme/smile-classifier was trained from this source." in second
    assert not (home / "pg" / "postmaster.pid").exists()
