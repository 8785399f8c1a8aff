"""Table views: every table the web shows is one of these, so each can be downloaded as CSV (SSB symbols),
Excel and JSON-stat 2.0 from the same frame. A view is built from the store only."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from levekar.sources.jsonstat import to_jsonstat
from levekar.web import i18n
from levekar.web.store import NotFound, Store

SUPPRESSED, MISSING, NOTHING = ":", "..", "-"
CONTENTS = "contents"
# counts are written as whole numbers (the later stages' tables store them as floats, NaN where suppressed)
COUNTS = (
    "numerator", "denominator", "enrolled", "resident", "local", "count", "total", "persons", "persons_from",
    "persons_to", "units", "schools", "classified", "in_area", "elsewhere_in_kommune", "other_kommune",
    "emigrated", "died", "unrecorded",
)  # fmt: skip


@dataclass
class View:
    name: str  # file stem of downloads
    title: str
    frame: pd.DataFrame  # dimension columns, then measure columns
    dimensions: list[str]
    measures: list[str]
    status: pd.DataFrame  # per measure column: a symbol where the cell has no number, else None
    labels: dict[str, str] = field(default_factory=dict)
    category_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    note: str = ""
    decimals: dict[str, int] = field(default_factory=dict)  # per measure; one decimal when not given

    def column(self, column: str) -> list[str]:
        """A column as shown and written to CSV: a symbol, a formatted number or text."""
        digits = self.decimals.get(column, 1)
        values = [_format(v, column, digits) for v in self.frame[column].tolist()]
        if column in self.status:
            symbols = self.status[column].tolist()
            values = [s if isinstance(s, str) and s else v for v, s in zip(values, symbols, strict=True)]
        return values

    def records(self) -> list[dict[str, str]]:
        cols = [*self.dimensions, *self.measures]
        columns = [self.column(c) for c in cols]
        return [dict(zip(cols, row, strict=True)) for row in zip(*columns, strict=True)]

    def csv(self) -> bytes:
        import csv

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = [*self.dimensions, *self.measures]
        w.writerow(cols)
        for rec in self.records():
            w.writerow([rec[c] for c in cols])
        return buf.getvalue().encode("utf-8")

    def xlsx(self, synthetic: bool, lang: str) -> bytes:
        from openpyxl import Workbook
        from openpyxl.styles import Font

        wb = Workbook()
        ws = wb.active
        ws.title = "data"[:31]
        cols = [*self.dimensions, *self.measures]
        ws.append([self.labels.get(c, c) for c in cols])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        columns = []
        for c in cols:
            symbols = self.status[c].tolist() if c in self.status else [None] * len(self.frame)
            columns.append(
                [
                    s if isinstance(s, str) and s else _excel(v)  # SSB's symbol as text, as in Statbank's files
                    for v, s in zip(self.frame[c].tolist(), symbols, strict=True)
                ]
            )
        for row in zip(*columns, strict=True):
            ws.append(list(row))
        ws.freeze_panes = "A2"
        about = wb.create_sheet("om" if lang == "nb" else "about")
        about.append([self.title])
        about["A1"].font = Font(bold=True)
        if synthetic:
            about.append([i18n.t(lang, "synthetic")])
        about.append([i18n.t(lang, "symbols")])
        if self.note:
            about.append([self.note])
        about.append(["levekår — NOU 2020:16"])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    def jsonstat(self, synthetic: bool, updated: str | None = None) -> dict:
        """JSON-stat 2.0 by the shared writer (`levekar.sources.jsonstat.to_jsonstat`): the view's dimensions,
        then a `contents` dimension (role `metric`) over the measures; a cell with a symbol has no number."""
        dims, measures = self.dimensions, self.measures
        long = self.frame[[*dims, *measures]].melt(
            id_vars=dims, value_vars=measures, var_name=CONTENTS, value_name="__value"
        )
        symbols = [self.status[m] if m in self.status else pd.Series(None, index=self.frame.index) for m in measures]
        long["__status"] = pd.concat(symbols, ignore_index=True).to_numpy(dtype=object)
        marked = long["__status"].map(lambda s: isinstance(s, str) and s != "").to_numpy(dtype=bool)
        long["__status"] = long["__status"].where(marked, None)
        if marked.any():
            long["__value"] = long["__value"].astype(object).where(~marked, None)
        order = {d: [str(c) for c in dict.fromkeys(self.frame[d].tolist())] for d in dims}  # as the table reads
        order[CONTENTS] = list(measures)
        labels: dict = {d: dict(self.category_labels[d]) for d in dims if d in self.category_labels}
        labels[CONTENTS] = {m: self.labels.get(m, m) for m in measures}
        return to_jsonstat(
            long,
            [*dims, CONTENTS],
            value="__value",
            status="__status",
            label=self.title,
            source="levekår",
            updated=updated,
            labels=labels,
            titles={d: self.labels.get(d, d) for d in [*dims, CONTENTS]},
            order=order,
            roles={**{k: list(v) for k, v in self.roles.items()}, "metric": [CONTENTS]},
            extension={"synthetic": synthetic, "symbols": {":": "suppressed", "..": "missing", "-": "nothing"}},
        )


def _excel(v):
    """A cell for openpyxl: numbers as numbers, empty as empty, the rest as text."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, bool | int | float):
        return v
    return str(v)


