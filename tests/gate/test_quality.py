"""The contract's own rules, enforced: each ODCS rule kind on data that passes and data that fails.

Three layers: the demo's ACME drop, with one defect injected at a time, is blocked by the gate
and the reason names the rule; each rule kind compiled from a small contract passes clean data
and fails defective data (frames, and SQL rules on a real PostgreSQL table); a rule the gate
cannot check is refused when the contract is loaded, naming its line.
"""

from __future__ import annotations

import io
import textwrap

import pandas as pd
import psycopg
import pytest
from gate_helpers import ACME, CONTRACTS, STEWARD, TRAIN_JOB, codes, register

from lineage.contracts.compile import compile_terms
from lineage.contracts.document import load_contract
from lineage.errors import ContractError

pytestmark = pytest.mark.gx


def demo_drop() -> pd.DataFrame:
    """The demo's ACME drop as the Airflow gate reads it (written as CSV, read back)."""
    from example_pipeline.drops import generate_records
    from example_pipeline.pipeline import PARTNERS

    text = generate_records(PARTNERS["acme"]).to_csv(index=False, float_format="%.5f")
    return pd.read_csv(io.StringIO(text))


def _gate(pipeline, frame):
    from lineage.gate.service import check_gate

    return check_gate(pipeline, TRAIN_JOB, "train_ai_system", [ACME], {ACME: frame})


def _failed(decision):
    return [r for r in decision.reasons if r.code == "expectation_failed"]


def _dup_key(f):
    f.loc[5, "photo_id"] = f.loc[4, "photo_id"]
    return f


def _string_label(f):
    f["smiling"] = f["smiling"].astype(object)
    f.loc[3, "smiling"] = "yes"
    return f


def _out_of_range(f):
    f.loc[7, "smiling"] = 2
    return f


def _short(f):
    return f.head(60).copy()


def _foreign_image(f):
    f.loc[9, "image_uri"] = "s3://elsewhere/9.jpg"
    return f


DEFECTS = {
    "duplicate primary key": (_dup_key, "schema[photos].properties[photo_id].primaryKey"),
    "string in an integer column": (_string_label, "schema[photos].properties[smiling].logicalType"),
    "value outside the declared range": (_out_of_range, "schema[photos].properties[smiling].logicalTypeOptions.minimum/maximum"),
    "value outside the enumeration": (_out_of_range, "schema[photos].properties[smiling].enum"),
    "row count below the minimum": (_short, "schema[photos].quality[0] (rowCount mustBeGreaterOrEqualTo 100)"),
    "failing SQL rule": (_foreign_image, "schema[photos].quality[1] (sql `images in the partner's bucket` mustBe 0)"),
}


def test_the_demo_drop_passes_every_rule_of_its_contract(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    d = _gate(pipeline, demo_drop())
    assert d.allowed, d.render()
    [v] = d.validations
    suite = compile_terms(load_contract(CONTRACTS / "acme-stock-photos.yaml").terms)["acme-stock-photos.photos"]
    assert len(v.results) == len(suite["expectations"]) and all(r["success"] for r in v.results)


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defect_in_the_demo_drop_blocks_training_and_names_the_rule(pipeline, defect):
    inject, clause = DEFECTS[defect]
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    d = _gate(pipeline, inject(demo_drop()))
    assert not d.allowed and set(codes(d)) == {"expectation_failed"}, d.render()
    named = [r for r in _failed(d) if r.clause == clause]
    assert named, [r.clause for r in _failed(d)]
    assert named[0].contract == "acme-stock-photos@2" and clause in d.render()


def test_a_failing_sql_rule_blocks_on_a_postgresql_table(pipeline, db_url, role_urls):
    """The same drop as a warehouse table: GX runs the SQL rule in PostgreSQL."""
    from lineage.gate.runner import SqlTable
    from lineage.gate.service import check_gate

    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    frame = demo_drop()
    cols = ", ".join(f"{c} {'bigint' if c == 'smiling' else 'double precision' if c.startswith('emb_') else 'text'}" for c in frame.columns)
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        for name in ("acme_ok", "acme_bad"):
            conn.execute(f"CREATE TABLE {name} ({cols})")
            rows = _foreign_image(frame.copy()) if name == "acme_bad" else frame
            with conn.cursor().copy(f"COPY {name} FROM STDIN") as copy:
                for row in rows.itertuples(index=False):
                    copy.write_row(list(row))
    ok = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [ACME], {ACME: SqlTable(db_url, "acme_ok")})
    assert ok.allowed, ok.render()
    bad = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [ACME], {ACME: SqlTable(db_url, "acme_bad")})
    assert not bad.allowed
    [failed] = _failed(bad)
    assert failed.clause == DEFECTS["failing SQL rule"][1] and "1 unexpected" in failed.message


