"""ODCS ``quality`` rules as GX expectations: library metrics, SQL rules, custom GX rules.

A rule is compiled to one standard GX expectation, and its ``meta.threshold`` records the ODCS
comparison (``metric``, ``operator``, ``value``, ``unit``, and what is counted) so that the
gate's runner decides it *exactly*: GX's ``mostly`` can only say "at most this fraction
unexpected", while ODCS has eight operators over rows or percent.  Where ``mostly`` or the
row-count bounds express the rule exactly they are set too, so the suite means the same in bare
GX; where they cannot (``mustNotBe``, a lower bound on nulls, a row budget) the runner's
re-evaluation from GX's own counts is what decides.

=================== ================================================ ===========================
metric              GX expectation                                   counted
=================== ================================================ ===========================
``nullValues``      ``expect_column_values_to_not_be_null``          nulls
``missingValues``   ``expect_column_values_to_not_be_in_set``        listed values (+ nulls if
                    (``arguments.missingValues``, default null, "")  null is listed)
``invalidValues``   ``..._to_be_in_set`` (``validValues``) or        values not valid
                    ``..._to_match_regex`` (``pattern``)
``duplicateValues`` ``..._to_be_unique`` / ``expect_compound_columns_to_be_unique`` (object
                    level, ``arguments.properties``)                 rows in duplicate groups
``rowCount``        ``expect_table_row_count_to_be_between``         rows (unit ``rows`` only)
=================== ================================================ ===========================

``type: sql`` becomes ``unexpected_rows_expectation``: the rule's query (``${table}`` or
``{table}`` is the batch, ``${column}`` the property) yields one value, wrapped so that a row
comes back exactly when the comparison does not hold (a NULL result is unexpected too).
``type: custom`` with ``engine: great-expectations`` passes ``implementation`` (a mapping or its
YAML text: ``type``/``expectation_type`` and ``kwargs``) through, after GX has validated it; under
a property, a column expectation's ``column`` is that property's (implied when absent).
``type: text`` is prose; it is listed in the suite's ``meta.unchecked``.  Anything else (an
unknown metric, operator, unit, type or engine) is a :class:`TermProblem` at its path.
"""

from __future__ import annotations

import math
from typing import Any

from lineage.contracts.compile.properties import Spec, _check_regex
from lineage.contracts.terms import TermProblem

OPERATORS = ("mustBe", "mustNotBe", "mustBeGreaterThan", "mustBeGreaterOrEqualTo", "mustBeLessThan",
             "mustBeLessOrEqualTo", "mustBeBetween", "mustNotBeBetween")
METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
_SQL_OPS = {"mustBe": "=", "mustNotBe": "<>", "mustBeGreaterThan": ">", "mustBeGreaterOrEqualTo": ">=",
            "mustBeLessThan": "<", "mustBeLessOrEqualTo": "<="}


def holds(operator: str, value: Any, actual: float) -> bool:
    """Whether ``actual`` satisfies the ODCS comparison ``operator value``."""
    if operator == "mustBe":
        return actual == value
    if operator == "mustNotBe":
        return actual != value
    if operator == "mustBeGreaterThan":
        return actual > value
    if operator == "mustBeGreaterOrEqualTo":
        return actual >= value
    if operator == "mustBeLessThan":
        return actual < value
    if operator == "mustBeLessOrEqualTo":
        return actual <= value
    lo, hi = value
    inside = lo <= actual <= hi
    return inside if operator == "mustBeBetween" else not inside


def describe(rule: dict[str, Any]) -> str:
    """``rowCount mustBeGreaterOrEqualTo 1000`` — how a clause names the rule."""
    op = _operator(rule, None, required=False)
    what = rule.get("metric") or rule.get("rule") or rule.get("type", "library")
    if rule.get("type") == "custom":
        what = f"custom {rule.get('engine')}"
    text = f"{what}"
    if rule.get("name"):
        text += f" `{rule['name']}`"
    if op:
        text += f" {op} {rule[op]}" + (" %" if rule.get("unit") == "percent" else "")
    return text


def _operator(rule: dict[str, Any], path: tuple | None, required: bool = True) -> str | None:
    ops = [k for k in OPERATORS if k in rule]
    if len(ops) > 1 and path is not None:
        raise TermProblem(path + (ops[1],), f"a rule takes one comparison operator, not {ops}")
    if not ops:
        if required and path is not None:
            raise TermProblem(path, f"the rule needs a comparison operator: one of {', '.join(OPERATORS)}")
        return None
    op = ops[0]
    value = rule[op]
    if path is not None:
        if op.endswith("Between"):
            if not (isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value) and value[0] <= value[1]):
                raise TermProblem(path + (op,), f"`{op}` takes two numbers, smallest first")
        elif op not in ("mustBe", "mustNotBe") and not _number(value):
            raise TermProblem(path + (op,), f"`{op}` takes a number")
    return op


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def rule_specs(rule: dict[str, Any], path: tuple, clause: str, column: str | None, columns: list[str]) -> list[Spec]:
    """The expectations of one quality rule at ``path`` (``column`` None: object level)."""
    if not isinstance(rule, dict):
        raise TermProblem(path, "a quality rule must be a mapping")
    kind = rule.get("type") or "library"
    clause = f"{clause} ({describe(rule)})"
    if kind == "text":
        return []
    if kind == "library" or "metric" in rule:
        return [_library(rule, path, clause, column, columns)]
    if kind == "sql":
        return [_sql(rule, path, clause, column)]
    if kind == "custom":
        return [_custom(rule, path, clause, column)]
    raise TermProblem(path + ("type",), f"unsupported quality rule type `{kind}`; one of text, library, sql, custom")


