"""Classification schemes as data: one YAML file per scheme and version, checked before anything is evaluated.

A scheme names its inputs (SQL expressions over the area table, optionally averaged over the last years),
its criteria (input, comparison, threshold — a number or an expression), and its categories, tried from the
top: the first whose condition holds is the area's category. Conditions are written as

    criterion_or_category_id
    {all: [...]}   {any: [...]}   {at_least: N, of: [...]}   {not: ...}
    {held: category_id, years: N}        # the category's condition held in each of the last N years

A category named inside a condition stands for its condition (not for "is that category"), so "ghetto =
vulnerable AND non_western" reads as the law does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from levekar.indicators.expr import DefinitionError, columns_of

OPS = (">", ">=", "<", "<=")
Condition = str | dict[str, Any]


@dataclass(frozen=True)
class Input:
    name: str
    expr: str
    average_years: int = 1  # mean over the last N years of the area's history (the Danish criteria)


@dataclass(frozen=True)
class Criterion:
    id: str
    input: str
    op: str
    threshold: str  # a number or an expression over the inputs and parameters
    label: str = ""


@dataclass(frozen=True)
class Category:
    id: str
    when: Condition
    title: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """A ranking score: the weighted sum of inputs standardised across the areas of a level and year."""

    terms: dict[str, float]
    among: tuple[str, ...]  # categories ranked (the others get no rank)


@dataclass(frozen=True)
class Scheme:
    id: str
    version: str
    title: dict[str, str]
    source: str
    inputs: tuple[Input, ...]
    criteria: tuple[Criterion, ...]
    categories: tuple[Category, ...]
    default: str
    parameters: dict[str, float | None]
    population: str | None = None  # input holding the residents
    min_population: float | None = None
    levels: tuple[str, ...] = ()  # published levels it applies to (empty: every level but the country)
    score: Score | None = None
    undetermined: str | None = None  # the category when none holds but some are unknown (else: default)

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories] + [self.default] + ([self.undetermined] if self.undetermined else [])

    def columns(self) -> set[str]:
        """The columns of the area table the scheme reads."""
        cols: set[str] = set()
        for i in self.inputs:
            cols |= columns_of(i.expr)
        return cols - set(self.parameters)


class SchemeError(ValueError):
    """A scheme file that cannot be used; the message names the file and the key."""


def _condition_refs(cond: Condition, where: str, errors: list[str]) -> set[str]:
    if isinstance(cond, str):
        return {cond}
    if not isinstance(cond, dict) or len(cond) not in (1, 2):
        errors.append(f"{where}: a condition is an id or one of all/any/at_least/not/held, got {cond!r}")
        return set()
    if "all" in cond or "any" in cond:
        items = cond.get("all", cond.get("any"))
        if not isinstance(items, list) or not items:
            errors.append(f"{where}: all/any needs a non-empty list, got {items!r}")
            return set()
        return set().union(*(_condition_refs(c, where, errors) for c in items))
    if "at_least" in cond:
        n, items = cond.get("at_least"), cond.get("of")
        if not isinstance(n, int) or not isinstance(items, list) or not 0 < n <= len(items):
            errors.append(f"{where}: at_least needs 1 ≤ N ≤ len(of), got {cond!r}")
            return set()
        return set().union(*(_condition_refs(c, where, errors) for c in items))
    if "not" in cond:
        return _condition_refs(cond["not"], where, errors)
    if "held" in cond:
        if not isinstance(cond.get("years"), int) or cond["years"] < 1:
            errors.append(f"{where}: held needs years ≥ 1, got {cond!r}")
        return {cond["held"]}
    errors.append(f"{where}: unknown condition {cond!r}")
    return set()


def parse_scheme(doc: dict, source: str = "scheme") -> Scheme:
    """Check a scheme document; every problem is reported at once, each with the file and the key."""
    errors: list[str] = []
    if not isinstance(doc, dict):
        raise SchemeError(f"{source}: a scheme is a mapping, got {type(doc).__name__}")
    for key in ("scheme", "version", "criteria", "categories", "default"):
        if key not in doc:
            errors.append(f"{source}: missing key {key!r}")
    if errors:
        raise SchemeError("\n".join(errors))
    params = {str(k): (None if v is None else float(v)) for k, v in (doc.get("parameters") or {}).items()}
    inputs = []
    for name, spec in (doc.get("inputs") or {}).items():
        spec = {"expr": spec} if isinstance(spec, str) else dict(spec or {})
        expr = str(spec.get("expr", name))
        try:
            columns_of(expr)
        except DefinitionError as e:
            errors.append(f"{source}: inputs.{name}: {e}")
        inputs.append(Input(str(name), expr, int(spec.get("average_years", 1))))
    names = {i.name for i in inputs} | set(params)
    criteria = []
    for cid, spec in doc["criteria"].items():
        where = f"{source}: criteria.{cid}"
        if not isinstance(spec, dict) or {"input", "op", "threshold"} - set(spec):
            errors.append(f"{where}: needs input, op and threshold, got {spec!r}")
            continue
        if spec["op"] not in OPS:
            errors.append(f"{where}: op must be one of {', '.join(OPS)}, got {spec['op']!r}")
        if spec["input"] not in names:
            errors.append(f"{where}: unknown input {spec['input']!r} (inputs: {', '.join(sorted(names))})")
        threshold = str(spec["threshold"])
        try:
            unknown = columns_of(threshold) - names
        except DefinitionError as e:
            errors.append(f"{where}: threshold: {e}")
            unknown = set()
        if unknown:
            errors.append(f"{where}: threshold uses unknown {', '.join(sorted(unknown))}")
        criteria.append(Criterion(str(cid), spec["input"], spec["op"], threshold, str(spec.get("label", ""))))
    categories = []
    for i, spec in enumerate(doc["categories"]):
        if not isinstance(spec, dict) or "id" not in spec or "when" not in spec:
            errors.append(f"{source}: categories[{i}]: needs id and when, got {spec!r}")
            continue
        categories.append(Category(str(spec["id"]), spec["when"], dict(spec.get("title") or {})))
    known = {c.id for c in criteria} | {c.id for c in categories}
    for c in categories:
        where = f"{source}: categories.{c.id}"
        for ref in _condition_refs(c.when, where, errors) - known:
            errors.append(f"{where}: unknown criterion or category {ref!r}")
    score = None
    if spec := doc.get("score"):
        terms = {str(k): float(v) for k, v in (spec.get("terms") or {}).items()}
        for k in set(terms) - {i.name for i in inputs}:
            errors.append(f"{source}: score.terms.{k}: unknown input")
        among = tuple(spec.get("among") or [c.id for c in categories])
        for k in set(among) - {c.id for c in categories}:
            errors.append(f"{source}: score.among: unknown category {k!r}")
        score = Score(terms, among)
    population = doc.get("population")
    if population is not None and population not in names:
        errors.append(f"{source}: population: unknown input {population!r}")
    if errors:
        raise SchemeError("\n".join(errors))
    return Scheme(
        id=str(doc["scheme"]),
        version=str(doc["version"]),
        title=dict(doc.get("title") or {}),
        source=str(doc.get("source", "")),
        inputs=tuple(inputs),
        criteria=tuple(criteria),
        categories=tuple(categories),
        default=str(doc["default"]),
        parameters=params,
        population=population,
        min_population=doc.get("min_population"),
        levels=tuple(doc.get("levels") or ()),
        score=score,
        undetermined=doc.get("undetermined"),
    )


def load_scheme(name_or_path: str | Path) -> Scheme:
    """A packaged scheme by name (`denmark_2018`) or a scheme file of one's own."""
    path = Path(name_or_path)
    if not path.suffix:
        ref = resources.files("levekar.classify") / "schemes" / f"{name_or_path}.yaml"
        if not ref.is_file():
            raise SchemeError(f"no packaged scheme {name_or_path!r} (have: {', '.join(packaged_schemes())})")
        text, source = ref.read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    else:
        if not path.exists():
            raise SchemeError(f"{path}: no such scheme file")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SchemeError(f"{source}: not valid YAML: {e}") from e
    return parse_scheme(doc, source)


def packaged_schemes() -> list[str]:
    folder = resources.files("levekar.classify") / "schemes"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