def test_the_assertions_facet_names_the_clause_with_counts_and_samples(pipeline):
    from lineage.gate.facets import input_facets

    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    d = _gate(pipeline, _dup_key(demo_drop()))
    dq = input_facets(d)[ACME]["inputFacets"]["dataQualityAssertions"]["assertions"]
    [pk] = [a for a in dq if a["name"].endswith("properties[photo_id].primaryKey")]
    assert pk["name"] == "acme-stock-photos@2:schema[photos].properties[photo_id].primaryKey" and not pk["success"]
    assert pk["actual"] == "2" and pk["params"]["sample"] == ["acme-000004", "acme-000004"]
    [rows] = [a for a in dq if a["assertion"] == "expect_table_row_count_to_be_between"]
    assert rows["success"] and rows["expected"] == "rowCount mustBeGreaterOrEqualTo 100 rows" and rows["actual"] == "400"


# --- each rule kind, compiled from a small contract -------------------------------------------

HEAD = (CONTRACTS / "acme-stock-photos.yaml").read_text(encoding="utf-8")
TERMS = HEAD[HEAD.index("customProperties:"):]


def contract(schema_yaml: str, categories: str = "[user.content.self_image]") -> str:
    """An ACME-like contract with the given ``schema:`` section (YAML, indented as in the file)."""
    terms = TERMS.replace("value: [user.content.self_image]\n  - property: permittedPurposes",
                          f"value: {categories}\n  - property: permittedPurposes")
    terms = terms.replace("        dataCategories: [user.content.self_image]\n", "")
    terms = terms.replace("  - property: provenanceColumn\n    value: source_contract_id\n", "")
    return "apiVersion: v3.1.0\nkind: DataContract\nid: rules\nname: rules\nversion: 1.0.0\nstatus: active\n" \
        + "schema:\n  - name: photos\n" + textwrap.indent(textwrap.dedent(schema_yaml).strip() + "\n", "    ") + terms


def run(text: str, frame: pd.DataFrame, data=None):
    from lineage.gate.runner import validate

    doc = load_contract("rules.yaml", text=text)
    suite = compile_terms(doc.terms)["rules.photos"]
    return validate("dataset:x:y", data if data is not None else frame, suite, [], "rules@1")


def failing(v) -> list[str]:
    return [r["clause"] for r in v.results if not r["success"]]


def prop(name: str, body: str = "") -> str:
    """A property; without a ``logicalType`` in ``body`` it is a string (``s``, ``ethnicity``) or an integer."""
    if "logicalType:" not in body:
        body = f"logicalType: {'string' if name in ('s', 'ethnicity') else 'integer'}\n" + body
    return f"- name: {name}\n" + textwrap.indent(textwrap.dedent(body).strip(), "  ") + "\n"


def props(*items: str) -> str:
    return "properties:\n" + textwrap.indent("".join(items), "  ")


