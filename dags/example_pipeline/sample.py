"""The example pipeline as a handful of OpenLineage events (two partner drops, a curated
training set, a model), for tests and quick looks: no Airflow needed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lineage.samples import dataset, run_pair


def ml_pipeline_sample() -> list[dict]:
    """A small ML pipeline: two partner drops → raw zone → curated training set → model."""
    t0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
    photo = [("photo_uri", "string"), ("user_id", "string"), ("consent_flag", "boolean")]
    acme = dataset("partner-drops", "acme/photos", photo, "s3")
    love = dataset("partner-drops", "lovematch/photos", photo + [("ethnicity", "string"), ("lat", "double"), ("lon", "double")], "s3")
    raw_acme = dataset("raw-zone", "raw.acme_photos", photo, "postgres")
    raw_love = dataset("raw-zone", "raw.lovematch_photos", photo, "postgres")
    curated = dataset("curated", "training.face_photos_v1", [("photo_uri", "string"), ("label", "string")], "postgres")
    model = dataset("models", "face-embedder", [("artifact", "string")], "file")
    events: list[dict] = []
    events += run_pair(("ml-pipeline", "ingest_partner_drop.acme"), 1, [acme], [raw_acme], t0)
    events += run_pair(("ml-pipeline", "ingest_partner_drop.lovematch"), 1, [love], [raw_love], t0)
    events += run_pair(("ml-pipeline", "build_training_set.curate"), 1, [raw_acme, raw_love], [curated], t0 + timedelta(hours=1))
    events += run_pair(("ml-pipeline", "train_model.train"), 1, [curated], [model], t0 + timedelta(hours=2))
    return events
