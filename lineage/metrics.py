"""Prometheus metrics (the official client), shared by the API and the derivation workers.

Each process keeps its own registry (:data:`REGISTRY`) and serves it on ``/metrics``; a
scraper sums over pods.  Metric names follow Prometheus conventions (``lineage_`` prefix,
``_total`` counters, ``_seconds`` units).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

events_derived = Counter("lineage_events_derived", "Events whose graph was derived by this process.", registry=REGISTRY)
derive_batch_seconds = Histogram("lineage_derive_batch_seconds", "Time to derive one claimed batch.", registry=REGISTRY,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
group_commit_events = Histogram("lineage_group_commit_events", "Single-event requests committed together.", registry=REGISTRY,
                                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
