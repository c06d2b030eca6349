"""Parse and validate OpenLineage events (spec 2-0-x) into plain values.

The contract of this module:

* :func:`parse_raw` takes one event's JSON bytes, :func:`parse_event` one decoded value; both
  return a :class:`ParsedEvent` or raise :class:`~lineage.errors.InvalidEvent` listing each
  problem with a JSON path (``$.run.runId``).  Nothing here raises anything else on any
  input, and nothing does I/O.
* What is accepted validates against the official ``OpenLineage.json`` schema *after*
  normalisation: required fields present and typed, ``runId`` a UUID, ``eventType`` one of
  the six known values, every facet an object carrying URI ``_producer``/``_schemaURL``,
  ``producer``/``schemaURL`` URIs, one of RunEvent/DatasetEvent/JobEvent unambiguously.
* Limits, each refused with a 400 naming the field: ``namespace``/``name`` at most
  :data:`MAX_NAME_BYTES` bytes of UTF-8 (PostgreSQL's btree index rows stop near 2.7 KB);
  times that cannot be held once converted to UTC (years 0001-9999, Python's and so ours);
  and what :mod:`lineage.events.canonical` refuses (NUL, lone surrogates, non-finite or
  unsafe numbers, nesting past 100 levels).
* Normalisation (what real producers send): ``eventTime`` and the nominal times are
  converted to UTC and written in one format (``2026-11-26T10:00:00.000000Z``); a time
  without an offset is read as UTC, a date-only nominal time as midnight UTC, digits past
  microseconds are rounded, and each such assumption is noted in
  :attr:`ParsedEvent.normalizations` (stored with the event).  Run ids are written in lower
  case.  The stored payload is the normalised event in RFC 8785 canonical form, and the
  event's identity (:attr:`ParsedEvent.key`) is a hash of those bytes: ``Z``/``+00:00``/
  ``.000Z``, ``1``/``1.0`` and upper/lower-case UUIDs give the same identity.
"""

from __future__ import annotations

import gc
import hashlib
import re
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal

import msgspec

from lineage.errors import FieldProblem, InvalidEvent
from lineage.events.canonical import MAX_DEPTH, canonical, too_deep

#: Longest accepted ``namespace`` or ``name``, in bytes of UTF-8.  Both sit in unique btree
#: indexes (and together in a contract link's key), whose rows PostgreSQL caps near 2.7 KB.
MAX_NAME_BYTES = 1024

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
    eventTime: str
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

    key: uuid.UUID  # identity: hash of the canonical (normalised) form
    kind: Literal["run", "job", "dataset"]
    event_type: str | None
    event_time: datetime  # timezone-aware
    producer: str
    schema_url: str
    payload: bytes  # the normalised event, RFC 8785 canonical JSON
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
    normalizations: list[str] = field(default_factory=list)  # assumptions made, one note each
    datasets_read: bool = True  # False: parsed with datasets=False, inputs/outputs/dataset left empty

    @property
    def raw(self) -> dict[str, Any]:
        return msgspec.json.decode(self.payload)


# Floats are the one kind of value whose sorted-msgspec form can differ from RFC 8785 (`1.0`
# against `1`); the decoder notes, per thread, whether it saw any.
_seen = threading.local()


def _float_hook(text: str) -> float:
    _seen.floats = True
    return float(text)


_decoder = msgspec.json.Decoder(float_hook=_float_hook)
# RFC 3986: a scheme, then only the characters a URI may carry (no spaces, quotes, braces...).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_FRACTION = re.compile(r"\.(\d+)")


def _decode(body: bytes) -> tuple[Any, bool]:
    """Decode one JSON document; ``(value, saw_floats)``.  Every failure is an InvalidEvent at ``$``."""
    if too_deep(body):
        raise InvalidEvent([FieldProblem("$", f"nested more than {MAX_DEPTH} levels deep")])
    _seen.floats = False
    try:
        value = _decoder.decode(body)
    except UnicodeDecodeError as exc:
        raise InvalidEvent([FieldProblem("$", f"not valid UTF-8 (byte {exc.start})")]) from None
    except (msgspec.MsgspecError, RecursionError, ValueError) as exc:
        raise InvalidEvent([FieldProblem("$", f"not valid JSON: {_bounded(str(exc))}")]) from None
    return value, _seen.floats


def decode_body(body: bytes) -> Any:
    """Decode a JSON document; raise :class:`InvalidEvent` at ``$`` if it is not JSON we accept."""
    return _decode(body)[0]


