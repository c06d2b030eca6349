"""A deterministic synthetic OpenLineage workload for the ingest and query benchmark.

Shape of the data:

* The store holds many independent *pipelines*.  Pipeline ``p`` is a layered DAG of
  ``layers`` layers of ``width`` jobs (default 30 x 3 = 90 jobs).  A job in layer 0 reads 2-3
  of the pipeline's 3 source tables; a job in layer ``k`` reads 2-3 of the tables written by
  layer ``k - 1``.  Every job writes 1-2 tables of its own.  So every pipeline is 30 jobs long,
  and a depth-20 answer is bounded by one pipeline however large the store grows.
* Each pipeline is executed ``runs`` times (daily, default 10).  One execution is a START and
  a COMPLETE event per job, a minute apart, in layer order; each run has its own run id and a
  ``parent`` facet naming the pipeline's execution, as Airflow's provider emits them.
* Events carry facets real producers send: ``schema`` (3-4 typed columns) on every dataset,
  ``outputStatistics`` on outputs at COMPLETE, ``nominalTime`` and ``parent`` on the run,
  ``jobType`` on the job.  A serialised event is 2.4-4.1 KB, 3.16 KB on average.
* The event stream is pipeline after pipeline, all executions of one pipeline in a row
  (:meth:`Workload.events`).  The number of pipelines, jobs and tables therefore grows with
  the number of events, as it does in a real deployment that onboards pipelines over time.

Everything is derived from ``seed`` with :class:`random.Random`, so the same arguments give
byte-identical events.  Events are spec-valid (OpenLineage 2-0-2): ``eventTime`` in UTC with a
``Z``, URI ``producer`` and ``schemaURL``, every facet with ``_producer`` and ``_schemaURL``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

import msgspec

PRODUCER = "https://github.com/lineage-gate/bench/0.1"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = {
    "schema": "1-2-0/SchemaDatasetFacet",
    "outputStatistics": "1-0-2/OutputStatisticsOutputDatasetFacet",
    "nominalTime": "1-0-1/NominalTimeRunFacet",
    "parent": "1-2-0/ParentRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet",
}
_T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
_TYPES = ("bigint", "varchar", "timestamp", "double precision", "boolean", "date", "numeric(18,2)", "jsonb")
_WORDS = ("user", "order", "photo", "session", "event", "label", "score", "country", "device", "price",
          "consent", "partner", "embedding", "campaign", "region", "source", "status", "amount", "cohort", "model")
_WAREHOUSES = 6


def _facet(key: str, **body: object) -> dict:
    path = _FACETS[key]
    name = path.split("/", 1)[1]
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/{path}.json#/$defs/{name}", **body}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Table:
    namespace: str
    name: str
    columns: tuple[tuple[str, str, str], ...]  # (name, type, description)

    @property
    def node_id(self) -> str:
        return f"dataset:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Job:
    namespace: str
    name: str
    layer: int
    inputs: tuple[Table, ...]
    outputs: tuple[Table, ...]


@dataclass(frozen=True)
class Pipeline:
    index: int
    namespace: str
    sources: tuple[Table, ...]
    jobs: tuple[Job, ...]  # in layer order
    sinks: tuple[Table, ...]  # tables written by the last layer


class Workload:
    """The event stream and its structure; see the module docstring."""

    def __init__(self, seed: int = 42, layers: int = 30, width: int = 3, runs: int = 10) -> None:
        self.seed, self.layers, self.width, self.runs = seed, layers, width, runs
        self.events_per_execution = 2 * layers * width
        self.events_per_pipeline = runs * self.events_per_execution
        self._encoder = msgspec.json.Encoder()

    # -- structure ---------------------------------------------------------------------------
    def _rng(self, *parts: int) -> random.Random:
        return random.Random(f"{self.seed}/" + "/".join(map(str, parts)))

    def _table(self, rng: random.Random, namespace: str, name: str) -> Table:
        cols = []
        for c in range(rng.randint(3, 4)):
            w1, w2 = rng.choice(_WORDS), rng.choice(_WORDS)
            cols.append((f"{w1}_{w2}", rng.choice(_TYPES), f"{w1} {w2}" if c == 0 else ""))
        return Table(namespace, name, tuple(cols))

    def pipeline(self, p: int) -> Pipeline:
        rng = self._rng(p)
        ns = f"pipeline-{p:05d}"
        wh = f"postgres://warehouse-{p % _WAREHOUSES}.example.com:5432"
        sources = tuple(self._table(rng, f"s3://partner-drops-{p % 4}", f"drops/p{p:05d}/source_{s}") for s in range(3))
        pool: tuple[Table, ...] = sources
        jobs: list[Job] = []
        for layer in range(self.layers):
            written: list[Table] = []
            for j in range(self.width):
                inputs = tuple(rng.sample(pool, min(len(pool), rng.randint(2, 3))))
                outputs = tuple(
                    self._table(rng, wh, f"analytics.p{p:05d}_l{layer:02d}_j{j}_t{o}") for o in range(rng.randint(1, 2))
                )
                jobs.append(Job(ns, f"transform_l{layer:02d}_j{j}", layer, inputs, outputs))
                written.extend(outputs)
            pool = tuple(written)
        return Pipeline(p, ns, sources, tuple(jobs), pool)

    def complete_pipelines(self, n_events: int) -> int:
        """How many pipelines have their whole structure (first execution) in the first ``n_events``."""
        full, rest = divmod(n_events, self.events_per_pipeline)
        return full + (1 if rest >= self.events_per_execution else 0)

    # -- events ------------------------------------------------------------------------------
    def _dataset(self, t: Table, stats: tuple[int, int] | None = None) -> dict:
        fields = [{"name": n, "type": ty, "description": ds} if ds else {"name": n, "type": ty} for n, ty, ds in t.columns]
        d: dict = {"namespace": t.namespace, "name": t.name, "facets": {"schema": _facet("schema", fields=fields)}}
        if stats is not None:
            d["outputFacets"] = {"outputStatistics": _facet("outputStatistics", rowCount=stats[0], size=stats[1])}
        return d

    def pipeline_events(self, p: int) -> Iterator[dict]:
        pipe = self.pipeline(p)
        for r in range(self.runs):
            rng = self._rng(p, r)
            start = _T0 + timedelta(days=r, minutes=(p * 7) % 1440)
            dag_run = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            parent = _facet("parent", run={"runId": dag_run}, job={"namespace": pipe.namespace, "name": "daily"})
            nominal = _facet("nominalTime", nominalStartTime=_ts(start))
            for job in pipe.jobs:
                run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                t_start = start + timedelta(minutes=2 * job.layer, seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
                t_end = t_start + timedelta(seconds=rng.randint(20, 100), milliseconds=rng.randint(0, 999))
                job_dict = {
                    "namespace": job.namespace,
                    "name": job.name,
                    "facets": {
                        "jobType": _facet("jobType", processingType="BATCH", integration="AIRFLOW", jobType="TASK"),
                    },
                }
                inputs = [self._dataset(t) for t in job.inputs]
                for event_type, at in (("START", t_start), ("COMPLETE", t_end)):
                    stats = None
                    outputs = []
                    for t in job.outputs:
                        if event_type == "COMPLETE":
                            rows = rng.randint(1_000, 5_000_000)
                            stats = (rows, rows * rng.randint(40, 400))
                        outputs.append(self._dataset(t, stats))
                    yield {
                        "eventType": event_type,
                        "eventTime": _ts(at),
                        "producer": PRODUCER,
                        "schemaURL": SCHEMA_URL,
                        "run": {"runId": run_id, "facets": {"nominalTime": nominal, "parent": parent}},
                        "job": job_dict,
                        "inputs": inputs,
                        "outputs": outputs,
                    }

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[dict]:
        """Events ``start`` up to ``stop`` (exclusive) of the stream, as dicts."""
        p, skip = divmod(start, self.events_per_pipeline)
        i = start
        while stop is None or i < stop:
            for ev in self.pipeline_events(p):
                if skip:
                    skip -= 1
                    continue
                if stop is not None and i >= stop:
                    return
                yield ev
                i += 1
            p += 1

    def encode(self, event: dict) -> bytes:
        """One event as compact JSON bytes, as a client would send it."""
        return self._encoder.encode(event)

    def serialized(self, start: int, stop: int) -> list[bytes]:
        """Events ``start:stop`` serialised to compact JSON bytes."""
        return [self.encode(ev) for ev in self.events(start, stop)]
