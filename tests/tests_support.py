"""Helpers shared by tests (imported as ``tests_support``; tests/ is on sys.path via conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

# shared/ sits beside the checkout, on developers' machines and in CI alike.
SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "openlineage-spec"

_schema = json.loads((SPEC_DIR / "OpenLineage.json").read_text())
SPEC_VALIDATOR = jsonschema.Draft202012Validator(_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
