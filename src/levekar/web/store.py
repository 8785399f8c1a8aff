"""Read-only access to a published store for the web: everything is loaded once into memory (the store is
small — published aggregates only) and indexed, so a request is a dictionary look-up and a small frame.

Only the store's public tables are read; nothing here can reach the register extract. Tables the later
stages add (segregation, flows, …) are found by name; a missing one just hides its view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd

from levekar.web import i18n
from levekar.web.geo import to_geojson

CORE_TABLES = ("indicator_values", "indicator_ranges", "areas", "area_grunnkrets", "catalogue", "classification")
# the order levels are offered in (finest last); levels the store has but this list lacks come before country
LEVEL_ORDER = ("country", "kommune", "bydel", "delbydel", "analysis_area", "grunnkrets")
VALUE_COLUMNS = (
    "indicator_id",
    "level",
    "area_code",
    "year",
    "pooled_years",
    "breakdown",
    "breakdown_value",
    "numerator",
    "denominator",
    "value",
    "ci_low",
    "ci_high",
    "suppressed",
    "kommune",
    "value_kommune",
    "value_country",
    "relative_difference_kommune",
    "relative_difference_country",
    "label",
    "significance_kommune",
    "significance_country",
    "reliable",
)

EMPTY = np.array([], dtype=np.int64)
SORT = ("level", "area_code", "indicator_id", "year", "pooled_years", "breakdown", "breakdown_value")


class NotFound(LookupError):
    """An unknown code; the message says which and what exists."""


def _suggest(kind: str, code: object, known) -> NotFound:
    known = sorted(str(k) for k in known)
    shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
    return NotFound(f"unknown {kind} {code!r}; known: {shown}")


@dataclass
class Store:
    path: Path
    manifest: dict
    values: pd.DataFrame
    ranges: pd.DataFrame
    areas: pd.DataFrame
    members: pd.DataFrame
    catalogue: pd.DataFrame
    classification: pd.DataFrame
    extra: dict[str, pd.DataFrame]
    geojson: dict[str, dict]
    # (level, area_code) → row positions in `values`; (indicator, level, year, pooled) → positions
    by_area: dict = field(default_factory=dict)
    by_slice: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic"))

    @cached_property
    def levels(self) -> list[str]:
        have = set(self.areas["level"])
        # a user zoning (delbydeler, levekårssoner) lies between the city district and the analysis area
        coarse = [lv for lv in LEVEL_ORDER[:3] if lv in have]
        fine = [lv for lv in LEVEL_ORDER[3:] if lv in have]
        return coarse + sorted(have - set(LEVEL_ORDER)) + fine

    @cached_property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.values["year"].unique())

    @cached_property
    def indicator_ids(self) -> list[str]:
        return list(self.catalogue["indicator_id"])

    @cached_property
    def schemes(self) -> list[str]:
        return sorted(self.classification["scheme"].unique()) if len(self.classification) else []

    # --- checks: every code from a request goes through one of these ---
    def check_level(self, level: str) -> str:
        if level not in self.level_set:
            raise _suggest("level", level, self.areas["level"].unique())
        return level

    def check_area(self, level: str, code: str) -> str:
        self.check_level(level)
        if (level, code) not in self.area_index:
            raise NotFound(f"no area {code!r} at level {level!r}")
        return code

    def check_indicator(self, indicator: str) -> str:
        if indicator not in self.indicators:
            raise _suggest("indicator", indicator, self.indicators)
        return indicator

    def check_year(self, year: int) -> int:
        if year not in self.years:
            raise _suggest("year", year, self.years)
        return year

    def check_scheme(self, scheme: str) -> str:
        if scheme not in self.schemes:
            raise _suggest("scheme", scheme, self.schemes)
        return scheme

    def check_breakdown(self, breakdown: str, breakdown_value: str) -> tuple[str, str]:
        if (breakdown, breakdown_value) not in self.breakdowns:
            known = [f"{b}={v}" for b, v in self.breakdowns]
            raise _suggest("breakdown", f"{breakdown}={breakdown_value}", known)
        return breakdown, breakdown_value

    def check_table(self, name: str) -> pd.DataFrame:
        if name not in self.extra:
            raise _suggest("table", name, self.extra)
        return self.extra[name]

    # --- look-ups ---
    def indicator(self, indicator: str) -> dict:
        return self.indicators[self.check_indicator(indicator)]

    def area(self, level: str, code: str) -> dict:
        self.check_area(level, code)
        return self.area_index[(level, code)]

    def area_values(self, level: str, code: str) -> pd.DataFrame:
        self.check_area(level, code)
        pos = self.by_area.get((level, code))
        return self.values.iloc[pos] if pos is not None else self.values.iloc[:0]

    def slice(
        self,
        indicator: str,
        level: str,
        year: int,
        breakdown: str = "total",
        breakdown_value: str = "total",
        pooled_years: int | None = None,
    ) -> pd.DataFrame:
        """One indicator, level, year and group: the rows a map shows (single years unless `pooled_years`)."""
        self.check_indicator(indicator)
        self.check_level(level)
        pooled = pooled_years or 1
        pos = self.by_slice.get((indicator, level, int(year), pooled))
        if pos is None:
            return self.values.iloc[:0]
        rows = self.values.iloc[pos]
        return rows[(rows["breakdown"] == breakdown) & (rows["breakdown_value"] == breakdown_value)]

    def query(
        self,
        indicator: str | None = None,
        level: str | None = None,
        area_code: str | None = None,
        year: int | None = None,
        breakdown: str | None = None,
        breakdown_value: str | None = None,
        pooled_years: int | None = None,
    ) -> pd.DataFrame:
        """Rows of `indicator_values` matching every given filter (codes are checked first)."""
        return self.values.iloc[self.find(indicator, level, area_code, year, breakdown, breakdown_value, pooled_years)]

    def find(
        self,
        indicator: str | None = None,
        level: str | None = None,
        area_code: str | None = None,
        year: int | None = None,
        breakdown: str | None = None,
        breakdown_value: str | None = None,
        pooled_years: int | None = None,
    ) -> np.ndarray:
        """Row positions in `values` matching every given filter — the API's hot path: start from the
        narrowest index, then compare plain numpy arrays of that subset only."""
        if indicator is not None:
            self.check_indicator(indicator)
        if level is not None:
            self.check_level(level)
        if area_code is not None and level is not None:
            self.check_area(level, area_code)
            pos = self.by_area.get((level, area_code), EMPTY)
        elif indicator is not None and level is not None and year is not None:
            pos = self.by_ily.get((indicator, level, int(year)), EMPTY)
        elif indicator is not None and level is not None:
            pos = self.by_il.get((indicator, level), EMPTY)
        elif level is not None:
            pos = self.by_level.get(level, EMPTY)
        elif indicator is not None:
            pos = self.by_indicator.get(indicator, EMPTY)
        else:
            pos = np.arange(len(self.values))
        c = self.cols
        for name, want in (
            ("indicator_id", indicator),
            ("area_code", area_code),
            ("year", year),
            ("breakdown", breakdown),
            ("breakdown_value", breakdown_value),
            ("pooled_years", pooled_years),
        ):
            if want is not None and len(pos):
                pos = pos[c[name][pos] == want]
        return pos

    def rows(self, pos: np.ndarray, columns: tuple[str, ...] = VALUE_COLUMNS) -> list[dict]:
        """The rows at `pos` as JSON-ready dicts (NaN → None), column by column for speed."""
        data = []
        for col in columns:
            a = self.cols[col][pos]
            if a.dtype.kind == "f":
                out = a.astype(object)
                out[np.isnan(a)] = None
                data.append(out.tolist())
            else:
                data.append(a.tolist())
        return [dict(zip(columns, row, strict=True)) for row in zip(*data, strict=True)]

    def area_classification(self, level: str, code: str) -> pd.DataFrame:
        self.check_area(level, code)
        pos = self.cls_by_area.get((level, code))
        return self.classification.iloc[pos if pos is not None else EMPTY]

    def classification_records(self, level: str, code: str) -> list[dict]:
        """The area's classification rows as JSON-ready dicts (made once per area: the profile API's hot path
        must not build a frame per request)."""
        self.check_area(level, code)
        got = self._cls_records.get((level, code))
        if got is None:
            pos = self.cls_by_area.get((level, code), EMPTY)
            got = self._cls_records[(level, code)] = _json_records(self.classification.iloc[pos])
        return got

    def area_label(self, lang: str, level: str, code: str) -> str:
        """The area's name beside its code when the store has the name, else a code label."""
        return i18n.area_name(lang, level, code, self.names.get((level, code)))

    def search(self, q: str, level: str | None = None) -> list[tuple[str, str, bool]]:
        """Areas whose code or name contains `q` (case-insensitive): (level, code, exact), exact matches of
        the code or the whole name first, then coarse levels before fine ones."""
        q = q.strip().casefold()
        if not q:
            return []
        # "Name (level code)" as the search box offers it: the code in the brackets decides
        if q.endswith(")") and "(" in q:
            inner = q.rsplit("(", 1)[1].rstrip(")").split()
            q = inner[-1] if inner else q
        if level is not None:
            self.check_level(level)
        order = {lv: i for i, lv in enumerate(self.levels)}
        hits = []
        for (lv, code), name in self._search_keys():
            if level is not None and lv != level:
                continue
            c, n = code.casefold(), (name or "").casefold()
            if q in c or (n and q in n):
                hits.append((lv, code, q in (c, n)))
        return sorted(hits, key=lambda h: (not h[2], order.get(h[0], 99), h[1]))

    def _search_keys(self) -> list[tuple[tuple[str, str], str | None]]:
        return [(k, self.names.get(k)) for k in self.area_index if k[0] != "country"]

    def kommune_of(self, level: str, code: str) -> str | None:
        k = self.area(level, code).get("kommune")
        if level == "kommune":
            return code
        return None if k is None or (isinstance(k, float) and np.isnan(k)) else str(k)

    def parents(self, level: str, code: str) -> list[tuple[str, str]]:
        """The coarser areas containing this one (through the grunnkretser they share)."""
        m = self.members
        gks = m[(m["level"] == level) & (m["area_code"] == code)]["grunnkrets"]
        if level == "grunnkrets":
            gks = pd.Series([code])
        if gks.empty:
            return []
        hit = m[m["grunnkrets"] == gks.iloc[0]]
        out = []
        for lv in self.levels:
            if lv == level:
                break
            if lv == "grunnkrets":
                continue
            codes = hit[hit["level"] == lv]["area_code"]
            if len(codes):
                out.append((lv, str(codes.iloc[0])))
        return out

    def children(self, level: str, code: str, child_level: str) -> list[str]:
        """The areas at `child_level` lying (by their grunnkretser) in this area."""
        m = self.members
        gks = set(m[(m["level"] == level) & (m["area_code"] == code)]["grunnkrets"])
        if child_level == "grunnkrets":
            return sorted(gks)
        sub = m[(m["level"] == child_level) & m["grunnkrets"].isin(gks)]
        return sorted(sub["area_code"].unique())

    @property
    def indicators(self) -> dict[str, dict]:
        return self._indicators

    def __post_init__(self) -> None:
        self._indicators = {r["indicator_id"]: r for r in self.catalogue.to_dict("records")}
        self.area_index = {(r["level"], r["area_code"]): r for r in self.areas.to_dict("records")}
        # place names, where the store has them (stores written before names were published have none)
        names = self.areas["name"] if "name" in self.areas else pd.Series(None, index=self.areas.index)
        self.names = {
            (lv, c): str(n)
            for lv, c, n in zip(self.areas["level"], self.areas["area_code"], names, strict=True)
            if isinstance(n, str) and n
        }
        pairs = self.values[["breakdown", "breakdown_value"]].drop_duplicates()
        self.breakdowns = sorted(map(tuple, pairs.to_numpy().tolist()), key=lambda p: (p[0] != "total", p[0], p[1]))
        v = self.values
        self.cols = {c: v[c].to_numpy() for c in VALUE_COLUMNS}
        self.by_area = v.groupby(["level", "area_code"], sort=False).indices
        self.by_slice = v.groupby(["indicator_id", "level", "year", "pooled_years"], sort=False).indices
        self.by_ily = v.groupby(["indicator_id", "level", "year"], sort=False).indices
        self.by_il = v.groupby(["indicator_id", "level"], sort=False).indices
        self.by_level = v.groupby("level", sort=False).indices
        self.by_indicator = v.groupby("indicator_id", sort=False).indices
        self.level_set = set(self.areas["level"])
        self.cls_by_area = self.classification.groupby(["level", "area_code"], sort=False).indices
        self._cls_records: dict[tuple[str, str], list[dict]] = {}


