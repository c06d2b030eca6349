"""Our compiled suites against the ecosystem: everything datacontract-cli exports, we enforce too.

For each contract (the two examples in ``contracts/``, read at test time, and the fixtures in
``tests/data/contracts/`` written to exercise every rule kind), the Great Expectations suite
that ``datacontract export great-expectations`` produced (recorded in ``tests/data/datacontract/``
with the datacontract-cli version, see its README and ``regenerate.sh``) is compared with the
suite ``lineage contracts compile`` produces now.  Every one of their expectations must have an
**equivalent** in ours.  An expectation of ours is equivalent to one of theirs when it is on the
same column(s) and it rejects at least everything theirs rejects:

* same expectation type, the same column (``column``; ``column_list`` compared as a set), and
  kwargs that are the same or stricter: ``mostly`` at least theirs (absent = 1.0); for
  ``*_to_be_between`` (values, value lengths, table row count) a lower bound at least theirs and an upper bound
  at most theirs (an equal bound must be strict if theirs is; a bound of theirs may not be
  dropped); for ``expect_column_values_to_be_in_set`` a value set that is a subset of theirs;
  for ``expect_table_columns_to_match_set`` the same column set with ``exact_match`` not false;
  for ``expect_column_values_to_match_regex`` the same regex, or one that on a corpus of probe
  strings rejects every probe theirs rejects and still accepts one theirs accepts (a regex that
  matches nothing is not "stricter", it is broken); any other kwarg of theirs equal in ours.
* documented alternatives:

  - **types.**  datacontract-cli (without ``--engine``) writes ODCS type names
    (``type_: integer``), which are no GX type.  Ours is equivalent when it checks the same
    column with ``expect_column_values_to_be_of_type`` or ``..._in_type_list`` and every type it
    accepts belongs to the family of that ODCS type (:data:`TYPE_FAMILIES`; ``number`` admits
    integer types too), or, for ``date``/``timestamp``/``time``, with
    ``expect_column_values_to_match_strftime_format`` or ``..._be_dateutil_parseable``, or with
    ``expect_column_values_to_match_regex`` whose regex accepts an ISO value of that type
    (:data:`TEMPORAL_SAMPLES`) and rejects every probe string (none of which is a date): ODCS
    dates in files and text columns are text, so their type is their shape, which such a regex
    checks as strictly as a strftime format does.  The family names include SQLAlchemy's type
    names (``Unicode``, ``BigInteger``, ...) because GX reports a SQL column's type by them.
  - **composite primary keys.**  datacontract-cli turns every column of a composite key
    (``primaryKey`` on several properties) into its own ``expect_column_values_to_be_unique``,
    which rejects valid data (two photos of one partner).  For a column of a composite key we
    require instead ``expect_compound_columns_to_be_unique`` over exactly the key's columns.
    This is the one place where ours is deliberately weaker than their export, because theirs
    is stricter than the contract.
  - ``expect_column_values_to_be_unique`` is also covered by ``expect_compound_columns_to_be_unique``
    whose column list is that one column.

The test reports every uncovered expectation of theirs, not only the first.  A further test
checks that our suites keep the governance expectations datacontract-cli knows nothing of.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lineage.contracts.compile import APPROVED_PARAMETER, write_suites
from lineage.contracts.document import ContractDocument, load_contract

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = ROOT / "tests" / "data" / "datacontract"
MANIFEST = json.loads((EXPORTS / "manifest.json").read_text())
CONTRACT_FILES = sorted((ROOT / "contracts").glob("*.yaml")) + sorted((ROOT / "tests" / "data" / "contracts").glob("*.yaml"))

# SQLAlchemy's names (biginteger, unicodetext, ...) are how GX names a SQL column's type: same families
_INT = {"int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "integer", "bigint",
        "smallint", "int2", "int4", "integertype", "longtype", "shorttype", "bytetype", "long", "biginteger",
        "smallinteger"}
_FLOAT = {"float", "float16", "float32", "float64", "double", "double precision", "real", "numeric", "decimal",
          "number", "floattype", "doubletype", "decimaltype", "double_precision", "float4", "float8", "decimal.decimal"}
#: ODCS type -> the type names (lower case, before any "(") a check of ours may accept for it.
TYPE_FAMILIES: dict[str, set[str]] = {
    "string": {"str", "string", "object", "stringdtype", "text", "varchar", "char", "character varying",
               "character", "stringtype", "unicode", "unicodetext"},
    "integer": _INT,
    "number": _INT | _FLOAT,
    "boolean": {"bool", "boolean", "booleandtype", "booleantype"},
    "date": {"date", "datetime64", "datetime64[ns]", "datetime64[us]", "datetype", "datetime.date"},
    "timestamp": {"datetime", "datetime64", "datetime64[ns]", "datetime64[us]", "datetime64[ns, utc]",
                  "datetime64[us, utc]", "timestamp", "timestamptz", "timestamp with time zone",
                  "timestamp without time zone", "timestamptype", "datetimetz"},
    "time": {"time", "time without time zone", "datetime.time"},
}
TYPE_FAMILIES["varchar"] = TYPE_FAMILIES["string"]
TYPE_FAMILIES["text"] = TYPE_FAMILIES["string"]
_DATE_ALTERNATIVES = {"expect_column_values_to_match_strftime_format", "expect_column_values_to_be_dateutil_parseable"}
#: ISO values a regex standing for a temporal type must accept (one of them); see module doc
TEMPORAL_SAMPLES = {"date": ["2024-01-31"], "timestamp": ["2024-01-31T12:34:56Z", "2024-01-31 12:34:56"],
                    "time": ["12:34:56"]}

#: Strings to compare two regexes on: valid and invalid emails, uuids, uris, handles, codes.
PROBES = [
    "", " ", "a", "ab", "abc", "abc_1", "Abc", "1abc", "a-b", "a b", "x" * 40, "jane@example.com",
    "jane.doe+ml@example.co.uk", "jane@", "@example.com", "jane@example", "jane@@example.com",
    "jane@exa mple.com", "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
    "123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g", "https://example.com/x",
    "http://example.com", "mailto:jane@example.com", "s3://bucket/key", "example.com", "://x",
    "https://exa mple.com", "192.168.0.1", "256.1.1.1", "SKU-123456", "SKU-12345", "sku-123456", "ünïcödé",
]


def _type_name(value: Any) -> str:
    return str(value).strip().lower().split("(")[0].strip()


def _composite_key(doc: ContractDocument, schema: str) -> list[str]:
    obj = next(s for s in doc.document["schema"] if s["name"] == schema)
    keys = [p["name"] for p in obj.get("properties") or [] if p.get("primaryKey")]
    return keys if len(keys) > 1 else []


def _mostly_ok(ours: dict, theirs: dict) -> bool:
    return float(ours.get("mostly", 1.0)) >= float(theirs.get("mostly", 1.0))


def _cmp(a: Any, b: Any) -> int:
    """Order two bounds: numbers numerically, anything else (ISO dates) as text."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return (a > b) - (a < b)
    a, b = str(a), str(b)
    return (a > b) - (a < b)