def _library(rule: dict[str, Any], path: tuple, clause: str, column: str | None, columns: list[str]) -> Spec:
    metric = rule.get("metric") or rule.get("rule")
    if metric not in METRICS:
        raise TermProblem(path + ("metric",), f"unsupported metric `{metric}`; the gate checks {', '.join(METRICS)}")
    op = _operator(rule, path)
    unit = rule.get("unit") or "rows"
    if unit not in ("rows", "percent"):
        raise TermProblem(path + ("unit",), f"unsupported unit `{unit}`; one of rows, percent")
    if op in ("mustBe", "mustNotBe") and not _number(rule[op]):
        raise TermProblem(path + (op,), f"`{op}` of `{metric}` takes a number")
    args = rule.get("arguments") or {}
    threshold = {"metric": metric, "operator": op, "value": rule[op], "unit": unit, "count": "unexpected"}
    if metric == "rowCount":
        if column is not None:
            raise TermProblem(path + ("metric",), "`rowCount` is a rule of a schema object, not of a property")
        if unit != "rows":
            raise TermProblem(path + ("unit",), "`rowCount` is counted in rows")
        threshold["count"] = "observed"
        lo, hi = _row_bounds(op, rule[op])
        return Spec("expect_table_row_count_to_be_between", {"min_value": lo, "max_value": hi, "meta_threshold": threshold},
                    clause, f"row count {op} {rule[op]}")
    if metric == "duplicateValues" and column is None:
        props = args.get("properties")
        if not (isinstance(props, list) and props and all(p in columns for p in props)):
            raise TermProblem(path + ("arguments", "properties"),
                              "an object-level `duplicateValues` rule lists the `properties` whose combination must be unique")
        return _counted("expect_compound_columns_to_be_unique", {"column_list": list(props)}, threshold, clause, "combinations are unique")
    if column is None:
        raise TermProblem(path + ("metric",), f"`{metric}` is a rule of a property; put it under the property's `quality`")
    if metric == "nullValues":
        return _counted("expect_column_values_to_not_be_null", {"column": column}, threshold, clause, "nulls")
    if metric == "missingValues":
        listed = args.get("missingValues", [None, ""])
        if not isinstance(listed, list):
            raise TermProblem(path + ("arguments", "missingValues"), "`missingValues` lists the values that count as missing")
        if None in listed:
            threshold["count"] = "unexpected+missing"
        return _counted("expect_column_values_to_not_be_in_set", {"column": column, "value_set": [v for v in listed if v is not None]},
                        threshold, clause, f"missing values {listed}")
    if metric == "invalidValues":
        if "validValues" in args:
            if not isinstance(args["validValues"], list):
                raise TermProblem(path + ("arguments", "validValues"), "`validValues` lists the valid values")
            return _counted("expect_column_values_to_be_in_set", {"column": column, "value_set": args["validValues"]},
                            threshold, clause, f"values outside {args['validValues']}")
        if "pattern" in args:
            _check_regex(args["pattern"], path + ("arguments", "pattern"))
            return _counted("expect_column_values_to_match_regex", {"column": column, "regex": args["pattern"]},
                            threshold, clause, f"values not matching `{args['pattern']}`")
        raise TermProblem(path + ("arguments",), "`invalidValues` needs `arguments.validValues` or `arguments.pattern`")
    return _counted("expect_column_values_to_be_unique", {"column": column}, threshold, clause, "duplicate values")


def _counted(kind: str, kwargs: dict[str, Any], threshold: dict[str, Any], clause: str, counted: str) -> Spec:
    op, value, unit = threshold["operator"], threshold["value"], threshold["unit"]
    # `mostly` where it says the rule exactly: "at most N% bad" (rows budgets depend on the row count)
    if unit == "percent" and op in ("mustBeLessOrEqualTo", "mustBeLessThan") and 0 <= value <= 100:
        if value > 0:
            kwargs = {**kwargs, "mostly": round(1 - value / 100, 6)}
    return Spec(kind, {**kwargs, "meta_threshold": threshold}, clause, f"{counted}: {op} {value} {unit}")


