"""The register extract data model, loaded from the declarative `extract.yaml`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool
    description: str
    unit: str | None = None
    codes: str | None = None  # name of a code list
    pattern: str | None = None
    range: tuple[float | None, float | None] | None = None
    references: tuple[str, tuple[str, ...]] | None = None  # (table, columns)


@dataclass(frozen=True)
class Rule:
    name: str
    columns: tuple[str, ...]
    violation: str
    message: str
    from_: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    file: str
    required: bool
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    spatial: bool = False

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class ExtractSchema:
    tables: dict[str, Table]
    code_lists: dict[str, dict[str, str]] = field(default_factory=dict)

    def codes(self, column: Column) -> list[str]:
        return list(self.code_lists[column.codes]) if column.codes else []


def _parse_reference(text: str) -> tuple[str, tuple[str, ...]]:
    table, _, cols = text.partition(".")
    cols = cols.strip()
    names = tuple(c.strip() for c in cols.strip("()").split(",")) if cols.startswith("(") else (cols,)
    return table, names


def parse_schema(doc: dict) -> ExtractSchema:
    code_lists = {name: {str(k): str(v) for k, v in codes.items()} for name, codes in doc["code_lists"].items()}
    tables: dict[str, Table] = {}
    for name, t in doc["tables"].items():
        columns = []
        for c in t["columns"]:
            if c.get("codes") and c["codes"] not in code_lists:
                raise ValueError(f"schema: {name}.{c['name']} uses unknown code list {c['codes']!r}")
            columns.append(
                Column(
                    name=c["name"],
                    type=c["type"],
                    required=bool(c.get("required", False)),
                    description=c.get("description", ""),
                    unit=c.get("unit"),
                    codes=c.get("codes"),
                    pattern=c.get("pattern"),
                    range=tuple(c["range"]) if c.get("range") else None,
                    references=_parse_reference(c["references"]) if c.get("references") else None,
                )
            )
        rules = tuple(
            Rule(r["name"], tuple(r["columns"]), r["violation"], r["message"], r.get("from"))
            for r in t.get("rules", [])
        )
        tables[name] = Table(
            name=name,
            file=t["file"],
            required=bool(t["required"]),
            description=t["description"],
            key=tuple(t["key"]),
            columns=tuple(columns),
            rules=rules,
            spatial=bool(t.get("spatial", False)),
        )
    return ExtractSchema(tables=tables, code_lists=code_lists)


@cache
def extract_schema(path: str | None = None) -> ExtractSchema:
    """The extract schema: the packaged one, or a user's own YAML file of the same shape."""
    if path is None:
        text = resources.files("levekar.schema").joinpath("extract.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_schema(yaml.safe_load(text))