def _bounded(text: str, n: int = 200) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return text if len(text) <= n else text[: n - 3] + "..."


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
    if reason == "Invalid UUID":
        return FieldProblem(path, "must be a UUID")
    if reason.startswith("Invalid enum value"):
        return FieldProblem(path, f"{_bounded(reason)}; expected one of {', '.join(EVENT_TYPES)}")
    return FieldProblem(path, _bounded(reason))


def _facets_good(facets: dict[str, Any], deletable: bool) -> bool:
    """Would :func:`_check_facets` find nothing?  True only when it is certain (the URIs seen
    and accepted before): the common case, checked without building a single path."""
    for facet in facets.values():
        if type(facet) is not dict:
            return False
        producer, schema = facet.get("_producer"), facet.get("_schemaURL")
        if not (type(producer) is str and producer in _GOOD_URIS and type(schema) is str and schema in _GOOD_URIS):
            return False
        if deletable and "_deleted" in facet and type(facet["_deleted"]) is not bool:
            return False
    return True


def _check_facets(facets: dict[str, Any], path: str, problems: list[FieldProblem], deletable: bool = False) -> None:
    if _facets_good(facets, deletable):
        return
    for key, facet in facets.items():
        if not isinstance(facet, dict):
            problems.append(FieldProblem(f"{path}.{key}", "a facet must be a JSON object"))
            continue
        for required in ("_producer", "_schemaURL"):
            value = facet.get(required)
            if not isinstance(value, str):
                reason = "required facet field is missing" if value is None else "must be a string"
                problems.append(FieldProblem(f"{path}.{key}.{required}", reason))
            else:
                _check_uri(value, f"{path}.{key}.{required}", problems)
        if deletable and "_deleted" in facet and not isinstance(facet["_deleted"], bool):
            problems.append(FieldProblem(f"{path}.{key}._deleted", "must be true or false"))


# Producers repeat a handful of URIs in every facet of every event: remember the good ones
# (bounded, so a client cycling through fresh URIs cannot grow it without limit).
_GOOD_URIS: set[str] = set()


def _check_uri(value: str, path: str, problems: list[FieldProblem]) -> None:
    if value in _GOOD_URIS:
        return
    if _URI.fullmatch(value) is not None:
        if len(_GOOD_URIS) > 4096:
            _GOOD_URIS.clear()
        _GOOD_URIS.add(value)
    else:
        problems.append(FieldProblem(path, f"must be an absolute URI (RFC 3986), got `{_bounded(value, 80)}`"))


def _check_name(value: str, path: str, problems: list[FieldProblem]) -> None:
    if not value:
        problems.append(FieldProblem(path, "must not be empty"))
    elif len(value) * 4 > MAX_NAME_BYTES and len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        problems.append(FieldProblem(path, f"longer than {MAX_NAME_BYTES} bytes of UTF-8"))


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
        if (_facets_good(ds.facets, True) and _facets_good(ds.inputFacets, False) and _facets_good(ds.outputFacets, False)
                and ds.namespace and ds.name and len(ds.namespace) * 4 <= MAX_NAME_BYTES and len(ds.name) * 4 <= MAX_NAME_BYTES):
            continue  # certainly fine: no paths to format
        _check_facets(ds.facets, f"{path}[{i}].facets", problems, deletable=True)
        _check_facets(ds.inputFacets, f"{path}[{i}].inputFacets", problems)
        _check_facets(ds.outputFacets, f"{path}[{i}].outputFacets", problems)
        _check_name(ds.namespace, f"{path}[{i}].namespace", problems)
        _check_name(ds.name, f"{path}[{i}].name", problems)


def format_time(t: datetime) -> str:
    """The one stored format: UTC, microseconds, ``Z`` (``2026-11-26T10:00:00.000000Z``)."""
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_time(value: Any, path: str, problems: list[FieldProblem], notes: list[str], *, date_only: bool = False) -> tuple[datetime, str] | None:
    """A time as ``(aware UTC datetime, stored text)``; None (and a problem) if it is refused."""
    if not isinstance(value, str):
        problems.append(FieldProblem(path, "must be a string holding an RFC 3339 date-time"))
        return None
    try:
        t = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        t = None
    was_date = False
    if t is None and date_only:
        try:
            t = datetime.combine(msgspec.convert(value, date), datetime.min.time())
            was_date = True
            notes.append(f"{path}: date only; read as midnight UTC (was `{_bounded(value, 40)}`)")
        except msgspec.ValidationError:
            t = None
    if t is None:
        example = "2026-11-26T10:00:00Z" + (" or a date, 2026-11-26" if date_only else "")
        problems.append(FieldProblem(path, f"must be an RFC 3339 date-time, e.g. {example}; got `{_bounded(value, 40)}`"))
        return None
    if t.tzinfo is None:
        if not was_date:
            notes.append(f"{path}: no UTC offset; read as UTC (was `{_bounded(value, 40)}`)")
        t = t.replace(tzinfo=timezone.utc)
    else:
        try:
            t = t.astimezone(timezone.utc)
        except OverflowError:
            problems.append(FieldProblem(path, f"`{_bounded(value, 40)}` is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z once converted to UTC"))
            return None
    fraction = _FRACTION.search(value)
    if fraction is not None and len(fraction.group(1)) > 6:
        notes.append(f"{path}: rounded to microseconds (was `{_bounded(value, 40)}`)")
    return t, format_time(t)


