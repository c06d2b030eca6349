"""What one ODCS property states, as GX expectations: type, required, unique, options, enum.

Each function returns :class:`Spec` tuples ``(type, kwargs, clause, check)``; the suite builder
(:mod:`lineage.contracts.compile`) adds the contract, schema object and property to ``meta``.
A clause is the ODCS path of the term behind the expectation, e.g.
``schema[photos].properties[photo_id].primaryKey``.

Types are checked with ``expect_column_values_to_be_in_type_list``: on a pandas frame GX
checks the column's dtype, or each value's Python type when the dtype is ``object`` (so a
string in an integer column fails); on a SQL table it checks the column's declared type.  The
lists below therefore name pandas dtypes, Python types and SQLAlchemy/PostgreSQL type names.
A date or timestamp read from CSV is a string, so the type list admits text and a pattern (the
``format``'s, or ISO 8601's; a pattern runs in pandas and SQL alike) checks its shape — unless ``physicalType`` says the column is a native DATE/TIMESTAMP, which has no
text and whose type the database itself enforces.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from lineage.contracts.terms import TermProblem


class Spec(NamedTuple):
    type: str
    kwargs: dict[str, Any]
    clause: str
    check: str


# PostgreSQL is compared by the type's name as the database reports it (GX compares it without
# regard to case), so the names below include PostgreSQL's own spellings ("DOUBLE PRECISION").
_STR = ["str", "object", "string", "StringDtype", "TEXT", "VARCHAR", "CHAR", "CHARACTER VARYING", "CHARACTER", "String",
        "Unicode", "UnicodeText"]
_INT = ["int", "int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64", "uint8", "uint16", "uint32", "uint64",
        "INTEGER", "BIGINT", "SMALLINT", "Integer", "BigInteger", "SmallInteger"]
_FLOAT = ["float", "float16", "float32", "float64", "Float32", "Float64", "REAL", "FLOAT", "DOUBLE_PRECISION", "NUMERIC",
          "DECIMAL", "DOUBLE PRECISION", "Float", "Numeric"]
_BOOL = ["bool", "boolean", "BOOLEAN", "Boolean"]
# pandas 3 parses dates at microsecond resolution (datetime64[us]); pandas 2 at nanoseconds
_DATE = ["date", "datetime", "datetime64", "datetime64[ns]", "datetime64[us]", "Timestamp", "DATE", "Date"]
_TS = ["datetime", "datetime64", "datetime64[ns]", "datetime64[ns, UTC]", "datetime64[us]", "Timestamp", "TIMESTAMP", "DateTime", "TIME", "time",
       "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP WITH TIME ZONE", "TIME WITHOUT TIME ZONE"]
#: logicalType -> accepted types; None: not checked by type (object/array/map/vector vary by engine)
TYPE_LISTS: dict[str, list[str] | None] = {
    "string": _STR,
    "integer": _INT,
    # an integer column is a valid number column
    "number": _FLOAT + _INT,
    "boolean": _BOOL,
    # dates in files and text columns are text; its shape is checked by a pattern (below)
    "date": _DATE + ["str", "TEXT", "VARCHAR"],
    "timestamp": _TS + ["str", "TEXT", "VARCHAR"],
    "time": _TS + ["str", "TEXT", "VARCHAR"],
    "array": ["list", "ndarray", "ARRAY", "JSON", "JSONB", "object"],
    "object": ["dict", "JSON", "JSONB", "object"],
    "map": ["dict", "JSON", "JSONB", "object"],
    "vector": ["list", "ndarray", "ARRAY", "object"],
}

FORMATS = {
    # the practical shape (a dotted domain, an alphabetic top level): `mailto:x@y.z` is a URI,
    # not an email; internationalised local parts are refused, as datacontract-cli's export does
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "yyyy-MM-dd": r"^\d{4}-\d{2}-\d{2}$",
    "date-time": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
    "yyyy-MM-dd HH:mm:ss": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
    "HH:mm:ss": r"^\d{2}:\d{2}:\d{2}$",
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
    "ipv4": r"^(\d{1,3}\.){3}\d{1,3}$",
    "hostname": r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
}

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
#: options compiled below; ``timezone``/``defaultTimezone`` only say how to read a value; any other
#: (``minItems``, ``uniqueItems``, ...) is refused rather than silently not checked
_KNOWN_OPTIONS = frozenset(_BOUNDS + ("minLength", "maxLength", "pattern", "format", "timezone", "defaultTimezone"))


def type_specs(prop: dict[str, Any], at: str, path: tuple) -> list[Spec]:
    col = prop["name"]
    logical = prop.get("logicalType")
    out: list[Spec] = []
    types = list(TYPE_LISTS.get(logical) or []) if logical else []
    physical = prop.get("physicalType")
    if logical in ("date", "timestamp", "time") and native_temporal(prop):
        # a native DATE/TIMESTAMP column holds no text: a string in it is a wrong type
        types = [t for t in types if t not in ("str", "TEXT", "VARCHAR")]
    if physical and types:
        # the declared physical type (VARCHAR(64) -> VARCHAR) is accepted too
        base = re.split(r"[\s(]", physical.strip(), maxsplit=1)[0]
        if base and base not in types:
            types.append(base)
    if types:
        out.append(Spec("expect_column_values_to_be_in_type_list", {"column": col, "type_list": types},
                        f"{at}.logicalType", f"values are of logical type `{logical}`"
                        + (f" (physical `{physical}`)" if physical else "")))
    fmt = (prop.get("logicalTypeOptions") or {}).get("format")
    if logical in ("date", "timestamp", "time") and not native_temporal(prop) and fmt is None:
        # the ISO shape by default (a regex runs in pandas and in SQL; dateutil only in pandas)
        iso = {"date": "date", "timestamp": "date-time", "time": "HH:mm:ss"}[logical]
        out.append(Spec("expect_column_values_to_match_regex", {"column": col, "regex": FORMATS[iso]},
                        f"{at}.logicalType", f"values are ISO {logical}s (`{iso}`)"))
    return out


def key_specs(prop: dict[str, Any], at: str, composite: bool) -> list[Spec]:
    col = prop["name"]
    out: list[Spec] = []
    if prop.get("required"):
        out.append(Spec("expect_column_values_to_not_be_null", {"column": col}, f"{at}.required", "required column is not null"))
    if prop.get("primaryKey"):
        if not prop.get("required"):
            out.append(Spec("expect_column_values_to_not_be_null", {"column": col}, f"{at}.primaryKey", "a primary key column is not null"))
        if not composite:
            out.append(Spec("expect_column_values_to_be_unique", {"column": col}, f"{at}.primaryKey", "primary key values are unique"))
    if prop.get("unique") and not (prop.get("primaryKey") and not composite):
        out.append(Spec("expect_column_values_to_be_unique", {"column": col}, f"{at}.unique", "values are unique"))
    return out


def option_specs(prop: dict[str, Any], at: str, path: tuple) -> list[Spec]:
    col = prop["name"]
    opts = prop.get("logicalTypeOptions") or {}
    out: list[Spec] = []
    for key in sorted(set(opts) - _KNOWN_OPTIONS):
        raise TermProblem(path + ("logicalTypeOptions", key), f"unsupported logicalTypeOptions `{key}`: the gate cannot check it")
    lo = opts.get("exclusiveMinimum", opts.get("minimum"))
    hi = opts.get("exclusiveMaximum", opts.get("maximum"))
    if lo is not None or hi is not None:
        keys = [k for k in _BOUNDS if k in opts]
        out.append(Spec(
            "expect_column_values_to_be_between",
            {"column": col, "min_value": lo, "max_value": hi,
             "strict_min": "exclusiveMinimum" in opts, "strict_max": "exclusiveMaximum" in opts},
            f"{at}.logicalTypeOptions.{'/'.join(keys)}",
            f"values are {'>' if 'exclusiveMinimum' in opts else '>='} {lo} and {'<' if 'exclusiveMaximum' in opts else '<='} {hi}"
            if lo is not None and hi is not None else
            (f"values are {'>' if 'exclusiveMinimum' in opts else '>='} {lo}" if lo is not None
             else f"values are {'<' if 'exclusiveMaximum' in opts else '<='} {hi}"),
        ))
    if "minLength" in opts or "maxLength" in opts:
        out.append(Spec("expect_column_value_lengths_to_be_between",
                        {"column": col, "min_value": opts.get("minLength"), "max_value": opts.get("maxLength")},
                        f"{at}.logicalTypeOptions.{'/'.join(k for k in ('minLength', 'maxLength') if k in opts)}",
                        f"lengths between {opts.get('minLength')} and {opts.get('maxLength')}"))
    if "pattern" in opts:
        _check_regex(opts["pattern"], path + ("logicalTypeOptions", "pattern"))
        out.append(Spec("expect_column_values_to_match_regex", {"column": col, "regex": opts["pattern"]},
                        f"{at}.logicalTypeOptions.pattern", f"values match `{opts['pattern']}`"))
    fmt = opts.get("format")
    if fmt is not None and prop.get("logicalType") in ("date", "timestamp", "time") and native_temporal(prop):
        fmt = None  # a native DATE/TIMESTAMP column has no text to match; the database enforces it
    if fmt is not None:
        if fmt not in FORMATS:
            raise TermProblem(path + ("logicalTypeOptions", "format"),
                              f"unsupported format `{fmt}`; the gate checks {', '.join(sorted(FORMATS))} (or give a `pattern`)")
        out.append(Spec("expect_column_values_to_match_regex", {"column": col, "regex": FORMATS[fmt]},
                        f"{at}.logicalTypeOptions.format", f"values are in format `{fmt}`"))
    if prop.get("enum"):
        values = [e.get("value") if isinstance(e, dict) else e for e in prop["enum"]]
        out.append(Spec("expect_column_values_to_be_in_set", {"column": col, "value_set": values},
                        f"{at}.enum", f"values are one of {values}"))
    return out


def native_temporal(prop: dict[str, Any]) -> bool:
    """A date/time property stored as a native temporal type (``physicalType``), not as text."""
    base = re.split(r"[\s(]", str(prop.get("physicalType") or "").strip(), maxsplit=1)[0].upper()
    return base in ("DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIME", "TIMETZ", "DATETIME", "DATETIME2")


def _check_regex(pattern: Any, path: tuple) -> None:
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise TermProblem(path, f"`{pattern}` is not a valid regular expression: {exc}") from None