def _bounds_ok(ours: dict, theirs: dict) -> bool:
    for key, strict, tighter in (("min_value", "strict_min", 1), ("max_value", "strict_max", -1)):
        if theirs.get(key) is None:
            continue
        if ours.get(key) is None or isinstance(ours[key], dict):
            return False
        order = _cmp(ours[key], theirs[key]) * tighter
        if order < 0 or (order == 0 and theirs.get(strict) and not ours.get(strict)):
            return False
    return True


def _regex_ok(ours: str, theirs: str) -> bool:
    if ours == theirs:
        return True
    mine, other = re.compile(ours), re.compile(theirs)
    rejected_by_them = [p for p in PROBES if not other.search(p)]
    accepted_by_both = [p for p in PROBES if other.search(p) and mine.search(p)]
    return bool(accepted_by_both) and not any(mine.search(p) for p in rejected_by_them)


def covers(ours: dict, theirs: dict, composite_key: list[str]) -> bool:
    """Whether our expectation ``ours`` is equivalent to (or stricter than) ``theirs``; see module doc."""
    kind, ok, tk = theirs["type"], ours["kwargs"], theirs["kwargs"]
    column = tk.get("column")
    if not _mostly_ok(ok, tk):
        return False
    if kind == "expect_column_values_to_be_of_type":
        if ok.get("column") != column:
            return False
        family = TYPE_FAMILIES.get(_type_name(tk["type_"]))
        if family is None:  # a type we have no family for: only the very same check counts
            return ours["type"] == kind and _type_name(ok.get("type_")) == _type_name(tk["type_"])
        if ours["type"] == "expect_column_values_to_be_of_type":
            return not isinstance(ok.get("type_"), dict) and _type_name(ok.get("type_")) in family
        if ours["type"] == "expect_column_values_to_be_in_type_list":
            types = ok.get("type_list")
            return isinstance(types, list) and bool(types) and all(_type_name(t) in family for t in types)
        temporal = _type_name(tk["type_"])
        if temporal not in TEMPORAL_SAMPLES:
            return False
        if ours["type"] == "expect_column_values_to_match_regex" and isinstance(ok.get("regex"), str):
            shape = re.compile(ok["regex"])
            return any(shape.search(v) for v in TEMPORAL_SAMPLES[temporal]) and not any(shape.search(p) for p in PROBES)
        return ours["type"] in _DATE_ALTERNATIVES
    if kind == "expect_column_values_to_be_unique":
        if column in composite_key:
            return ours["type"] == "expect_compound_columns_to_be_unique" and sorted(ok.get("column_list") or []) == sorted(composite_key)
        if ours["type"] == "expect_compound_columns_to_be_unique":
            return list(ok.get("column_list") or []) == [column]
        return ours["type"] == kind and ok.get("column") == column
    if ours["type"] != kind or ok.get("column") != column:
        return False
    if kind == "expect_table_columns_to_match_set":
        return sorted(ok.get("column_set") or []) == sorted(tk["column_set"]) and ok.get("exact_match", True) is True and tk.get("exact_match", True) in (True, False)
    if kind in ("expect_column_values_to_be_between", "expect_column_value_lengths_to_be_between", "expect_table_row_count_to_be_between"):
        return _bounds_ok(ok, tk)
    if kind == "expect_column_values_to_be_in_set":
        mine, other = ok.get("value_set"), tk["value_set"]
        return isinstance(mine, list) and all(v in other for v in mine)
    if kind == "expect_column_values_to_match_regex":
        return isinstance(ok.get("regex"), str) and _regex_ok(ok["regex"], tk["regex"])
    return all(ok.get(k) == v for k, v in tk.items() if k != "mostly")


