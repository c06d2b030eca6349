"""Build OpenLineage events as plain dicts: for tests, benchmarks and examples.

Events are spec 2-0-2 RunEvents with the facets real producers send (schema, dataSource,
nominalTime, parent).  Run ids are deterministic (uuid5 of job and run number), like
Airflow's provider derives them, so regenerating a sample gives the same events.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from lineage import PRODUCER

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_BASE = "https://openlineage.io/spec/facets/1-0-1/"
_NS = uuid.UUID("5b1d4a2e-0d9c-4f5e-9a51-0c0ffee00001")


def run_id(job: str, n: int) -> str:
    return str(uuid.uuid5(_NS, f"{job}#{n}"))


def _facet(facet: str, **body: Any) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": f"{FACET_BASE}{facet}.json#/$defs/{facet}", **body}


def dataset(namespace: str, name: str, fields: list[tuple[str, str]] | None = None, source: str | None = None) -> dict:
    facets: dict[str, Any] = {}
    if fields:
        facets["schema"] = _facet("SchemaDatasetFacet", fields=[{"name": n, "type": t} for n, t in fields])
    if source:
        facets["dataSource"] = _facet("DatasourceDatasetFacet", name=source, uri=f"{source}://{namespace}")
    return {"namespace": namespace, "name": name, "facets": facets}


def run_event(
    event_type: str,
    job: tuple[str, str],
    run: str,
    inputs: list[dict] = (),  # type: ignore[assignment]
    outputs: list[dict] = (),  # type: ignore[assignment]
    at: datetime | None = None,
    parent: tuple[str, str, str] | None = None,
    extra_run_facets: dict | None = None,
) -> dict:
    at = at or datetime(2026, 11, 1, tzinfo=timezone.utc)
    facets: dict[str, Any] = {
        "nominalTime": _facet("NominalTimeRunFacet", nominalStartTime=at.isoformat().replace("+00:00", "Z")),
    }
    if parent:
        pns, pname, prun = parent
        facets["parent"] = _facet("ParentRunFacet", run={"runId": prun}, job={"namespace": pns, "name": pname})
    facets.update(extra_run_facets or {})
    return {
        "eventType": event_type,
        "eventTime": at.isoformat().replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run, "facets": facets},
        "job": {"namespace": job[0], "name": job[1], "facets": {}},
        "inputs": list(inputs),
        "outputs": list(outputs),
    }


def run_pair(job: tuple[str, str], n: int, inputs: list[dict], outputs: list[dict], start: datetime) -> list[dict]:
    """START and COMPLETE events of run ``n`` of ``job``, a minute apart."""
    rid = run_id(f"{job[0]}:{job[1]}", n)
    return [
        run_event("START", job, rid, inputs, outputs, start),
        run_event("COMPLETE", job, rid, inputs, outputs, start + timedelta(minutes=1)),
    ]
