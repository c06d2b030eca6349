"""Parse and validate OpenLineage events (spec 2-0-x) into plain values.

The contract of this module:

* :func:`parse_event` takes one decoded JSON value and returns a :class:`ParsedEvent`, or raises
  :class:`~lineage.errors.InvalidEvent` listing each problem with a JSON path (``$.run.runId``).
  An event it accepts is valid against the official ``OpenLineage.json`` schema: required
  fields present and typed, ``runId`` a UUID, ``eventTime`` an RFC 3339 date-time with an
  offset, ``eventType`` one of the six known values, every facet an object carrying
  ``_producer`` and ``_schemaURL``.
* The event's identity is a hash of its canonical form (keys sorted, no whitespace), so the
  same event sent twice, however it was serialised, has the same :attr:`ParsedEvent.key`.
* Nothing here does I/O.  Validation uses msgspec (a C decoder) so the ingest path stays close
  to the speed of a raw ``COPY``.
"""

from __future__ import annotations

import gc
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

from lineage.errors import FieldProblem, InvalidEvent

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATES = ("COMPLETE", "ABORT", "FAIL")


# -- the shape checked by msgspec; facets are checked by hand so errors can name the facet key --
class _Dataset(msgspec.Struct):
    namespace: str
    name: str
    facets: dict[str, Any] = {}
    inputFacets: dict[str, Any] = {}
    outputFacets: dict[str, Any] = {}


class _Job(msgspec.Struct):
    namespace: str
    name: str
    facets: dict[str, Any] = {}


class _Run(msgspec.Struct):
    runId: uuid.UUID
    facets: dict[str, Any] = {}


class _Base(msgspec.Struct):
    eventTime: datetime
    producer: str
    schemaURL: str


class _RunEvent(_Base):
    run: _Run
    job: _Job
    eventType: Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"] | msgspec.UnsetType = msgspec.UNSET
    inputs: list[_Dataset] = []
    outputs: list[_Dataset] = []


class _JobEvent(_Base):
    job: _Job
    inputs: list[_Dataset] = []
    outputs: list[_Dataset] = []


class _DatasetEvent(_Base):
    dataset: _Dataset


@dataclass(slots=True)
class DatasetRef:
    """A dataset as one event mentions it."""

    namespace: str
    name: str
    fields: list[dict[str, Any]] | None  # from the `schema` facet, when present
    version: str | None  # from the `version` (datasetVersion) facet, when present
    source: str | None  # from the `dataSource` facet
    description: str | None  # from the `documentation` facet


@dataclass(slots=True)
class ParsedEvent:
    """A validated event and the facts the store derives from it."""

    key: uuid.UUID  # identity: hash of the canonical form
    kind: Literal["run", "job", "dataset"]
    event_type: str | None
    event_time: datetime  # timezone-aware
    producer: str
    schema_url: str
    payload: bytes  # canonical JSON
    run_id: uuid.UUID | None = None
    job_namespace: str | None = None
    job_name: str | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    dataset: DatasetRef | None = None  # DatasetEvent only
    parent_run_id: uuid.UUID | None = None
    parent_job: tuple[str, str] | None = None
    nominal_start: datetime | None = None
    nominal_end: datetime | None = None
    job_description: str | None = None
    job_type: str | None = None
    job_location: str | None = None

    @property
    def raw(self) -> dict[str, Any]:
        return msgspec.json.decode(self.payload)


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