def _check_kind(value: dict) -> tuple[type[_Base], str]:
    """Which of the spec's three events ``value`` is; exactly one must match (the schema's oneOf)."""
    if "run" in value:
        return _RunEvent, "run"
    if "dataset" in value:
        if "job" in value:
            raise InvalidEvent([FieldProblem("$.dataset", "an event with `job` and no `run` is a JobEvent, which has no `dataset`")])
        return _DatasetEvent, "dataset"
    if "job" in value:
        return _JobEvent, "job"
    raise InvalidEvent([FieldProblem("$.run", "required field is missing (a RunEvent needs `run` and `job`; a DatasetEvent `dataset`; a JobEvent `job`)")])


def parse_raw(body: bytes, *, datasets: bool = True) -> ParsedEvent:
    """Decode and validate one event's JSON bytes (the ingest hot path).

    ``datasets=False``: validate everything as usual, but leave ``inputs``, ``outputs`` and
    ``dataset`` empty (:attr:`ParsedEvent.datasets_read` False).  Storing the raw event needs
    none of them; reading them is a tenth of the work, and keeping what they point into alive
    while a batch piles up costs more than that.  The derivation re-parses the stored payload.
    """
    if body[:3] == b"\xef\xbb\xbf":
        body = body[3:]  # a UTF-8 byte-order mark, which RFC 8259 lets a parser ignore
    value, floats = _decode(body)
    return _parse(value, floats, datasets)


def parse_event(value: Any) -> ParsedEvent:
    """Validate one decoded event; see the module docstring for what is checked."""
    return _parse(value, True)


_NO_KEY = uuid.UUID(int=0)  # until the payload is known


def _parse(value: Any, floats: bool, datasets: bool = True) -> ParsedEvent:
    if not isinstance(value, dict):
        raise InvalidEvent([FieldProblem("$", "an event must be a JSON object")])
    model, kind = _check_kind(value)
    try:
        ev = msgspec.convert(value, model)
    except msgspec.ValidationError as exc:
        raise InvalidEvent([_problem_from_msgspec(exc)]) from None

    problems: list[FieldProblem] = []
    notes: list[str] = []
    _check_uri(ev.producer, "$.producer", problems)
    _check_uri(ev.schemaURL, "$.schemaURL", problems)
    when = _parse_time(ev.eventTime, "$.eventTime", problems, notes)
    normalised = dict(value)  # copied along every path that normalisation rewrites
    if when is not None:
        normalised["eventTime"] = when[1]

    parsed = ParsedEvent(
        key=_NO_KEY, kind=kind, event_type=None,  # type: ignore[arg-type]
        event_time=when[0] if when else datetime.min, producer=ev.producer, schema_url=ev.schemaURL, payload=b"",
    )
    if isinstance(ev, _DatasetEvent):
        _check_facets(ev.dataset.facets, "$.dataset.facets", problems, deletable=True)
        _check_name(ev.dataset.namespace, "$.dataset.namespace", problems)
        _check_name(ev.dataset.name, "$.dataset.name", problems)
        parsed.dataset = _dataset_ref(ev.dataset) if datasets else None
    else:
        job: _Job = ev.job  # type: ignore[attr-defined]
        _check_facets(job.facets, "$.job.facets", problems, deletable=True)
        _check_name(job.namespace, "$.job.namespace", problems)
        _check_name(job.name, "$.job.name", problems)
        _check_datasets(ev.inputs, "$.inputs", problems)  # type: ignore[attr-defined]
        _check_datasets(ev.outputs, "$.outputs", problems)  # type: ignore[attr-defined]
        parsed.job_namespace, parsed.job_name = job.namespace, job.name
        if datasets:
            parsed.inputs = [_dataset_ref(d) for d in ev.inputs]  # type: ignore[attr-defined]
            parsed.outputs = [_dataset_ref(d) for d in ev.outputs]  # type: ignore[attr-defined]
        _job_facts(parsed, job.facets)
        if isinstance(ev, _RunEvent):
            _check_facets(ev.run.facets, "$.run.facets", problems)
            parsed.event_type = None if ev.eventType is msgspec.UNSET else ev.eventType
            parsed.run_id = ev.run.runId
            run = dict(value["run"])
            run["runId"] = str(ev.run.runId)
            normalised["run"] = run
            if ev.run.facets:
                run["facets"] = _run_facts(parsed, ev.run.facets, problems, notes)
    if problems:
        raise InvalidEvent(problems)
    parsed.payload = canonical(normalised, floats=floats)
    parsed.key = uuid.UUID(bytes=hashlib.blake2b(parsed.payload, digest_size=16).digest())
    parsed.normalizations = notes
    parsed.datasets_read = datasets
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