def _json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values (NaN → None)."""
    cols = {}
    for c in frame.columns:
        a = frame[c].to_numpy()
        if a.dtype.kind == "f":
            o = a.astype(object)
            o[np.isnan(a)] = None
            cols[c] = o.tolist()
        else:
            cols[c] = [None if v is pd.NA else v for v in a.tolist()]
    names = list(cols)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain object strings and floats (Arrow-backed strings and nullable ints vary across pandas versions)."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_integer_dtype(s) and s.isna().any():
            out[col] = s.astype("float64")
        elif pd.api.types.is_integer_dtype(s):
            out[col] = s.astype("int64")
        elif pd.api.types.is_string_dtype(s) or s.dtype == object:
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def load_store(path: str | Path, simplify: float = 20.0) -> Store:
    """Open a published store read-only. `simplify` is the polygon tolerance in metres (map display only)."""
    path = Path(path).resolve()
    db = path / "barometer.duckdb"
    if not db.exists():
        raise FileNotFoundError(f"{path}: not a published store (no barometer.duckdb)")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        order = {"indicator_values": " ORDER BY " + ", ".join(SORT)}
        frames = {
            n: _clean(con.sql(f'SELECT * FROM "{n}"{order.get(n, "")}').to_arrow_table().to_pandas())
            for n in sorted(names)
        }
    finally:
        con.close()
    values = frames["indicator_values"][list(VALUE_COLUMNS)]
    classification = frames.get("classification")
    if classification is None:
        classification = pd.DataFrame(
            columns=["level", "area_code", "year", "scheme", "version", "category", "reasons", "score", "rank"]
        )
    polygons = gpd.read_parquet(path / "areas.geo.parquet")
    return Store(
        path=path,
        manifest=manifest,
        values=values,
        ranges=frames["indicator_ranges"],
        areas=frames["areas"],
        members=frames["area_grunnkrets"],
        catalogue=frames["catalogue"],
        classification=classification,
        extra={n: f for n, f in frames.items() if n not in CORE_TABLES},
        geojson=to_geojson(polygons, simplify),
    )
