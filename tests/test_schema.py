from pathlib import Path

import pytest
import yaml

from levekar.schema.docs import render_data_model
from levekar.schema.model import extract_schema, parse_schema

REPO = Path(__file__).resolve().parents[1]


def test_data_model_doc_is_generated_from_schema():
    assert (REPO / "docs" / "data-model.md").read_text(encoding="utf-8") == render_data_model(extract_schema())


def test_schema_is_consistent():
    s = extract_schema()
    assert {"persons", "households", "dwellings", "geography"} <= {t for t, v in s.tables.items() if v.required}
    for t in s.tables.values():
        names = set(t.column_names)
        assert set(t.key) <= names, t.name
        for r in t.rules:
            assert set(r.columns) <= names, (t.name, r.name)
        for c in t.columns:
            if c.references:
                parent, cols = c.references
                assert parent in s.tables and set(cols) <= set(s.tables[parent].column_names), (t.name, c.name)
    # SSB's immigrant categories and NUS levels are all there
    assert list(s.code_lists["innvandringskategori"]) == ["A", "B", "C", "E", "F", "G"]
    assert list(s.code_lists["nus_level"]) == [str(i) for i in range(9)]


def test_unknown_code_list_is_rejected():
    doc = yaml.safe_load((REPO / "src/levekar/schema/extract.yaml").read_text(encoding="utf-8"))
    doc["tables"]["persons"]["columns"][3]["codes"] = "no_such_list"
    with pytest.raises(ValueError, match="no_such_list"):
        parse_schema(doc)