def uncovered(ours: list[dict], theirs: list[dict], composite_key: list[str]) -> list[dict]:
    return [t for t in theirs if not any(covers(o, t, composite_key) for o in ours)]


def _ours(doc: ContractDocument) -> dict[str, dict]:
    """Our suites for ``doc`` through the compile entry point the CLI uses (``write_suites``)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_suites([doc], tmp)
        return {p.stem: json.loads(p.read_text()) for p in Path(tmp).glob("*.json")}


def _entries() -> list[dict]:
    return MANIFEST["exports"]


def test_every_contract_has_a_current_datacontract_export():
    """A new or edited contract without a regenerated fixture would be compared with nothing, or
    with an export of an older version of itself."""
    recorded = {e["contract"] for e in _entries()}
    files = {str(p.relative_to(ROOT)) for p in CONTRACT_FILES}
    assert files - recorded == set(), "no datacontract export; run tests/data/datacontract/regenerate.sh"
    stale = [e["contract"] for e in _entries() if hashlib.sha256((ROOT / e["contract"]).read_bytes()).hexdigest() != e["contract_sha256"]]
    assert stale == [], f"exports made from an older version of {stale}; run tests/data/datacontract/regenerate.sh"
    for e in _entries():
        export = json.loads((EXPORTS / e["export"]).read_text())
        assert export["expectations"] and export["meta"]["contract_id"] == e["id"]


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: f"{e['id']}.{e['schema']}")
def test_our_suite_covers_every_expectation_datacontract_exports(entry):
    doc = load_contract(ROOT / entry["contract"])
    ours = _ours(doc)[f"{doc.id}.{entry['schema']}"]["expectations"]
    theirs = json.loads((EXPORTS / entry["export"]).read_text())["expectations"]
    missing = uncovered(ours, theirs, _composite_key(doc, entry["schema"]))
    report = "\n".join(f"  {t['type']} {json.dumps(t['kwargs'], sort_keys=True)}  [{t['meta'].get('expectation_id')}]" for t in missing)
    if missing:
        pytest.fail(
            f"{len(missing)} of datacontract-cli {MANIFEST['datacontract_cli']}'s {len(theirs)} expectations for "
            f"{entry['contract']} ({entry['schema']}) have no equivalent among our {len(ours)}:\n{report}",
            pytrace=False,
        )


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: p.stem)
def test_our_suites_keep_the_governance_expectations(path):
    """datacontract-cli knows nothing of provenance; whatever else compile adds, these stay."""
    doc = load_contract(path)
    suites = _ours(doc)
    for obj in doc.document["schema"]:
        suite = suites[f"{doc.id}.{obj['name']}"]
        columns = [p["name"] for p in obj.get("properties") or []]
        exps = suite["expectations"]
        column_sets = [e for e in exps if e["type"] == "expect_table_columns_to_match_set"]
        assert len(column_sets) == 1 and column_sets[0]["kwargs"] == {"column_set": columns, "exact_match": True}
        prov = doc.terms.provenance_column
        assert prov in columns
        in_set = [e for e in exps if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"].get("column") == prov]
        assert [e["kwargs"]["value_set"] for e in in_set] == [{"$PARAMETER": APPROVED_PARAMETER}]
        required = {p["name"] for p in obj.get("properties") or [] if p.get("required")}
        not_null = {e["kwargs"]["column"] for e in exps if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"].get("mostly", 1) == 1}
        assert required <= not_null
        assert all(e["meta"].get("contract") == doc.id and e["meta"].get("clause") for e in exps)


# -- the equivalence itself: a weaker expectation of ours must not pass for one of theirs --------


def _e(kind: str, **kwargs: Any) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (_e("expect_column_values_to_be_between", column="age", min_value=18, max_value=121), _e("expect_column_values_to_be_between", column="age", min_value=18, max_value=120)),
        (_e("expect_column_values_to_be_between", column="age", max_value=120), _e("expect_column_values_to_be_between", column="age", min_value=18, max_value=120)),
        (_e("expect_column_values_to_be_between", column="r", min_value=0), _e("expect_column_values_to_be_between", column="r", min_value=0, strict_min=True)),
        (_e("expect_column_values_to_be_between", column="d", min_value="2019-12-31"), _e("expect_column_values_to_be_between", column="d", min_value="2020-01-01")),
        (_e("expect_column_values_to_be_between", column="other", min_value=18, max_value=120), _e("expect_column_values_to_be_between", column="age", min_value=18, max_value=120)),
        (_e("expect_column_value_lengths_to_be_between", column="h", min_value=2, max_value=20), _e("expect_column_value_lengths_to_be_between", column="h", min_value=3, max_value=20)),
        (_e("expect_column_values_to_be_in_set", column="tier", value_set=["free", "plus", "pro", "admin"]), _e("expect_column_values_to_be_in_set", column="tier", value_set=["free", "plus", "pro"])),
        (_e("expect_column_values_to_not_be_null", column="id", mostly=0.9), _e("expect_column_values_to_not_be_null", column="id")),
        (_e("expect_column_values_to_be_of_type", column="n", type_="str"), _e("expect_column_values_to_be_of_type", column="n", type_="integer")),
        (_e("expect_column_values_to_be_in_type_list", column="n", type_list=["int64", "object"]), _e("expect_column_values_to_be_of_type", column="n", type_="integer")),
        (_e("expect_column_values_to_match_regex", column="e", regex=".*"), _e("expect_column_values_to_match_regex", column="e", regex=r"^[^@]+@[^@]+\.[a-z]{2,}$")),
        (_e("expect_column_values_to_match_regex", column="d", regex=r"^\S+$"), _e("expect_column_values_to_be_of_type", column="d", type_="date")),
        (_e("expect_column_values_to_match_regex", column="d", regex=r"^\d{2}:\d{2}:\d{2}$"), _e("expect_column_values_to_be_of_type", column="d", type_="date")),
        (_e("expect_column_values_to_match_regex", column="s", regex=r"^\d{4}-\d{2}-\d{2}$"), _e("expect_column_values_to_be_of_type", column="s", type_="string")),
        (_e("expect_column_values_to_be_in_type_list", column="d", type_list=["date", "str"]), _e("expect_column_values_to_be_of_type", column="d", type_="date")),
        (_e("expect_column_values_to_match_regex", column="e", regex="^$NEVER"), _e("expect_column_values_to_match_regex", column="e", regex=r"^[^@]+@[^@]+\.[a-z]{2,}$")),
        (_e("expect_table_columns_to_match_set", column_set=["a", "b"], exact_match=False), _e("expect_table_columns_to_match_set", column_set=["a", "b"])),
        (_e("expect_table_columns_to_match_set", column_set=["a"]), _e("expect_table_columns_to_match_set", column_set=["a", "b"])),
        (_e("expect_table_row_count_to_be_between", min_value=0, max_value=10), _e("expect_table_row_count_to_be_between", min_value=1, max_value=10)),
        (_e("expect_compound_columns_to_be_unique", column_list=["a", "b"]), _e("expect_column_values_to_be_unique", column="a")),
    ],
)
def test_a_weaker_expectation_is_not_an_equivalent(ours, theirs):
    assert not covers(ours, theirs, composite_key=[])


@pytest.mark.parametrize(
    "ours, theirs, key",
    [
        (_e("expect_column_values_to_be_between", column="r", min_value=0.5, max_value=5, strict_max=True), _e("expect_column_values_to_be_between", column="r", min_value=0, strict_min=True, max_value=5, strict_max=True), []),
        (_e("expect_column_values_to_be_in_set", column="tier", value_set=["free", "pro"]), _e("expect_column_values_to_be_in_set", column="tier", value_set=["free", "plus", "pro"]), []),
        (_e("expect_column_values_to_be_in_type_list", column="n", type_list=["int64", "float64"]), _e("expect_column_values_to_be_of_type", column="n", type_="number"), []),
        (_e("expect_column_values_to_be_of_type", column="s", type_="VARCHAR(16)"), _e("expect_column_values_to_be_of_type", column="s", type_="varchar(16)"), []),
        (_e("expect_column_values_to_be_in_type_list", column="s", type_list=["str", "Unicode", "UnicodeText"]), _e("expect_column_values_to_be_of_type", column="s", type_="string"), []),
        (_e("expect_column_values_to_match_regex", column="d", regex=r"^\d{4}-\d{2}-\d{2}$"), _e("expect_column_values_to_be_of_type", column="d", type_="date"), []),
        (_e("expect_column_values_to_match_regex", column="u", regex=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"), _e("expect_column_values_to_match_regex", column="u", regex=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"), []),
        (_e("expect_compound_columns_to_be_unique", column_list=["b", "a"]), _e("expect_column_values_to_be_unique", column="a"), ["a", "b"]),
        (_e("expect_compound_columns_to_be_unique", column_list=["a"]), _e("expect_column_values_to_be_unique", column="a"), []),
        (_e("expect_table_row_count_to_be_between", min_value=2, max_value=10), _e("expect_table_row_count_to_be_between", min_value=1, max_value=10), []),
        (_e("expect_column_values_to_not_be_null", column="id"), _e("expect_column_values_to_not_be_null", column="id", mostly=0.95), []),
        (_e("expect_column_values_to_be_between", column="b", min_value=0, max_value=1), _e("expect_column_values_to_be_between", column="b", min_value=0, max_value=1, mostly=0.99), []),
    ],
)
def test_a_same_or_stricter_expectation_is_an_equivalent(ours, theirs, key):
    assert covers(ours, theirs, composite_key=key)


def test_a_composite_key_column_is_not_covered_by_a_per_column_unique_of_ours():
    """For a composite key, only the compound check over the whole key counts (see module doc)."""
    theirs = _e("expect_column_values_to_be_unique", column="a")
    assert not covers(_e("expect_column_values_to_be_unique", column="a"), theirs, ["a", "b"])
    assert not covers(_e("expect_compound_columns_to_be_unique", column_list=["a", "b", "c"]), theirs, ["a", "b"])
