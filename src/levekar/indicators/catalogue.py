"""The indicator catalogue: declarative definitions, loaded and checked before anything is computed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from levekar.indicators.expr import DefinitionError, columns_of

KINDS = {"share", "mean", "standardised", "median"}
DIRECTIONS = {"higher_is_worse", "higher_is_better", "neutral"}


@dataclass(frozen=True)
class Indicator:
    id: str
    title: dict[str, str]
    theme: str
    kind: str
    direction: str
    population: str
    numerator: str | None
    breakdowns: tuple[str, ...]
    value: str | None = None  # the quantity averaged (kind: mean)
    unit: str = "percent"
    disclosure: str = "default"
    screening: bool = False
    age_groups: tuple[int, ...] = ()  # lower bounds of the standard's age groups (kind: standardised)
    per: int = 1  # rate per this many persons (kind: standardised)
    per_level: bool = False  # counts depend on the level (moves across its boundary): computed per level

    def age_group_ids(self) -> list[tuple[str, int, int | None]]:
        """The internal per-age-group counts a standardised rate is built from: (id, lower, upper)."""
        bounds = [*self.age_groups, None]
        return [(f"{self.id}@{lo}", lo, hi) for lo, hi in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class Catalogue:
    version: str
    indicators: tuple[Indicator, ...]
    breakdowns: dict[str, dict]
    disclosure_rules: dict[str, dict]

    def get(self, indicator_id: str) -> Indicator:
        for i in self.indicators:
            if i.id == indicator_id:
                return i
        raise KeyError(indicator_id)


def parse_catalogue(doc: dict, source: str = "catalogue", columns: set[str] | None = None) -> Catalogue:
    """Check and load a catalogue document; `columns` (of the fact table) lets expressions be checked."""
    errors = []
    seen = set()
    indicators = []
    for n, d in enumerate(doc.get("indicators", [])):
        where = f"{source}: indicator {d.get('id', f'#{n + 1}')!r}"
        for key in (
            "id",
            "title",
            "theme",
            "kind",
            "direction",
            "population",
            "value" if d.get("kind") in ("mean", "median") else "numerator",
        ):
            if key not in d:
                errors.append(f"{where}: missing {key!r}")
        if any(e.startswith(f"{where}: missing") for e in errors):
            continue
        if d["id"] in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(d["id"])
        if d["kind"] not in KINDS:
            errors.append(f"{where}: kind must be one of {sorted(KINDS)}")
        if d["direction"] not in DIRECTIONS:
            errors.append(f"{where}: direction must be one of {sorted(DIRECTIONS)}")
        if d["kind"] == "standardised" and not d.get("age_groups"):
            errors.append(f"{where}: a standardised rate needs age_groups (lower bounds of the standard's groups)")
        for b in d.get("breakdowns", []):
            if b not in doc.get("breakdowns", {}):
                errors.append(f"{where}: unknown breakdown {b!r}")
        if d.get("disclosure", "default") not in doc.get("disclosure_rules", {}):
            errors.append(f"{where}: unknown disclosure rule {d.get('disclosure')!r}")
        for key in [k for k in ("population", "numerator", "value") if d.get(k)]:
            try:
                unknown = columns_of(d[key]) - columns if columns is not None else set()
            except DefinitionError as e:
                errors.append(f"{where}: {key}: {e}")
                continue
            if unknown:
                errors.append(f"{where}: {key} uses unknown column(s) {sorted(unknown)}")
        indicators.append(
            Indicator(
                id=d["id"],
                title=d["title"],
                theme=d["theme"],
                kind=d["kind"],
                direction=d["direction"],
                population=d["population"],
                numerator=d.get("numerator"),
                breakdowns=tuple(d.get("breakdowns", [])),
                value=d.get("value"),
                unit=d.get("unit", "percent" if d["kind"] == "share" else ""),
                age_groups=tuple(d.get("age_groups", ())),
                per=int(d.get("per", 1)),
                per_level=bool(d.get("per_level", False)),
                disclosure=d.get("disclosure", "default"),
                screening=bool(d.get("screening", False)),
            )
        )
    if errors:
        raise DefinitionError("\n".join(errors))
    return Catalogue(
        str(doc.get("version", "")), tuple(indicators), doc.get("breakdowns", {}), doc.get("disclosure_rules", {})
    )


def load_catalogue(path: str | Path | None = None, columns: set[str] | None = None) -> Catalogue:
    """The packaged catalogue, or a municipality's own file of the same shape."""
    if path is None:
        text = resources.files("levekar.indicators").joinpath("catalogue.yaml").read_text(encoding="utf-8")
        source = "catalogue.yaml"
    else:
        text, source = Path(path).read_text(encoding="utf-8"), Path(path).name
    return parse_catalogue(yaml.safe_load(text), source, columns)