def _uuid(value: Any, path: str, problems: list[FieldProblem]) -> uuid.UUID | None:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    problems.append(FieldProblem(path, "must be a UUID"))
    return None


def _run_facts(parsed: ParsedEvent, facets: dict[str, Any], problems: list[FieldProblem], notes: list[str]) -> dict[str, Any]:
    """Read the run facets the store derives from; return ``facets`` with their values normalised."""
    out = dict(facets)
    parent = facets.get("parent")
    if isinstance(parent, dict):
        out["parent"] = parent = dict(parent)
        run = parent.get("run")
        if not isinstance(run, dict):
            problems.append(FieldProblem("$.run.facets.parent.run", "must be an object with a `runId`"))
        elif (rid := _uuid(run.get("runId"), "$.run.facets.parent.run.runId", problems)) is not None:
            parsed.parent_run_id = rid
            parent["run"] = {**run, "runId": str(rid)}
        job = parent.get("job")
        if job is not None:
            if not isinstance(job, dict) or not isinstance(job.get("namespace"), str) or not isinstance(job.get("name"), str):
                problems.append(FieldProblem("$.run.facets.parent.job", "must be an object with string `namespace` and `name`"))
            else:
                _check_name(job["namespace"], "$.run.facets.parent.job.namespace", problems)
                _check_name(job["name"], "$.run.facets.parent.job.name", problems)
                parsed.parent_job = (job["namespace"], job["name"])
        root = parent.get("root")
        if isinstance(root, dict) and isinstance(root.get("run"), dict) and "runId" in root["run"]:
            if (rid := _uuid(root["run"]["runId"], "$.run.facets.parent.root.run.runId", problems)) is not None:
                parent["root"] = {**root, "run": {**root["run"], "runId": str(rid)}}
    nominal = facets.get("nominalTime")
    if isinstance(nominal, dict):
        out["nominalTime"] = nominal = dict(nominal)
        for key in ("nominalStartTime", "nominalEndTime"):
            if nominal.get(key) is None and key == "nominalEndTime":
                continue  # optional; a null end is the same as none
            if key not in nominal:
                problems.append(FieldProblem("$.run.facets.nominalTime.nominalStartTime", "required field is missing"))
                continue
            got = _parse_time(nominal[key], f"$.run.facets.nominalTime.{key}", problems, notes, date_only=True)
            if got is not None:
                nominal[key] = got[1]
                if key == "nominalStartTime":
                    parsed.nominal_start = got[0]
                else:
                    parsed.nominal_end = got[0]
    return out


@contextmanager
def gc_paused(items: int):
    """Pause the cyclic GC while a batch of ``items`` values is parsed (no-op under 100).

    Parsing allocates many short-lived containers while the parsed events pile up; the cyclic
    GC would rescan that growing pile again and again (about 40% of the time on a 5,000-event
    batch).  Reference counting frees everything here.  Whoever paused it resumes it, so
    concurrent batches end with it running.
    """
    paused = items >= 100 and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def parse_events(values: list[Any], *, datasets: bool = True) -> tuple[list[ParsedEvent], list[tuple[int, InvalidEvent]]]:
    """Parse a batch of raw JSON (bytes) or decoded values: the valid events, and
    ``(index, error)`` for each rejected one.  ``datasets``: as for :func:`parse_raw`."""
    good: list[ParsedEvent] = []
    bad: list[tuple[int, InvalidEvent]] = []
    with gc_paused(len(values)):
        for i, value in enumerate(values):
            try:
                good.append(parse_raw(bytes(value), datasets=datasets) if isinstance(value, (bytes, bytearray, memoryview))
                            else _parse(value, True, datasets))
            except InvalidEvent as exc:
                bad.append((i, exc))
    return good, bad