def decode_body(body: bytes) -> Any:
    """Decode a JSON document; raise :class:`InvalidEvent` at ``$`` if it is not JSON."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidEvent([FieldProblem("$", f"not valid JSON: {exc}")]) from None


def _problem_from_msgspec(exc: msgspec.ValidationError) -> FieldProblem:
    text = str(exc)
    reason, sep, where = text.rpartition(" - at `")
    if not sep:
        reason, path = text, "$"
    else:
        path = where.rstrip("`")
    if reason.startswith("Object missing required field `"):
        missing = reason.split("`")[1]
        return FieldProblem(f"{path}.{missing}", "required field is missing")
    if path.endswith("eventTime"):
        return FieldProblem(path, "must be an RFC 3339 date-time with an offset, e.g. 2026-11-26T10:00:00Z")
    if reason == "Invalid UUID":
        return FieldProblem(path, "must be a UUID")
    if reason.startswith("Invalid enum value"):
        return FieldProblem(path, f"{reason}; expected one of {', '.join(EVENT_TYPES)}")
    return FieldProblem(path, reason)


def _check_facets(facets: dict[str, Any], path: str, problems: list[FieldProblem]) -> None:
    for key, facet in facets.items():
        if not isinstance(facet, dict):
            problems.append(FieldProblem(f"{path}.{key}", "a facet must be a JSON object"))
            continue
        for required in ("_producer", "_schemaURL"):
            value = facet.get(required)
            if not isinstance(value, str):
                reason = "required facet field is missing" if value is None else "must be a string"
                problems.append(FieldProblem(f"{path}.{key}.{required}", reason))


def _check_uri(value: str, path: str, problems: list[FieldProblem]) -> None:
    scheme, sep, rest = value.partition(":")
    if not sep or not scheme or not scheme[0].isalpha() or not rest:
        problems.append(FieldProblem(path, f"must be an absolute URI, got `{value[:80]}`"))


def _dataset_ref(ds: _Dataset) -> DatasetRef:
    facets = ds.facets
    fields = version = source = description = None
    schema = facets.get("schema")
    if isinstance(schema, dict) and isinstance(schema.get("fields"), list):
        fields = [
            {k: f.get(k) for k in ("name", "type", "description") if f.get(k) is not None}
            for f in schema["fields"]
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        ]
    ver = facets.get("version")
    if isinstance(ver, dict) and isinstance(ver.get("datasetVersion"), str):
        version = ver["datasetVersion"]
    src = facets.get("dataSource")
    if isinstance(src, dict) and isinstance(src.get("name"), str):
        source = src["name"]
    doc = facets.get("documentation")
    if isinstance(doc, dict) and isinstance(doc.get("description"), str):
        description = doc["description"]
    return DatasetRef(ds.namespace, ds.name, fields, version, source, description)


def _check_datasets(items: list[_Dataset], path: str, problems: list[FieldProblem]) -> None:
    for i, ds in enumerate(items):
        _check_facets(ds.facets, f"{path}[{i}].facets", problems)
        _check_facets(ds.inputFacets, f"{path}[{i}].inputFacets", problems)
        _check_facets(ds.outputFacets, f"{path}[{i}].outputFacets", problems)
        if not ds.namespace:
            problems.append(FieldProblem(f"{path}[{i}].namespace", "must not be empty"))
        if not ds.name:
            problems.append(FieldProblem(f"{path}[{i}].name", "must not be empty"))


def _parse_time(value: Any, path: str, problems: list[FieldProblem]) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        problems.append(FieldProblem(path, "must be an RFC 3339 date-time"))
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_event(value: Any) -> ParsedEvent:
    """Validate one decoded event; see the module docstring for what is checked."""
    if not isinstance(value, dict):
        raise InvalidEvent([FieldProblem("$", "an event must be a JSON object")])
    if "run" in value:
        model: type[_Base] = _RunEvent
        kind = "run"
    elif "dataset" in value:
        model, kind = _DatasetEvent, "dataset"
    elif "job" in value:
        model, kind = _JobEvent, "job"
    else:
        raise InvalidEvent([FieldProblem("$.run", "required field is missing (a RunEvent needs `run` and `job`; a DatasetEvent `dataset`; a JobEvent `job`)")])
    try:
        ev = msgspec.convert(value, model)
    except msgspec.ValidationError as exc:
        raise InvalidEvent([_problem_from_msgspec(exc)]) from None

    problems: list[FieldProblem] = []
    if ev.eventTime.tzinfo is None:
        problems.append(FieldProblem("$.eventTime", "must carry a UTC offset, e.g. 2026-11-26T10:00:00Z"))
    _check_uri(ev.producer, "$.producer", problems)
    _check_uri(ev.schemaURL, "$.schemaURL", problems)

    payload = _encoder.encode(value)
    parsed = ParsedEvent(
        key=uuid.UUID(bytes=hashlib.blake2b(payload, digest_size=16).digest()),
        kind=kind,  # type: ignore[arg-type]
        event_type=None,
        event_time=ev.eventTime,
        producer=ev.producer,
        schema_url=ev.schemaURL,
        payload=payload,
    )
    if isinstance(ev, _DatasetEvent):
        _check_facets(ev.dataset.facets, "$.dataset.facets", problems)
        parsed.dataset = _dataset_ref(ev.dataset)
    else:
        job: _Job = ev.job  # type: ignore[attr-defined]
        _check_facets(job.facets, "$.job.facets", problems)
        _check_datasets(ev.inputs, "$.inputs", problems)  # type: ignore[attr-defined]
        _check_datasets(ev.outputs, "$.outputs", problems)  # type: ignore[attr-defined]
        parsed.job_namespace, parsed.job_name = job.namespace, job.name
        parsed.inputs = [_dataset_ref(d) for d in ev.inputs]  # type: ignore[attr-defined]
        parsed.outputs = [_dataset_ref(d) for d in ev.outputs]  # type: ignore[attr-defined]
        _job_facts(parsed, job.facets)
        if isinstance(ev, _RunEvent):
            _check_facets(ev.run.facets, "$.run.facets", problems)
            parsed.event_type = None if ev.eventType is msgspec.UNSET else ev.eventType
            parsed.run_id = ev.run.runId
            _run_facts(parsed, ev.run.facets, problems)
    if problems:
        raise InvalidEvent(problems)
    return parsed


def _job_facts(parsed: ParsedEvent, facets: dict[str, Any]) -> None:
    doc = facets.get("documentation")
    if isinstance(doc, dict) and isinstance(doc.get("description"), str):
        parsed.job_description = doc["description"]
    jt = facets.get("jobType")
    if isinstance(jt, dict) and isinstance(jt.get("jobType"), str):
        parsed.job_type = jt["jobType"]
    loc = facets.get("sourceCodeLocation")
    if isinstance(loc, dict) and isinstance(loc.get("url"), str):
        parsed.job_location = loc["url"]


def _run_facts(parsed: ParsedEvent, facets: dict[str, Any], problems: list[FieldProblem]) -> None:
    parent = facets.get("parent")
    if isinstance(parent, dict):
        run = parent.get("run") or {}
        job = parent.get("job") or {}
        try:
            parsed.parent_run_id = uuid.UUID(str(run.get("runId")))
        except ValueError:
            problems.append(FieldProblem("$.run.facets.parent.run.runId", "must be a UUID"))
        if isinstance(job.get("namespace"), str) and isinstance(job.get("name"), str):
            parsed.parent_job = (job["namespace"], job["name"])
    nominal = facets.get("nominalTime")
    if isinstance(nominal, dict):
        parsed.nominal_start = _parse_time(nominal.get("nominalStartTime"), "$.run.facets.nominalTime.nominalStartTime", problems)
        parsed.nominal_end = _parse_time(nominal.get("nominalEndTime"), "$.run.facets.nominalTime.nominalEndTime", problems)


def parse_events(values: list[Any]) -> tuple[list[ParsedEvent], list[tuple[int, InvalidEvent]]]:
    """Parse a batch of raw JSON (bytes) or decoded values: the valid events, and
    ``(index, error)`` for each rejected one."""
    good: list[ParsedEvent] = []
    bad: list[tuple[int, InvalidEvent]] = []
    # Parsing allocates many short-lived containers while the parsed events pile up; the
    # cyclic GC would rescan that growing pile again and again (about 40% of the time on a
    # 5,000-event batch).  Reference counting frees everything here, so pause the GC for a
    # large batch.  Whoever paused it resumes it, so concurrent batches end with it running.
    paused = len(values) >= 100 and gc.isenabled()
    if paused:
        gc.disable()
    try:
        for i, value in enumerate(values):
            try:
                good.append(parse_event(decode_body(value) if isinstance(value, (bytes, bytearray, memoryview)) else value))
            except InvalidEvent as exc:
                bad.append((i, exc))
    finally:
        if paused:
            gc.enable()
    return good, bad
