"""Mutated OpenLineage events for fuzzing ingest (imported as ``fuzz_mutations``).

Used by ``tests/api/test_fuzz.py`` (Hypothesis drives the ``random.Random`` it passes in, so
failures shrink and replay) and by ``benchmarks/fuzz_ingest.py`` (a plain seeded Random, for
100,000+ events).  Every event starts from the spec's own examples -- the full example event
and each facet example placed where its kind belongs -- with a fresh run id, then takes a few
mutations inside facets, names, timestamps, UUIDs and encodings.  Some mutations cannot be
expressed as Python values (``1e400``, a lone ``\\ud800`` escape, invalid UTF-8, nesting
deeper than :mod:`json` can write), so events are serialised here, and those are spliced
into the bytes through placeholder strings.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent / "data" / "openlineage-spec"
_EXAMPLE = json.loads((SPEC_DIR / "tests" / "example_full_event.json").read_text())


def _facet_examples() -> list[tuple[str, str, dict]]:
    """(kind, key, facet) for every facet example of the spec."""
    out = []
    for path in sorted((SPEC_DIR / "tests").glob("*Facet/*.json")):
        kind = path.parent.name
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            for key, facet in data.items():
                if isinstance(facet, dict):
                    out.append((kind, key, facet))
    return out


FACETS = _facet_examples()

# -- raw splices: placeholder string (as JSON text, quotes included) -> bytes put in its place --
RAW: dict[str, bytes] = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "1e-400": b"1e-400",
    "bigint": b"123456789012345678901234567890",
    "2^53": str(2**53).encode(),
    "float1": b"1.0",
    "negzero": b"-0.0",
    "surrogate": b'"\\ud800"',
    "surrogate-pair-half": b'"x\\udfff"',
    "nul-escape": b'"a\\u0000b"',
    "bad-utf8": b'"\xff\xfe"',
    "bad-utf8-cont": b'"caf\xc3\x28"',
    "overlong": b'"\xc0\xaf"',
    "deep-99": b"[" * 99 + b"]" * 99,
    "deep-101": b"[" * 101 + b"]" * 101,
    "deep-1000": b"[" * 1000 + b"]" * 1000,
    "deep-5000-obj": b'{"a":' * 5000 + b"1" + b"}" * 5000,
}
_MARK = "__raw__"

ODD_TIMES = [
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00", "0000-01-01T00:00:00Z", "2021-11-03T10:53:52.427343", "2020-01-01",
    "2020-01-01T00:00:00.123456789Z", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+00:00",
    "2020-01-01T00:00:00.000Z", "2020-01-01t00:00:00z", "2020-13-01T00:00:00Z", "2020-02-30T00:00:00Z",
    "2020-01-01T24:00:00Z", "2016-12-31T23:59:60Z", "10000-01-01T00:00:00Z", "", "now", "2020-01-01T00:00:00+25:00",
]
ODD_STRINGS = [
    "\x00", "a\x00b", "\ud800", "x\udfff", "é" * 700, "€" * 342, "x" * 3000, "😀" * 300, "", " ", "\u202e",
    "a\\u0000", "[/]", "[bold red]x[/bold red]", "\x1b[31mred", "\n", "null", "'; DROP TABLE raw_events; --",
]
ODD_UUIDS = [
    "x", "", "00000000-0000-0000-0000-000000000000", "{0B6A6D1C-5A3C-4B56-8D0E-4A0A6B7C1E11}",
    "0B6A6D1C5A3C4B568D0E4A0A6B7C1E11", "0b6a6d1c-5a3c-4b56-8d0e-4a0a6b7c1e1", 12, None,
]
ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, "x", [], {}, [1, "a", None], {"_producer": 1}]


def raw(name: str) -> str:
    """A placeholder that :func:`serialise` replaces with ``RAW[name]``."""
    return f"{_MARK}{name}"


def base_event(rng: random.Random) -> dict:
    """A valid event: the spec's example, perhaps with one facet example placed in it."""
    event = copy.deepcopy(_EXAMPLE)
    event["run"]["runId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    # The spec's example has no datasets; give it one of each so their names and facets get fuzzed.
    event["inputs"] = [{"namespace": "postgres://db.example.com:5432", "name": f"public.orders_{rng.randrange(50)}", "facets": {}}]
    event["outputs"] = [{"namespace": "postgres://db.example.com:5432", "name": f"public.delivery_{rng.randrange(50)}", "facets": {}}]
    event["eventTime"] = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.{rng.randint(0, 999):03d}Z"
    if rng.random() < 0.7:
        kind, key, facet = rng.choice(FACETS)
        facet = copy.deepcopy(facet)
        if kind.endswith("RunFacet"):
            event["run"].setdefault("facets", {})[key] = facet
        elif kind.endswith("JobFacet"):
            event["job"].setdefault("facets", {})[key] = facet
        elif kind.endswith("InputDatasetFacet"):
            event["inputs"][0].setdefault("inputFacets", {})[key] = facet
        elif kind.endswith("OutputDatasetFacet"):
            event["outputs"][0].setdefault("outputFacets", {})[key] = facet
        else:
            rng.choice(event["inputs"] + event["outputs"]).setdefault("facets", {})[key] = facet
    return event


def _containers(node: Any, out: list) -> list:
    """Every dict and list inside ``node`` (including itself)."""
    if isinstance(node, (dict, list)):
        out.append(node)
        for child in (node.values() if isinstance(node, dict) else node):
            _containers(child, out)
    return out


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _facet_maps(event: dict) -> list[dict]:
    maps = []
    for holder in [event.get("run"), event.get("job")] + _list(event.get("inputs")) + _list(event.get("outputs")):
        if isinstance(holder, dict):
            for k in ("facets", "inputFacets", "outputFacets"):
                if isinstance(holder.get(k), dict):
                    maps.append(holder[k])
    return maps


def _set_anywhere(rng: random.Random, event: dict, value: Any) -> None:
    """Put (a copy of) ``value`` at a random place: replace a leaf, add a key, or append to a list."""
    value = copy.deepcopy(value)  # the pools' lists and dicts must never be shared (or contain themselves)
    target = rng.choice(_containers(event, []))
    if isinstance(target, list):
        if target and rng.random() < 0.5:
            target[rng.randrange(len(target))] = value
        else:
            target.append(value)
    elif target and rng.random() < 0.6:
        target[rng.choice(list(target))] = value
    else:
        target[rng.choice(["x", "_producer", "_schemaURL", "_deleted", "name", "fields", "\x00k", "\ud800k"])] = value


def _dict_at(holder: Any, key: str) -> dict | None:
    """``holder[key]`` (created empty if missing) when both are objects, else None."""
    if not isinstance(holder, dict):
        return None
    value = holder.setdefault(key, {})
    return value if isinstance(value, dict) else None


def _mutate_names(rng: random.Random, event: dict) -> None:
    holders = [event.get("job")] + _list(event.get("inputs")) + _list(event.get("outputs"))
    holder = rng.choice([h for h in holders if isinstance(h, dict)] or [event])
    holder[rng.choice(["namespace", "name"])] = rng.choice(ODD_STRINGS + ["x" * 1024, "é" * 512, "a" * 1025, 7, None])


def _mutate_times(rng: random.Random, event: dict) -> None:
    when = rng.choice(ODD_TIMES + [12345, None])
    where = rng.random()
    if where < 0.5:
        event["eventTime"] = when
    else:
        facets = _dict_at(event.get("run"), "facets")
        if facets is None:
            return
        nominal = facets.setdefault("nominalTime", {"_producer": "https://example.com/p", "_schemaURL": "https://example.com/s", "nominalStartTime": "2020-01-01T00:00:00Z"})
        if isinstance(nominal, dict):
            nominal[rng.choice(["nominalStartTime", "nominalEndTime"])] = when


def _mutate_uuids(rng: random.Random, event: dict) -> None:
    run = event.get("run")
    if not isinstance(run, dict):
        return
    rid = run.get("runId")
    choice = rng.random()
    if choice < 0.3 and isinstance(rid, str):
        run["runId"] = rid.upper()
    elif choice < 0.6:
        run["runId"] = rng.choice(ODD_UUIDS)
    else:
        facets = _dict_at(run, "facets")
        if facets is None:
            return
        parent = facets.setdefault("parent", {
            "_producer": "https://example.com/p", "_schemaURL": "https://example.com/s",
            "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "ns", "name": "parent"},
        })
        if isinstance(parent, dict):
            parent[rng.choice(["run", "job", "root"])] = copy.deepcopy(rng.choice(
                ["x", {}, [], None, {"runId": rng.choice(ODD_UUIDS)}, {"runId": str(uuid.uuid4()).upper()},
                 {"namespace": "\x00"}, {"run": "x"}, {"run": {"runId": "X"}}]
            ))


def _mutate_facets(rng: random.Random, event: dict) -> None:
    maps = _facet_maps(event)
    if not maps:
        return
    facets = rng.choice(maps)
    if facets and rng.random() < 0.7:
        key = rng.choice(list(facets))
        if rng.random() < 0.5:
            facets[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif isinstance(facets[key], dict):
            facets[key][rng.choice(["_producer", "_schemaURL", "_deleted", "extra"])] = copy.deepcopy(rng.choice(ODD_VALUES + ["not a uri", "a b:c", "https://ok.example/x"]))
    else:
        holder = rng.choice([event.get("run"), event.get("job")])
        if isinstance(holder, dict):
            holder["facets"] = copy.deepcopy(rng.choice(ODD_VALUES))


def _mutate_structure(rng: random.Random, event: dict) -> None:
    target = rng.choice([event] + [v for v in (event.get("run"), event.get("job")) if isinstance(v, dict)])
    if target and rng.random() < 0.5:
        target.pop(rng.choice(list(target)))
    else:
        key = rng.choice(list(target) + ["dataset", "eventType", "inputs", "outputs", "schemaURL", "producer"])
        target[key] = copy.deepcopy(rng.choice(ODD_VALUES + ["OTHER", "DONE", "not a uri", {"namespace": "n", "name": "d"}]))


def _mutate_raw(rng: random.Random, event: dict) -> None:
    _set_anywhere(rng, event, raw(rng.choice(list(RAW))))


def _mutate_strings(rng: random.Random, event: dict) -> None:
    _set_anywhere(rng, event, rng.choice(ODD_STRINGS))


def _mutate_numbers(rng: random.Random, event: dict) -> None:
    _set_anywhere(rng, event, rng.choice([2**53 - 1, -(2**53) + 1, 2**63, 1.0, 0.1, 1e300, -0.0, 5e-324]))


MUTATIONS = [_mutate_names, _mutate_times, _mutate_uuids, _mutate_facets, _mutate_structure, _mutate_raw, _mutate_strings, _mutate_numbers]


def mutated_event(rng: random.Random) -> dict:
    event = base_event(rng)
    for _ in range(rng.randint(1, 3)):
        rng.choice(MUTATIONS)(rng, event)
    return event


def serialise(event: Any, rng: random.Random | None = None) -> bytes:
    """JSON bytes, with every :func:`raw` placeholder replaced by its bytes; sometimes ASCII-escaped."""
    ascii_only = bool(rng and rng.random() < 0.3)
    text = json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":"))
    body = text.encode("utf-8", "surrogatepass")
    if _MARK in text:
        for name, replacement in RAW.items():
            body = body.replace(json.dumps(raw(name)).encode(), replacement)
    return body


def mutated_body(rng: random.Random, *, truncate: bool = True) -> bytes:
    """One event's bytes, sometimes damaged after serialisation (bad bytes, a byte-order mark,
    truncation).  Inside a JSON array a truncated item makes the whole body something other
    than an array, so array batches ask for ``truncate=False``."""
    body = serialise(mutated_event(rng), rng)
    roll = rng.random()
    if not truncate and 0.04 <= roll < 0.06:
        roll = 1.0
    if roll < 0.04:
        at = rng.randrange(len(body))
        body = body[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]) + body[at:]
    elif roll < 0.06:
        # Cut after the first visible byte: a cut to nothing (or to blanks) is not an item but a
        # blank NDJSON line, which a batch skips, so the test's count of items would be wrong.
        first = len(body) - len(body.lstrip())
        body = body[: rng.randrange(first + 1, len(body))]
    elif roll < 0.07:
        body = b"\xef\xbb\xbf" + body  # a UTF-8 byte-order mark
    return body
