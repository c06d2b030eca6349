"""Contract documents: the examples parse; bad input names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.contracts import taxonomy
from lineage.contracts.document import load_contract, load_contracts
from lineage.errors import ContractError

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ACME = (CONTRACTS / "acme-stock-photos.yaml").read_text()


def _error(text: str, name: str = "bad.yaml") -> ContractError:
    with pytest.raises(ContractError) as info:
        load_contract(name, text=text)
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_example_contracts_parse_with_their_terms():
    docs = {d.id: d for d in load_contracts(CONTRACTS)}
    assert set(docs) == {"acme-stock-photos", "lovematch-photos"}
    acme = docs["acme-stock-photos"].terms
    assert [d.key for d in acme.datasets] == ["partner-drops:acme/photos"]
    assert acme.permitted[0].purpose == "train_ai_system"
    assert acme.provenance_column == "source_contract_id"
    love = docs["lovematch-photos"].terms
    assert [p.purpose for p in love.permitted] == ["essential.service"]
    assert "user.demographic.race_ethnicity" in love.data_categories and "user.location.precise" in love.data_categories
    assert "train_ai_system" in love.prohibited


def test_malformed_yaml_names_file_and_line():
    text = ACME.replace("  - name: photos\n", "  - name: [photos\n", 1)
    err = _error(text, "contracts/acme.yaml")
    assert err.file == "contracts/acme.yaml"
    assert err.line is not None and err.line >= _line_of(text, "name: [photos")
    assert "malformed YAML" in str(err) and "nothing was registered" in str(err)


def test_unknown_taxonomy_key_is_named_with_its_line():
    text = ACME.replace("value: [user.content.self_image]", "value: [user.content.selfie]", 1)
    err = _error(text)
    assert "user.content.selfie" in err.reason and "user.content.self_image" in err.reason  # the suggestion
    assert err.line == _line_of(text, "user.content.selfie")
    assert err.field.startswith("customProperties[")


def test_unknown_purpose_key_in_a_permission():
    text = ACME.replace("- purpose: train_ai_system", "- purpose: train_face_recognition", 1)
    err = _error(text)
    assert "train_face_recognition" in err.reason and err.line == _line_of(text, "train_face_recognition")


def test_missing_required_term_is_named():
    text = ACME.replace("  - property: legalBasis\n    value: contract\n", "")
    err = _error(text)
    assert "legalBasis" in err.reason


def test_unknown_top_level_key_is_refused_by_the_odcs_schema():
    text = ACME + "consent: yes\n"
    err = _error(text)
    assert err.field == "consent" and err.line == _line_of(text, "consent: yes")


def test_dataset_must_name_a_schema_object():
    text = ACME.replace("schema: photos", "schema: pictures")
    err = _error(text)
    assert "pictures" in err.reason and err.line == _line_of(text, "schema: pictures")


def test_non_mapping_and_missing_file():
    assert "mapping" in _error("- just\n- a list\n").reason
    with pytest.raises(ContractError) as info:
        load_contract("/nonexistent/contract.yaml")
    assert info.value.file == "/nonexistent/contract.yaml"


def test_taxonomy_hierarchy_counts():
    assert taxonomy.covers("user.biometric", "user.biometric.voice")
    assert taxonomy.covers("essential", "essential.service")
    assert not taxonomy.covers("user.biometric.voice", "user.biometric")
    assert not taxonomy.covers("user.bio", "user.biometric")  # a prefix of the text is not an ancestor
    with pytest.raises(taxonomy.UnknownKey, match="user.biometrics"):
        taxonomy.check_key("data_category", "user.biometrics")