KINDS = {
    # name: (schema yaml, passing frame, failing frame, clause that fails)
    "integer type": (props(prop("n", "logicalType: integer")), {"n": [1, 2]}, {"n": [1, "two"]}, "properties[n].logicalType"),
    "string type": (props(prop("s", "logicalType: string")), {"s": ["a", "b"]}, {"s": [1, 2]}, "properties[s].logicalType"),
    "boolean type": (props(prop("b", "logicalType: boolean")), {"b": [True, False]}, {"b": [1.5, 2.5]}, "properties[b].logicalType"),
    "date text": (props(prop("d", "logicalType: date")), {"d": ["2026-01-02"]}, {"d": ["02/01/2026"]}, "properties[d].logicalType"),
    "physical type": (props(prop("n", "logicalType: integer\nphysicalType: BIGINT")), {"n": [1]}, {"n": ["x"]}, "properties[n].logicalType"),
    "required": (props(prop("s", "required: true")), {"s": ["a"]}, {"s": ["a", None]}, "properties[s].required"),
    "unique": (props(prop("s", "unique: true")), {"s": ["a", "b"]}, {"s": ["a", "a"]}, "properties[s].unique"),
    "composite primary key": (
        props(prop("a", "primaryKey: true\nprimaryKeyPosition: 2"), prop("b", "primaryKey: true\nprimaryKeyPosition: 1")),
        {"a": [1, 1], "b": [1, 2]}, {"a": [1, 1], "b": [2, 2]}, "primaryKey(b, a)"),
    "exclusive bounds": (
        props(prop("x", "logicalType: number\nlogicalTypeOptions:\n  exclusiveMinimum: 0\n  exclusiveMaximum: 1")),
        {"x": [0.5]}, {"x": [0.5, 1.0]}, "properties[x].logicalTypeOptions.exclusiveMinimum/exclusiveMaximum"),
    "lengths": (props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  minLength: 2\n  maxLength: 3")),
                {"s": ["ab", "abc"]}, {"s": ["a"]}, "properties[s].logicalTypeOptions.minLength/maxLength"),
    "pattern": (props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  pattern: '^L-[0-9]+$'")),
                {"s": ["L-1"]}, {"s": ["L-x"]}, "properties[s].logicalTypeOptions.pattern"),
    "email format": (props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  format: email")),
                     {"s": ["a@b.io"]}, {"s": ["a@b"]}, "properties[s].logicalTypeOptions.format"),
    "email format refuses a URI": (props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  format: email")),
                                   {"s": ["jane.doe+ml@example.co.uk"]}, {"s": ["mailto:jane@example.com"]},
                                   "properties[s].logicalTypeOptions.format"),
    "native date column holds no text": (props(prop("d", "logicalType: date\nphysicalType: DATE")),
                                         {"d": pd.to_datetime(["2026-01-02"])}, {"d": ["2026-01-02"]}, "properties[d].logicalType"),
    "uuid format": (props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  format: uuid")),
                    {"s": ["6f1d8c1e-3c55-4e43-9a53-0c9f1f0b7a10"]}, {"s": ["6f1d8c1e"]}, "properties[s].logicalTypeOptions.format"),
    "enum": (props(prop("s", "enum:\n  - value: a\n  - value: b")), {"s": ["a", "b"]}, {"s": ["a", "c"]}, "properties[s].enum"),
    "nullValues rows": (props(prop("s", "quality:\n  - metric: nullValues\n    mustBeLessOrEqualTo: 1")),
                        {"s": ["a", None, "b"]}, {"s": [None, None, "b"]}, "properties[s].quality[0] (nullValues mustBeLessOrEqualTo 1)"),
    "nullValues percent": (props(prop("s", "quality:\n  - metric: nullValues\n    unit: percent\n    mustBeLessThan: 50")),
                           {"s": ["a", None, "b"]}, {"s": ["a", None]}, "properties[s].quality[0] (nullValues mustBeLessThan 50 %)"),
    "missingValues": (props(prop("s", "quality:\n  - metric: missingValues\n    arguments:\n      missingValues: [null, '', N/A]\n    mustBe: 0")),
                      {"s": ["a", "b"]}, {"s": ["a", "N/A"]}, "properties[s].quality[0] (missingValues mustBe 0)"),
    "missingValues counts nulls": (
        props(prop("s", "quality:\n  - metric: missingValues\n    arguments:\n      missingValues: [null, '']\n    mustBeLessThan: 2")),
        {"s": ["a", ""]}, {"s": ["", None]}, "properties[s].quality[0] (missingValues mustBeLessThan 2)"),
    "invalidValues validValues": (props(prop("s", "quality:\n  - metric: invalidValues\n    arguments:\n      validValues: [a, b]\n    mustBe: 0")),
                                  {"s": ["a"]}, {"s": ["z"]}, "properties[s].quality[0] (invalidValues mustBe 0)"),
    "invalidValues pattern": (props(prop("s", "quality:\n  - metric: invalidValues\n    arguments:\n      pattern: '^[a-z]$'\n    mustBeLessOrEqualTo: 0")),
                              {"s": ["a"]}, {"s": ["aa"]}, "properties[s].quality[0] (invalidValues mustBeLessOrEqualTo 0)"),
    "duplicateValues": (props(prop("s", "quality:\n  - metric: duplicateValues\n    mustBe: 0")),
                        {"s": ["a", "b"]}, {"s": ["a", "a"]}, "properties[s].quality[0] (duplicateValues mustBe 0)"),
    "object duplicateValues": (
        props(prop("a"), prop("b")) + "quality:\n  - metric: duplicateValues\n    arguments:\n      properties: [a, b]\n    mustBe: 0\n",
        {"a": [1, 1], "b": [1, 2]}, {"a": [1, 1], "b": [2, 2]}, "quality[0] (duplicateValues mustBe 0)"),
    "rowCount mustBe": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustBe: 2\n", {"a": [1, 2]}, {"a": [1]}, "quality[0] (rowCount mustBe 2)"),
    "rowCount mustNotBe": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustNotBe: 0\n", {"a": [1]}, {"a": []}, "quality[0] (rowCount mustNotBe 0)"),
    "rowCount mustBeGreaterThan": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustBeGreaterThan: 1\n",
                                   {"a": [1, 2]}, {"a": [1]}, "quality[0] (rowCount mustBeGreaterThan 1)"),
    "rowCount mustBeLessThan": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustBeLessThan: 2\n",
                                {"a": [1]}, {"a": [1, 2]}, "quality[0] (rowCount mustBeLessThan 2)"),
    "rowCount mustBeLessOrEqualTo": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustBeLessOrEqualTo: 1\n",
                                     {"a": [1]}, {"a": [1, 2]}, "quality[0] (rowCount mustBeLessOrEqualTo 1)"),
    "rowCount mustBeBetween": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustBeBetween: [2, 3]\n",
                               {"a": [1, 2]}, {"a": [1]}, "quality[0] (rowCount mustBeBetween [2, 3])"),
    "rowCount mustNotBeBetween": (props(prop("a")) + "quality:\n  - metric: rowCount\n    mustNotBeBetween: [2, 3]\n",
                                  {"a": [1]}, {"a": [1, 2]}, "quality[0] (rowCount mustNotBeBetween [2, 3])"),
    "sql on a frame": (
        props(prop("n", "logicalType: integer")) + "quality:\n  - type: sql\n    query: SELECT MAX(n) FROM ${table}\n    mustBeLessThan: 10\n",
        {"n": [1, 9]}, {"n": [1, 10]}, "quality[0] (sql mustBeLessThan 10)"),
    "sql property rule": (
        props(prop("n", "quality:\n  - type: sql\n    query: SELECT COUNT(*) FROM ${table} WHERE ${column} < 0\n    mustBe: 0")),
        {"n": [1]}, {"n": [-1]}, "properties[n].quality[0] (sql mustBe 0)"),
    "custom great-expectations": (
        props(prop("n")) + "quality:\n  - type: custom\n    engine: great-expectations\n    implementation:\n"
        "      type: expect_column_max_to_be_between\n      kwargs: {column: n, max_value: 5}\n",
        {"n": [1, 5]}, {"n": [1, 6]}, "quality[0] (custom great-expectations)"),
    "custom great-expectations on a property (column implied)": (
        props(prop("n", "quality:\n  - type: custom\n    engine: great-expectations\n    implementation:\n"
                        "      type: expect_column_values_to_be_in_set\n      kwargs: {value_set: [0, 1]}")),
        {"n": [0, 1]}, {"n": [0, 2]}, "properties[n].quality[0] (custom great-expectations)"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_rule_kind_passes_good_data_and_fails_bad_data(kind):
    schema, good, bad, clause = KINDS[kind]
    text = contract(schema)
    ok = run(text, pd.DataFrame(good))
    assert ok.success, [r for r in ok.results if not r["success"]]
    v = run(text, pd.DataFrame(bad))
    assert not v.success
    assert f"schema[photos].{clause}" in failing(v), failing(v)


def test_sql_rules_on_a_postgresql_table(role_urls, db_url):
    from lineage.gate.runner import SqlTable

    text = contract(props(prop("n", "logicalType: integer")) + "quality:\n  - type: sql\n    query: SELECT MAX(n) FROM ${table}\n    mustBeLessThan: 10\n")
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        conn.execute("CREATE TABLE rules_ok (n int); INSERT INTO rules_ok VALUES (1), (9)")
        conn.execute("CREATE TABLE rules_bad (n int); INSERT INTO rules_bad VALUES (1), (12)")
    assert run(text, None, SqlTable(db_url, "rules_ok")).success
    v = run(text, None, SqlTable(db_url, "rules_bad"))
    [r] = [r for r in v.results if not r["success"]]
    assert r["clause"] == "schema[photos].quality[0] (sql mustBeLessThan 10)" and r["unexpected_count"] == 1


def test_a_sql_rule_that_cannot_run_fails_closed():
    """A PostgreSQL-only function on a frame (SQLite): the rule fails with the error, it is never skipped."""
    text = contract(props(prop("n", "logicalType: string")) + "quality:\n  - type: sql\n    query: SELECT COUNT(*) FROM ${table} WHERE n ~ 'x'\n    mustBe: 0\n")
    v = run(text, pd.DataFrame({"n": ["a"]}))
    [r] = [r for r in v.results if not r["success"]]
    assert "could not run" in r["error"]


def test_a_sql_rule_returning_null_fails():
    text = contract(props(prop("n", "logicalType: number")) + "quality:\n  - type: sql\n    query: SELECT MAX(n) FROM ${table}\n    mustBeGreaterThan: 0\n")
    assert not run(text, pd.DataFrame({"n": pd.Series([], dtype="float64")})).success


def test_sensitive_categories_show_counts_never_values():
    """A contract holding special categories: its failures give counts, no sample of the data."""
    from lineage.gate.decision import Decision

    text = contract(props(prop("ethnicity", "enum:\n  - value: undisclosed")), categories="[user.demographic.race_ethnicity]")
    v = run(text, pd.DataFrame({"ethnicity": ["asian", "undisclosed"]}))
    [r] = [r for r in v.results if not r["success"]]
    assert r["unexpected_count"] == 1 and r["sample"] == [] and r["hidden"]
    d = Decision(job="j", purpose="train_ai_system", inputs=("dataset:x:y",), allowed=True).with_validations([v])
    assert "asian" not in d.render() and "1 of 2 rows unexpected" in d.render() and "not shown" in d.render()


BAD_RULES = {
    "unknown metric (the ODCS schema refuses it)": ("quality:\n  - metric: freshness\n    mustBe: 0\n", "metric", "ODCS v3 schema"),
    "unknown engine": ("quality:\n  - type: custom\n    engine: soda\n    implementation: 'checks: []'\n", "engine", "unsupported engine"),
    "unknown GX expectation": ("quality:\n  - type: custom\n    engine: great-expectations\n    implementation:\n"
                               "      type: expect_the_moon\n      kwargs: {}\n", "implementation", "not a valid Great Expectations"),
    "sql without the table": ("quality:\n  - type: sql\n    query: SELECT 1\n    mustBe: 1\n", "query", "${table}"),
    "percent row count": ("quality:\n  - metric: rowCount\n    unit: percent\n    mustBe: 1\n", "unit", "counted in rows"),
    "unknown unit": ("quality:\n  - metric: rowCount\n    unit: bytes\n    mustBe: 1\n", "unit", "unsupported unit"),
    "property rule at object level": ("quality:\n  - metric: nullValues\n    mustBe: 0\n", "metric", "rule of a property"),
}


@pytest.mark.parametrize("case", BAD_RULES)
def test_a_rule_the_gate_cannot_check_is_refused_with_its_line(case):
    rule, field, words = BAD_RULES[case]
    text = contract(props(prop("a")) + rule)
    line = text.splitlines().index("    quality:") + 2  # the rule's first line
    with pytest.raises(ContractError) as err:
        load_contract("rules.yaml", text=text)
    assert words in err.value.reason and err.value.field.startswith("schema[0].quality[0]")
    assert line <= err.value.line <= line + 4, (err.value.line, line)


def test_a_property_custom_rule_naming_another_column_is_refused():
    """Under property `a`, a custom rule checking `b` would fail under the wrong clause: refused."""
    rule = ("quality:\n  - type: custom\n    engine: great-expectations\n    implementation:\n"
            "      type: expect_column_values_to_be_in_set\n      kwargs: {column: b, value_set: [0, 1]}")
    with pytest.raises(ContractError) as err:
        load_contract("rules.yaml", text=contract(props(prop("a", rule), prop("b"))))
    assert err.value.field == "schema[0].properties[0].quality[0].implementation.kwargs.column"
    assert "checks `a`, not `b`" in err.value.reason


def test_an_unsupported_format_is_refused_with_its_line():
    text = contract(props(prop("s", "logicalType: string\nlogicalTypeOptions:\n  format: password")))
    with pytest.raises(ContractError) as err:
        load_contract("rules.yaml", text=text)
    assert err.value.field == "schema[0].properties[0].logicalTypeOptions.format"
    assert text.splitlines()[err.value.line - 1].strip() == "format: password"
