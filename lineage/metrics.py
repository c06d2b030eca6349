"""Prometheus metrics (the official client), shared by the API and the derivation workers.

Each process keeps its own registry (:data:`REGISTRY`) and serves it on ``/metrics``
(:func:`exposition`); a scraper sums the counters over pods.  Names follow Prometheus
conventions (``lineage_`` prefix, ``_total`` counters, ``_seconds`` units).

**No user data in labels.**  Every label value comes from a fixed set written in this module
(endpoints, rejection reasons, gate outcomes, the gate's reason codes); nothing a client sends
(job, dataset or namespace names, principals, messages) ever becomes a label, so the text is
safe to scrape without a credential and its cardinality is bounded.

The metrics:

==========================================  =====================================================
``lineage_events_accepted_total``           events acknowledged (stored or already stored), by ``endpoint`` (single, batch)
``lineage_events_rejected_total``           events refused, by ``endpoint`` and ``reason`` (:data:`REJECT_REASONS`);
                                            a request refused as a whole counts once
``lineage_ingest_request_seconds``          ingest request latency (histogram), by ``endpoint``
``lineage_derivation_lag_seconds``          age of the oldest acknowledged event not derived yet (read at scrape time)
``lineage_derivation_queued_events``        events acknowledged but not derived yet (read at scrape time)
``lineage_derivation_refused_events``       events acknowledged whose graph cannot be derived (``derive_refusals``;
                                            read at scrape time): missing from every answer until dealt with
``lineage_store_up``                        1 if this scrape could read the two gauges above from the store, else 0
``lineage_events_derived_total``            events this process derived
``lineage_derive_batch_seconds``            time to derive one claimed batch (histogram)
``lineage_group_commit_events``             single-event requests that shared one commit (histogram)
``lineage_gate_decisions_total``            final gate decisions, by ``outcome`` (allowed, blocked)
``lineage_gate_blocks_total``               blocked decisions, by ``reason`` (each code of :data:`GATE_CODES` once per decision)
==========================================  =====================================================

The derivation gauges are read from the shared store on every scrape (a short timeout; on
failure they are left out and ``lineage_store_up`` is 0), so each API replica and each
``lineage derive`` process reports the same, current value rather than a number only the
process that derived last would know.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

ENDPOINTS = ("single", "batch")
#: Why an event (or an ingest request) was refused: a fixed set, never the error's text.
REJECT_REASONS = ("invalid_event", "out_of_scope", "too_large", "store_refused", "store_unavailable",
                  "unauthenticated", "forbidden", "other")
#: The gate's reason codes (``lineage.gate.decision.Reason.code``); any other code counts as ``other``.
GATE_CODES = ("erased_source", "unknown_purpose", "no_inputs", "unknown_provenance", "no_contract", "lineage_too_deep",
              "ambiguous_dataset", "not_approved", "revoked", "expired", "purpose_prohibited", "purpose_not_permitted",
              "category_not_permitted", "expectation_failed", "store_unavailable", "gate_error", "lineage_pending", "lineage_refused", "other")
_INGEST_PATHS = {"/api/v1/lineage": "single", "/api/v1/lineage/batch": "batch"}

events_accepted = Counter("lineage_events_accepted", "Events acknowledged (stored, or already stored).", ["endpoint"],
                          registry=REGISTRY)
events_rejected = Counter("lineage_events_rejected", "Events refused, by reason (a request refused whole counts once).",
                          ["endpoint", "reason"], registry=REGISTRY)
ingest_seconds = Histogram("lineage_ingest_request_seconds", "Ingest request latency, from request to response.", ["endpoint"],
                           registry=REGISTRY, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
events_derived = Counter("lineage_events_derived", "Events whose graph was derived by this process.", registry=REGISTRY)
derive_batch_seconds = Histogram("lineage_derive_batch_seconds", "Time to derive one claimed batch.", registry=REGISTRY,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
group_commit_events = Histogram("lineage_group_commit_events", "Single-event requests committed together.", registry=REGISTRY,
                                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
gate_decisions = Counter("lineage_gate_decisions", "Final gate decisions, by outcome.", ["outcome"], registry=REGISTRY)
gate_blocks = Counter("lineage_gate_blocks", "Blocked gate decisions, by reason code (each code once per decision).",
                      ["reason"], registry=REGISTRY)

# Every series exists from the start at 0, so a rate() over the first event is right and a
# dashboard shows the whole fixed set.
for _e in ENDPOINTS:
    events_accepted.labels(_e)
    ingest_seconds.labels(_e)
    for _r in REJECT_REASONS:
        events_rejected.labels(_e, _r)
for _o in ("allowed", "blocked"):
    gate_decisions.labels(_o)
for _c in GATE_CODES:
    gate_blocks.labels(_c)


# -- ingest ---------------------------------------------------------------------------------------
def reject_reason(exc: BaseException) -> str:
    """The fixed reason an ingest request was refused for (never the error's text)."""
    from lineage.auth.errors import OutOfScope, Unauthenticated
    from lineage.errors import BadRequest, Forbidden, InvalidEvent, PayloadTooLarge, StoreRefused, StoreUnavailable

    for kind, reason in ((Unauthenticated, "unauthenticated"), (OutOfScope, "out_of_scope"), (Forbidden, "forbidden"),
                         (PayloadTooLarge, "too_large"), (StoreRefused, "store_refused"), (InvalidEvent, "invalid_event"),
                         (BadRequest, "invalid_event"), (StoreUnavailable, "store_unavailable")):
        if isinstance(exc, kind):
            return reason
    return "other"


def ingest_refused(method: str, path: str, exc: BaseException) -> None:
    """Count a whole ingest request refused with ``exc`` (called by the app's error handlers;
    requests to other routes are ignored)."""
    endpoint = _INGEST_PATHS.get(path)
    if endpoint is not None and method == "POST":
        events_rejected.labels(endpoint, reject_reason(exc)).inc()


def batch_ingested(accepted: int, rejected: list) -> None:
    """Count a batch's outcome: ``accepted`` events, and each ``(index, InvalidEvent)`` refused."""
    from lineage.api.security import ScopeProblem

    events_accepted.labels("batch").inc(accepted)
    for _, exc in rejected:
        problems = getattr(exc, "problems", ())
        if any(isinstance(p, ScopeProblem) for p in problems):
            reason = "out_of_scope"
        elif any(p.path == "$" and p.reason.startswith("the store refused") for p in problems):
            reason = "store_refused"  # lineage.store.batch.ingest_batch's per-event refusal
        else:
            reason = "invalid_event"
        events_rejected.labels("batch", reason).inc()


class IngestTimer:
    """ASGI middleware: observes :data:`ingest_seconds` for every POST to an ingest route,
    whatever its answer (an answer refused at authentication is timed too)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        endpoint = _INGEST_PATHS.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            ingest_seconds.labels(endpoint).observe(time.perf_counter() - started)


# -- the gate -------------------------------------------------------------------------------------
def gate_decided(decision: Any) -> None:
    """Count one final gate decision and, when blocked, each of its reason codes once."""
    if decision.allowed:
        gate_decisions.labels("allowed").inc()
        return
    gate_decisions.labels("blocked").inc()
    for code in {r.code if r.code in GATE_CODES else "other" for r in decision.reasons}:
        gate_blocks.labels(code).inc()


def counted_gate(check: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``check_gate``: count the decision it returns, unless it is the provisional
    answer of a check whose validation runs on the worker (counted when it completes)."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        decision = check(*args, **kwargs)
        deferred = kwargs.get("deferred")
        if not (deferred is not None and "plan" in deferred and decision.allowed):
            gate_decided(decision)
        return decision

    return wrapper


# -- derivation, read from the store at scrape time ----------------------------------------------
STORE_TIMEOUT = 2.0  # seconds a scrape waits for the store before reporting lineage_store_up 0


class _StoreGauges:
    """A collector over one store, built per scrape (the registry is per process, the store per app)."""

    def __init__(self, db, timeout: float) -> None:
        self.db = db
        self.timeout = timeout

    def collect(self):
        up = GaugeMetricFamily("lineage_store_up", "1 if this scrape read the derivation gauges from the store.")
        try:
            lag, queued, refused = derivation_state(self.db, self.timeout)
        except Exception:  # the store is slow or down: leave the gauges out rather than report a stale value
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("lineage_derivation_lag_seconds",
                                "Age of the oldest acknowledged event whose graph is not derived yet (0: none).", value=lag)
        yield GaugeMetricFamily("lineage_derivation_queued_events", "Events acknowledged but not derived yet.", value=queued)
        yield GaugeMetricFamily("lineage_derivation_refused_events",
                                "Events acknowledged whose graph could not be derived (kept in derive_refusals).", value=refused)


def derivation_state(db, timeout: float = STORE_TIMEOUT) -> tuple[float, int, int]:
    """``(lag seconds, queued events, refused events)`` from the store, waiting at most ``timeout`` for a
    connection and for the statements (a slow store makes a scrape fail fast, not hang)."""
    from lineage.store.derive import lag_seconds, pending_events, refused_events

    with db.connection(timeout=timeout) as conn:
        conn.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
        return lag_seconds(conn), pending_events(conn), refused_events(conn)


def exposition(db=None, timeout: float = STORE_TIMEOUT) -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type; with ``db``, followed by
    the derivation gauges read from that store now."""
    text = generate_latest(REGISTRY)
    if db is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_StoreGauges(db, timeout))
        text += generate_latest(scrape)
    return text, CONTENT_TYPE_LATEST