def _row_bounds(op: str, value: Any) -> tuple[Any, Any]:
    """GX bounds saying the same thing; None where they cannot (the runner decides then)."""
    if op == "mustBe":
        return value, value
    if op == "mustBeGreaterOrEqualTo":
        return value, None
    if op == "mustBeLessOrEqualTo":
        return None, value
    if op == "mustBeGreaterThan":  # row counts are integers: > 9.5 is >= 10
        return math.floor(value) + 1, None
    if op == "mustBeLessThan":
        return None, math.ceil(value) - 1
    if op == "mustBeBetween":
        return value[0], value[1]
    return None, None  # mustNotBe, mustNotBeBetween


def _sql(rule: dict[str, Any], path: tuple, clause: str, column: str | None) -> Spec:
    query = rule.get("query")
    if not isinstance(query, str) or not query.strip():
        raise TermProblem(path + ("query",), "a `sql` rule needs a `query` returning one value")
    op = _operator(rule, path)
    body = query.strip().rstrip(";")
    if ";" in body:
        raise TermProblem(path + ("query",), "a `sql` rule is one query (no `;`)")
    body = body.replace("${table}", "{batch}").replace("{table}", "{batch}").replace("${object}", "{batch}")
    if "${column}" in body:
        if column is None:
            raise TermProblem(path + ("query",), "`${column}` is only defined for a property's rules")
        body = body.replace("${column}", '"' + column.replace('"', '""') + '"')
    if "{batch}" not in body:
        raise TermProblem(path + ("query",), "the query must read the checked table as `${table}`")
    value = rule[op]
    if op.endswith("Between"):
        cond = f"v {'NOT ' if op == 'mustNotBeBetween' else ''}BETWEEN {value[0]} AND {value[1]}"
    else:
        cond = f"v {_SQL_OPS[op]} {_literal(value)}"
    # a scalar subquery: the same text runs in PostgreSQL and in the SQLite copy the gate makes of
    # a data frame (see lineage.gate.runner); more than one row returned is an error, failing closed
    wrapped = f"SELECT v FROM (SELECT ({body}) AS v) AS q WHERE ({cond}) IS NOT TRUE"
    return Spec("unexpected_rows_expectation", {"unexpected_rows_query": wrapped, "description": clause},
                clause, f"`{query.strip()}` {op} {value}")


def _literal(value: Any) -> str:
    if _number(value):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(value)


def _custom(rule: dict[str, Any], path: tuple, clause: str, column: str | None) -> Spec:
    engine = rule.get("engine")
    if engine not in ("great-expectations", "greatExpectations", "gx"):
        raise TermProblem(path + ("engine",), f"unsupported engine `{engine}`; the gate runs `great-expectations` custom rules")
    impl = rule.get("implementation")
    if isinstance(impl, str):
        import yaml

        try:
            impl = yaml.safe_load(impl)
        except yaml.YAMLError:
            raise TermProblem(path + ("implementation",), "the implementation is not YAML or JSON") from None
    if not isinstance(impl, dict):
        raise TermProblem(path + ("implementation",), "the implementation is an expectation: `type` and `kwargs`")
    kind = impl.get("type") or impl.get("expectation_type")
    kwargs = impl.get("kwargs") or {}
    if set(impl) - {"type", "expectation_type", "kwargs", "meta"} or not isinstance(kind, str) or not isinstance(kwargs, dict):
        raise TermProblem(path + ("implementation",), "the implementation is an expectation: `type` and `kwargs` (a mapping)")
    kwargs = dict(kwargs)
    if column is not None and _takes_column(kind):
        # a property's rule is about that property: its column is implied (as datacontract-cli
        # exports it), and a rule under one property naming another would name the wrong clause
        if kwargs.setdefault("column", column) != column:
            raise TermProblem(path + ("implementation", "kwargs", "column"),
                              f"a rule of property `{column}` checks `{column}`, not `{kwargs['column']}`")
    _check_gx(kind, kwargs, path + ("implementation",))
    return Spec(kind, kwargs, clause, rule.get("description") or f"custom expectation `{kind}`")


def _takes_column(kind: str) -> bool:
    """Whether GX's expectation ``kind`` is checked on one column (an unknown kind: no; GX refuses it next)."""
    from lineage.contracts.compile import quiet_gx

    quiet_gx()
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(kind)
    except Exception:  # GX raises its own not-found error; _check_gx reports it
        return False
    return "column" in (getattr(impl, "__fields__", None) or {})  # GX models are pydantic v1-style


def _check_gx(kind: str, kwargs: dict[str, Any], path: tuple) -> None:
    """GX must know the expectation and accept its arguments (imports GX: only for custom rules)."""
    from lineage.contracts.compile import quiet_gx

    quiet_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        ExpectationConfiguration(type=kind, kwargs=kwargs).to_domain_obj()
    except Exception as exc:  # GX raises several kinds; each means "not a valid expectation"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TermProblem(path, f"not a valid Great Expectations expectation `{kind}`: {first}") from None