def _format(v, column: str, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return MISSING
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if column in COUNTS and float(v).is_integer():
            return str(int(v))
        return f"{float(v):.{digits}f}"
    return str(v)


def _value_status(rows: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """`:` for what suppression hides, `-` for a reference that does not apply (the kommune of the country),
    `..` for any other empty cell."""
    st = pd.DataFrame(index=rows.index, columns=measures, dtype=object)
    hidden = rows["suppressed"].to_numpy(dtype=bool)
    for m in measures:
        col = rows[m]
        empty = col.isna().to_numpy()
        s = np.full(len(rows), None, dtype=object)
        s[empty] = MISSING
        if m in ("value_kommune", "relative_difference_kommune", "significance_kommune"):
            s[empty & rows["level"].isin(["country"]).to_numpy()] = NOTHING
        if m not in ("value_kommune", "value_country", "kommune"):
            s[hidden] = SUPPRESSED
        st[m] = s
    return st


def _measure_labels(lang: str) -> dict[str, str]:
    t = i18n.t
    return {
        "value": t(lang, "value"),
        "ci_low": t(lang, "ci_low"),
        "ci_high": t(lang, "ci_high"),
        "numerator": t(lang, "numerator"),
        "denominator": t(lang, "denominator"),
        "value_kommune": t(lang, "kommune_value"),
        "value_country": t(lang, "country_value"),
        "relative_difference_country": t(lang, "rel_country"),
        "relative_difference_kommune": t(lang, "rel_kommune"),
        "label": t(lang, "label"),
        "significance_country": t(lang, "significance"),
        "significance_kommune": t(lang, "significance_kommune"),
        "indicator_id": t(lang, "indicator"),
        "area_code": t(lang, "area"),
        "level": t(lang, "level"),
        "year": t(lang, "year"),
        "group": t(lang, "group"),
        "pooled_years": t(lang, "pooled"),
        "scheme": t(lang, "scheme"),
        "category": t(lang, "category") + " (id)",
        "category_name": t(lang, "category"),
        "criteria_met": t(lang, "criteria_met"),
        "reasons": t(lang, "reasons"),
        "score": t(lang, "score"),
        "rank": t(lang, "rank"),
        "contents": "contents",
    }


VALUE_MEASURES = [
    "value",
    "ci_low",
    "ci_high",
    "numerator",
    "denominator",
    "value_kommune",
    "value_country",
    "relative_difference_country",
    "label",
    "significance_country",
]


def _values_view(
    store: Store, rows: pd.DataFrame, dims: list[str], name: str, title: str, lang: str, measures=None
) -> View:
    measures = list(measures or VALUE_MEASURES)
    rows = rows.copy()
    rows["group"] = np.where(
        rows["breakdown"] == "total", "total", rows["breakdown"].astype(str) + "=" + rows["breakdown_value"].astype(str)
    )
    rows = rows.reset_index(drop=True)
    frame = rows[[*dims, *measures]].copy()
    # words in the reader's language (the store keeps the report's Norwegian labels and English codes)
    if "label" in frame:
        frame["label"] = [i18n.comparison_label(lang, x) or None for x in frame["label"]]
    for col in ("significance_country", "significance_kommune"):
        if col in frame:
            frame[col] = [i18n.significance_name(lang, x) or None for x in frame[col]]
    status = _value_status(rows, measures)
    labels = _measure_labels(lang)
    cats = {
        "indicator_id": {i: i18n.indicator_title(lang, r) for i, r in store.indicators.items()},
        "level": {lv: i18n.level_name(lang, lv) for lv in store.levels},
        "group": {
            ("total" if b == "total" else f"{b}={v}"): i18n.breakdown_name(lang, b, v) for b, v in store.breakdowns
        },
    }
    if "area_code" in dims and rows["level"].nunique() == 1:
        lv = rows["level"].iloc[0] if len(rows) else ""
        cats["area_code"] = {c: store.area_label(lang, lv, c) for c in rows["area_code"].unique()}
    roles = {"time": ["year"]} if "year" in dims else {}
    if "area_code" in dims:
        roles["geo"] = ["area_code"]
    return View(
        name=name,
        title=title,
        frame=frame,
        dimensions=dims,
        measures=measures,
        status=status,
        labels=labels,
        category_labels={k: v for k, v in cats.items() if k in dims},
        roles=roles,
    )


def map_view(
    store: Store, indicator: str, level: str, year: int, breakdown: str, breakdown_value: str, lang: str
) -> View:
    store.check_breakdown(breakdown, breakdown_value)
    rows = store.slice(indicator, level, year, breakdown, breakdown_value)
    title = (
        f"{i18n.indicator_title(lang, store.indicator(indicator))}, {i18n.level_name(lang, level)}, {year}, "
        f"{i18n.breakdown_name(lang, breakdown, breakdown_value)}"
    )
    return _values_view(store, rows, ["area_code"], f"{indicator}_{level}_{year}", title, lang)


def query_view(store: Store, rows: pd.DataFrame, lang: str) -> View:
    dims = ["indicator_id", "level", "area_code", "year", "pooled_years", "group"]
    title = i18n.t(lang, "site")
    return _values_view(store, rows, dims, "values", title, lang)


def profile_rows(store: Store, level: str, code: str, year: int) -> pd.DataFrame:
    """The area's rows for the whole population in one year, in catalogue order."""
    rows = store.area_values(level, code)
    rows = rows[(rows["year"] == year) & (rows["breakdown"] == "total") & (rows["pooled_years"] == 1)]
    order = {i: k for k, i in enumerate(store.indicator_ids)}
    return rows.sort_values("indicator_id", key=lambda s: s.map(order))


def profile_view(store: Store, level: str, code: str, year: int, lang: str) -> View:
    rows = profile_rows(store, level, code, year)
    measures = [*VALUE_MEASURES, "relative_difference_kommune", "significance_kommune"]
    title = f"{i18n.t(lang, 'profile')}: {store.area_label(lang, level, code)}, {year}"
    return _values_view(store, rows, ["indicator_id"], f"profile_{level}_{code}_{year}", title, lang, measures)


def trend_view(store: Store, level: str, code: str, lang: str) -> View:
    rows = store.area_values(level, code)
    rows = rows[(rows["breakdown"] == "total") & (rows["pooled_years"] == 1)]
    order = {i: k for k, i in enumerate(store.indicator_ids)}
    rows = rows.sort_values(["indicator_id", "year"], key=lambda s: s.map(order) if s.name == "indicator_id" else s)
    measures = ["value", "ci_low", "ci_high", "value_kommune", "value_country"]
    title = f"{i18n.t(lang, 'trend')}: {store.area_label(lang, level, code)}"
    return _values_view(store, rows, ["indicator_id", "year"], f"trend_{level}_{code}", title, lang, measures)


def parse_areas(store: Store, spec: str) -> list[tuple[str, str]]:
    """'level:code,level:code' → checked pairs (at most 12, as a table can show)."""
    out = []
    for part in [p.strip() for p in spec.split(",") if p.strip()][:12]:
        if ":" not in part:
            raise NotFound(f"area {part!r}: write it as level:code, e.g. kommune:0301")
        level, code = part.split(":", 1)
        store.check_area(level, code)
        if (level, code) not in out:
            out.append((level, code))
    return out


def compare_view(store: Store, areas: list[tuple[str, str]], year: int, lang: str) -> View:
    parts = [profile_rows(store, lv, c, year).assign(area=f"{lv}:{c}") for lv, c in areas]
    rows = pd.concat(parts, ignore_index=True) if parts else store.values.iloc[:0].assign(area="")
    order = {i: k for k, i in enumerate(store.indicator_ids)}
    pos = {f"{lv}:{c}": k for k, (lv, c) in enumerate(areas)}
    rows = rows.sort_values(
        ["indicator_id", "area"], key=lambda s: s.map(order) if s.name == "indicator_id" else s.map(pos)
    )
    measures = ["value", "ci_low", "ci_high", "label", "significance_country"]
    v = _values_view(store, rows, ["indicator_id", "area"], f"compare_{year}", i18n.t(lang, "compare"), lang, measures)
    v.category_labels["area"] = {f"{lv}:{c}": store.area_label(lang, lv, c) for lv, c in areas}
    v.labels["area"] = i18n.t(lang, "area")
    return v


def classification_view(
    store: Store, scheme: str, level: str, year: int, lang: str, category: str | None = None
) -> View:
    store.check_scheme(scheme)
    store.check_level(level)
    c = store.classification
    rows = c[(c["scheme"] == scheme) & (c["level"] == level) & (c["year"] == year)]
    if category:
        rows = rows[rows["category"] == category]
    rows = rows.sort_values(["rank", "area_code"], na_position="last").reset_index(drop=True)
    measures = ["category", "category_name", "criteria_met", "reasons", "score", "rank"]
    rows = rows.assign(
        category_name=[i18n.category_name(lang, str(c)) for c in rows["category"]],
        # a space after each comma lets a long list wrap in a table cell
        criteria_met=rows["criteria_met"].fillna("").astype(str).str.replace(",", ", "),
    )
    frame = rows[["area_code", *measures]].copy()
    status = pd.DataFrame(index=frame.index, columns=measures, dtype=object)
    for m in measures:
        s = np.full(len(frame), None, dtype=object)
        empty = frame[m].isna().to_numpy() | (frame[m].astype(str) == "").to_numpy()
        s[empty] = NOTHING if m in ("score", "rank", "criteria_met") else MISSING
        status[m] = s
    title = f"{i18n.scheme_name(lang, scheme)}, {i18n.level_name(lang, level)}, {year}"
    return View(
        name=f"{scheme}_{level}_{year}",
        title=title,
        frame=frame,
        dimensions=["area_code"],
        measures=measures,
        status=status,
        labels=_measure_labels(lang),
        category_labels={"area_code": {a: store.area_label(lang, level, a) for a in frame["area_code"]}},
        roles={"geo": ["area_code"]},
    )


def table_view(store: Store, name: str, lang: str, limit: int = 50_000) -> View:
    """An extra table of the store (segregation, flows, …) as it is: text columns are the dimensions."""
    frame = store.check_table(name).head(limit).reset_index(drop=True)
    dims = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    measures = [c for c in frame.columns if c not in dims]
    if not dims or frame.duplicated(dims).any():
        # the text columns do not identify the rows: number them, and keep every column as a measure
        frame.insert(0, "row", [str(i) for i in range(len(frame))])
        dims, measures = ["row"], [c for c in frame.columns if c != "row"]
    status = pd.DataFrame(index=frame.index, columns=measures, dtype=object)
    for m in measures:
        status[m] = np.where(frame[m].isna().to_numpy(), MISSING, None)
    return View(name=name, title=name, frame=frame, dimensions=dims, measures=measures, status=status)
