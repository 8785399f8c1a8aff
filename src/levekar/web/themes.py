"""The dedicated views over the later stages' store tables: residential segregation (K-nearest profiles and
indices), schools and kindergartens, and moves and change (flows). Each table is a `views.View` (so it
downloads as CSV with SSB's symbols, Excel and JSON-stat like every other table), each chart a Plotly dict.

A table the store lacks is not an error of the page: the page says plainly that it is absent; the API
answers 404 with the same sentence. Every cell the store publishes as suppressed (a `suppressed` flag, or a
row whose every number is empty) is shown as `:`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from levekar.web import i18n
from levekar.web.store import NotFound, Store
from levekar.web.views import MISSING, NOTHING, SUPPRESSED, View

KNN = "segregation_knn_profile"
RESIDENTIAL = "segregation_indices"
SCHOOL_TABLES = {
    "classes": "segregation_school_classes",
    "uptake": "segregation_school_uptake",
    "contrast": "segregation_contrast_pairs",
    "kindergarten": "segregation_kindergarten_pairs",
    "indices": "segregation_institution_indices",
    "composition": "segregation_institution_composition",
}
FLOWS = {"movers": "flows_movers", "decomposition": "flows_decomposition", "cohort": "flows_cohort"}
KNN_MEASURES = ("dissimilarity", "entropy", "isolation", "mean_share")
# the flow groups a bar chart of one pair shows: where the residents went and where the new ones came from
OUT_GROUPS = ("out_within_kommune", "out_other_kommune", "emigrated", "left_unrecorded", "deaths")
IN_GROUPS = ("in_within_kommune", "in_other_kommune", "immigrated", "arrived_unrecorded", "births")
COMPONENTS = (
    "stayers",
    "ageing_in",
    "ageing_out",
    "in_within_kommune",
    "in_other_kommune",
    "immigrated",
    "arrived_unrecorded",
    "births",
    "out_within_kommune",
    "out_other_kommune",
    "emigrated",
    "left_unrecorded",
    "deaths",
    "small_groups",
)
COHORT_WHERE = ("in_area", "elsewhere_in_kommune", "other_kommune", "emigrated", "died", "unrecorded")


# ---------- small helpers ----------
def table(store: Store, name: str) -> pd.DataFrame | None:
    return store.extra.get(name)


def need(store: Store, name: str, lang: str) -> pd.DataFrame:
    """The table, or NotFound with the sentence the page shows when it is absent."""
    t = store.extra.get(name)
    if t is None:
        raise NotFound(i18n.t(lang, "table_absent", name=name))
    return t


def _status(frame: pd.DataFrame, measures: list[str], hidden: np.ndarray | None = None, empty: str = MISSING):
    """`:` where the row (or cell) is suppressed, `empty` for any other empty cell."""
    st = pd.DataFrame(index=frame.index, columns=measures, dtype=object)
    for m in measures:
        s = np.full(len(frame), None, dtype=object)
        s[frame[m].isna().to_numpy()] = empty
        if hidden is not None:
            s[hidden] = SUPPRESSED
        st[m] = s
    return st


# index values (0–1) need three decimals to be told apart
INDEX_MEASURES = ("value", "ci_low", "ci_high", "p_value", *KNN_MEASURES, "p10", "p25", "p50", "p75", "p90")


def _view(name, title, frame, dims, measures, lang, status=None, cats=None, roles=None, index=False) -> View:
    frame = frame.reset_index(drop=True)
    labels = {c: i18n.term(lang, c) for c in [*dims, *measures]}
    status = _status(frame, measures) if status is None else status.reset_index(drop=True)
    return View(
        name=name,
        title=title,
        frame=frame[[*dims, *measures]],
        dimensions=dims,
        measures=measures,
        status=status,
        labels=labels,
        category_labels={k: v for k, v in (cats or {}).items() if k in dims},
        roles=roles or {},
        decimals={m: 3 for m in measures if m in INDEX_MEASURES} if index else {},
    )


def _terms(lang: str, values) -> dict[str, str]:
    return {str(v): i18n.term(lang, str(v)) for v in dict.fromkeys(values)}


def pick(value, options: list, what: str):
    """A requested value among the table's, or the first; unknown → NotFound naming what exists."""
    if value is None or value == "":
        return options[0] if options else None
    for o in options:
        if str(o) == str(value):
            return o
    shown = ", ".join(str(o) for o in options[:12])
    raise NotFound(f"unknown {what} {value!r}; known: {shown}")


# ---------- residential segregation ----------
def knn_options(store: Store) -> dict:
    t = table(store, KNN)
    if t is None:
        return {}
    return {"groups": sorted(t["group"].unique()), "years": sorted(int(y) for y in t["year"].unique())}


def knn_view(store: Store, lang: str, group: str | None = None) -> View:
    t = need(store, KNN, lang)
    group = pick(group, prefer(sorted(t["group"].unique()), "immigrant_background"), "group")
    rows = t[t["group"] == group].sort_values(["year", "k"])
    measures = [c for c in rows.columns if c not in ("year", "cell_size", "convention", "k", "group")]
    title = f"{i18n.t(lang, 'knn_title')}: {i18n.term(lang, group)}"
    return _view(f"knn_{group}", title, rows, ["year", "k"], measures, lang, roles={"time": ["year"]}, index=True)


def knn_figure(lang: str, view: View, measure: str) -> dict:
    f = view.frame
    traces = []
    for year, g in f.groupby("year", sort=True):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": str(year),
                "x": g["k"].astype(int).tolist(),
                "y": g[measure].astype(float).round(4).tolist(),
                "hovertemplate": f"{year}, K = %{{x}}: %{{y:.3f}}<extra></extra>",
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"{i18n.term(lang, measure)} — {view.title}", "font": {"size": 15}},
            "xaxis": {"title": {"text": i18n.t(lang, "k_axis")}, "type": "log", "tickvals": sorted(set(f["k"]))},
            "yaxis": {"title": {"text": i18n.term(lang, measure)}, "rangemode": "tozero", "gridcolor": "#e5e5e5"},
            "height": 420,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "legend": {"title": {"text": i18n.t(lang, "year")}},
        },
    }


def residential_frame(store: Store) -> pd.DataFrame | None:
    t = table(store, RESIDENTIAL)
    if t is not None and "group_id" not in t.columns and "group" in t.columns:
        t = t.rename(columns={"group": "group_id"})  # the name the indices stage gave it before `group_id`
    return t


def residential_options(store: Store) -> dict:
    t = residential_frame(store)
    if t is None:
        return {}
    scopes = t[["scope_level", "scope_code"]].drop_duplicates().sort_values(["scope_level", "scope_code"])
    return {
        "scopes": [f"{lv}:{c}" for lv, c in zip(scopes["scope_level"], scopes["scope_code"], strict=True)],
        "unit_levels": sorted(t["unit_level"].unique()),
        "groups": sorted(t["group_id"].unique()),
    }


def residential_view(
    store: Store, lang: str, scope: str | None = None, unit_level: str | None = None, group: str | None = None
) -> View:
    t = residential_frame(store)
    if t is None:
        raise NotFound(i18n.t(lang, "table_absent", name=RESIDENTIAL))
    opts = residential_options(store)
    scope = pick(scope, prefer(opts["scopes"], "kommune:"), "scope")
    scope_level, scope_code = scope.split(":", 1)
    t = t[(t["scope_level"] == scope_level) & (t["scope_code"].astype(str) == scope_code)]
    unit_level = pick(unit_level, prefer(sorted(t["unit_level"].unique()), "grunnkrets"), "unit level")
    t = t[t["unit_level"] == unit_level]
    group = pick(group, sorted(t["group_id"].unique()), "group")
    rows = t[t["group_id"] == group].sort_values(["index", "year"])
    measures = [c for c in ("value", "ci_low", "ci_high", "units") if c in rows.columns]
    where = store.area_label(lang, scope_level, scope_code) if (scope_level, scope_code) in store.area_index else scope
    title = f"{i18n.t(lang, 'residential_title')}: {where}, {i18n.term(lang, unit_level)}, {i18n.term(lang, group)}"
    cats = {"index": _terms(lang, rows["index"])}
    return _view(
        f"residential_{scope_level}_{scope_code}_{unit_level}_{group}",
        title,
        rows,
        ["index", "year"],
        measures,
        lang,
        cats=cats,
        roles={"time": ["year"]},
        index=True,
    )


def prefer(options: list[str], first: str) -> list[str]:
    return sorted(options, key=lambda o: (not str(o).startswith(first), str(o)))


def residential_figure(lang: str, view: View) -> dict:
    """Each index over the years with its interval (where the store gives one)."""
    f = view.frame
    traces = []
    for index, g in f.groupby("index", sort=True):
        v = g["value"].astype(float).to_numpy()
        trace = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": i18n.term(lang, str(index)),
            "x": g["year"].astype(int).tolist(),
            "y": np.round(v, 4).tolist(),
        }
        if "ci_low" in g and g["ci_low"].notna().any():
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "array": np.round(g["ci_high"].astype(float).to_numpy() - v, 4).tolist(),
                "arrayminus": np.round(v - g["ci_low"].astype(float).to_numpy(), 4).tolist(),
            }
        traces.append(trace)
    return {
        "data": traces,
        "layout": {
            "title": {"text": view.title, "font": {"size": 15}},
            "xaxis": {"title": {"text": i18n.t(lang, "year")}, "dtick": 1},
            "yaxis": {"title": {"text": i18n.t(lang, "index_value")}, "rangemode": "tozero", "gridcolor": "#e5e5e5"},
            "height": 440,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        },
    }


# ---------- schools and kindergartens ----------
def school_options(store: Store) -> dict:
    c = table(store, SCHOOL_TABLES["composition"])
    k = table(store, SCHOOL_TABLES["classes"])
    if c is None or k is None:
        return {}
    return {
        "years": sorted(int(y) for y in k["year"].unique()),
        "groups": sorted(c["group"].unique()),
        "kommuner": sorted(str(x) for x in c["kommune"].dropna().unique()),
    }


def school_view(
    store: Store, part: str, lang: str, year: int | None = None, group: str | None = None, kommune: str | None = None
) -> View:
    """One of the school tables (`part` in SCHOOL_TABLES) for a year, group and kommune."""
    if part not in SCHOOL_TABLES:
        raise NotFound(f"unknown school table {part!r}; known: {', '.join(SCHOOL_TABLES)}")
    t = need(store, SCHOOL_TABLES[part], lang)
    opts = school_options(store)
    if not opts:
        raise NotFound(i18n.t(lang, "table_absent", name=SCHOOL_TABLES["composition"]))
    year = int(pick(year, opts["years"][::-1], "year"))
    group = pick(group, prefer(opts["groups"], "immigrant_background"), "group")
    kommune = pick(kommune, opts["kommuner"], "kommune")
    t = t[t["year"] == year]
    title_part = i18n.t(lang, f"school_{part}")
    where = store.area_label(lang, "kommune", kommune) if ("kommune", kommune) in store.area_index else kommune
    title = f"{title_part}: {where}, {year}"
    if part == "classes":
        rows = t[(t["scope_level"] == "country") | (t["scope_code"].astype(str) == kommune)]
        rows = rows.assign(scope=rows["scope_level"] + ":" + rows["scope_code"].astype(str))
        dims = ["scope", "group"]
        measures = [c for c in rows.columns if c not in ("year", "scope_level", "scope_code", "scope", "group")]
        cats = {
            "scope": {
                s: store.area_label(lang, *s.split(":", 1)) if tuple(s.split(":", 1)) in store.area_index else s
                for s in rows["scope"]
            },
            "group": _terms(lang, rows["group"]),
        }
        return _view(f"school_classes_{kommune}_{year}", title, rows, dims, measures, lang, cats=cats)
    if part == "uptake":
        rows = t[t["kommune"].astype(str) == kommune].sort_values("institution_id")
        measures = ["enrolled", "resident", "uptake", "local", "local_share"]
        st = _status(rows, measures, empty=NOTHING)  # no catchment (resident) → nothing to show
        size_hidden = rows["uptake_suppressed"].to_numpy(dtype=bool)
        local_hidden = rows["local_suppressed"].to_numpy(dtype=bool)
        for m in ("enrolled", "resident", "uptake"):
            st.loc[size_hidden, m] = SUPPRESSED
        for m in ("local", "local_share"):
            st.loc[local_hidden, m] = SUPPRESSED
        return _view(f"school_uptake_{kommune}_{year}", title, rows, ["institution_id"], measures, lang, status=st)
    if part == "composition":
        rows = t[(t["kommune"].astype(str) == kommune) & (t["group"] == group)]
        rows = rows.sort_values(["kind", "institution_id", "basis"])
        measures = ["count", "total", "share"]
        st = _status(rows, measures, hidden=rows["suppressed"].to_numpy(dtype=bool))
        cats = {"kind": _terms(lang, rows["kind"]), "basis": _terms(lang, rows["basis"])}
        title = f"{title_part}: {where}, {year}, {i18n.term(lang, group)}"
        return _view(
            f"composition_{kommune}_{year}_{group}",
            title,
            rows,
            ["kind", "institution_id", "basis"],
            measures,
            lang,
            status=st,
            cats=cats,
        )
    if part == "indices":
        rows = t[(t["group"] == group) & ((t["scope_level"] == "country") | (t["scope_code"].astype(str) == kommune))]
        rows = rows.assign(scope=rows["scope_level"] + ":" + rows["scope_code"].astype(str))
        rows = rows.sort_values(["scope", "kind", "index", "basis"])
        measures = [c for c in ("value", "ci_low", "ci_high", "p_value", "units") if c in rows.columns]
        cats = {
            "kind": _terms(lang, rows["kind"]),
            "basis": _terms(lang, rows["basis"]),
            "index": _terms(lang, rows["index"]),
        }
        title = f"{title_part}: {where}, {year}, {i18n.term(lang, group)}"
        return _view(
            f"institution_indices_{kommune}_{year}_{group}",
            title,
            rows,
            ["scope", "kind", "index", "basis"],
            measures,
            lang,
            cats=cats,
            index=True,
        )
    # pairs of neighbouring schools / nearby kindergartens with very different composition
    kcol = "kommune_a" if part == "contrast" else "kommune"
    rows = t[(t["group"] == group) & (t[kcol].astype(str) == kommune)].sort_values(
        ["difference", "institution_a"], ascending=[False, True]
    )
    measures = (
        ["share_a", "share_b", "difference", "uptake_a", "uptake_b"]
        if part == "contrast"
        else ["distance_m", "share_a", "share_b", "difference"]
    )
    title = f"{title_part}: {where}, {year}, {i18n.term(lang, group)}"
    return _view(
        f"{part}_pairs_{kommune}_{year}_{group}", title, rows, ["institution_a", "institution_b"], measures, lang
    )


def institution_figure(lang: str, view: View) -> dict:
    """Segregation between institutions (enrolled) beside their catchments / nearest areas, per index."""
    f = view.frame
    traces = []
    for (kind, basis), g in f.groupby(["kind", "basis"], sort=True):
        traces.append(
            {
                "type": "bar",
                "name": f"{i18n.term(lang, str(kind))}: {i18n.term(lang, str(basis))}",
                "x": [i18n.term(lang, str(i)) for i in g["index"]],
                "y": g["value"].astype(float).round(4).tolist(),
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": (g["ci_high"] - g["value"]).astype(float).round(4).tolist(),
                    "arrayminus": (g["value"] - g["ci_low"]).astype(float).round(4).tolist(),
                },
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": view.title, "font": {"size": 15}},
            "barmode": "group",
            "yaxis": {"title": {"text": i18n.t(lang, "index_value")}, "gridcolor": "#e5e5e5"},
            "height": 440,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 90},
        },
    }


# ---------- moves and change ----------
def flow_pairs(store: Store, level: str, code: str) -> list[tuple[int, int]]:
    m = table(store, FLOWS["movers"])
    if m is None:
        return []
    idx = _flow_index(store)
    return sorted(idx.get((level, code), ()))


def _flow_index(store: Store) -> dict[tuple[str, str], set[tuple[int, int]]]:
    """(level, code) → the year pairs the movers table has for it (built once per store)."""
    got = getattr(store, "_flow_pairs", None)
    if got is None:
        m = store.extra[FLOWS["movers"]][["level", "area_code", "year_from", "year_to"]].drop_duplicates()
        got = {}
        for lv, c, a, b in m.itertuples(index=False):
            got.setdefault((str(lv), str(c)), set()).add((int(a), int(b)))
        store._flow_pairs = got
    return got


def parse_pair(store: Store, level: str, code: str, pair: str | None, lang: str) -> tuple[int, int]:
    need(store, FLOWS["movers"], lang)
    store.check_area(level, code)
    pairs = flow_pairs(store, level, code)
    if not pairs:
        raise NotFound(f"no flows for {level} {code!r}")
    if not pair:
        return max(pairs, key=lambda p: (p[1], p[1] - p[0] == 1, p[0]))  # the latest neighbouring pair
    try:
        a, b = (int(x) for x in pair.replace("→", "-").split("-", 1))
    except ValueError as e:
        raise NotFound(f"year pair {pair!r}: write it as FROM-TO, e.g. {pairs[-1][0]}-{pairs[-1][1]}") from e
    if (a, b) not in pairs:
        raise NotFound(
            f"no flows {a}→{b} for {level} {code!r}; published pairs: " + ", ".join(f"{x}-{y}" for x, y in pairs)
        )
    return a, b


def _area_rows(t: pd.DataFrame, level: str, code: str, pair: tuple[int, int]) -> pd.DataFrame:
    return t[(t["level"] == level) & (t["area_code"] == code) & (t["year_from"] == pair[0]) & (t["year_to"] == pair[1])]


def movers_view(store: Store, level: str, code: str, pair: tuple[int, int], lang: str) -> View:
    t = need(store, FLOWS["movers"], lang)
    rows = _area_rows(t, level, code, pair)
    order = {g: i for i, g in enumerate(("residents_from", "residents_to", "stayers", *OUT_GROUPS, *IN_GROUPS))}
    rows = rows.sort_values("group", key=lambda s: s.map(lambda g: (order.get(g, 99), g)))
    measures = [
        c for c in ("persons", "employment_20_66", "immigrant_background", "low_income_eu60", "median_eq_income")
    ]
    st = _status(rows, measures, hidden=rows["suppressed"].to_numpy(dtype=bool))
    title = f"{i18n.t(lang, 'flows_movers')}: {store.area_label(lang, level, code)}, {pair[0]}–{pair[1]}"
    return _view(
        f"movers_{level}_{code}_{pair[0]}_{pair[1]}",
        title,
        rows,
        ["group"],
        measures,
        lang,
        status=st,
        cats={"group": _terms(lang, rows["group"])},
    )


def movers_figure(lang: str, view: View) -> dict:
    """Persons leaving (by where they went) and arriving (by where they came from), side by side."""
    f = view.frame.set_index("group")
    st = view.status.set_index(view.frame["group"])
    traces = []
    for name, groups in (("flows_out", OUT_GROUPS), ("flows_in", IN_GROUPS)):
        xs, ys, texts = [], [], []
        for g in groups:
            if g not in f.index:
                continue
            xs.append(i18n.term(lang, g))
            hidden = st.loc[g, "persons"] == SUPPRESSED
            ys.append(None if hidden else float(f.loc[g, "persons"]))
            texts.append(":" if hidden else f"{float(f.loc[g, 'persons']):.0f}")
        traces.append({"type": "bar", "name": i18n.t(lang, name), "x": xs, "y": ys, "text": texts})
    return {
        "data": traces,
        "layout": {
            "title": {"text": view.title, "font": {"size": 15}},
            "yaxis": {"title": {"text": i18n.t(lang, "persons_axis")}, "gridcolor": "#e5e5e5"},
            "height": 420,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 110},
        },
    }


def decomposition_indicators(store: Store, level: str, code: str, pair: tuple[int, int]) -> list[str]:
    t = table(store, FLOWS["decomposition"])
    if t is None:
        return []
    rows = _area_rows(t, level, code, pair)
    have = set(rows["indicator_id"])
    return [i for i in store.indicator_ids if i in have] + sorted(have - set(store.indicator_ids))


def decomposition_view(
    store: Store, level: str, code: str, pair: tuple[int, int], indicator: str | None, lang: str
) -> View:
    t = need(store, FLOWS["decomposition"], lang)
    choices = decomposition_indicators(store, level, code, pair)
    if not choices:
        raise NotFound(
            f"no decomposition {pair[0]}→{pair[1]} for {level} {code!r} (published for the first → last and the "
            "last neighbouring pair)"
        )
    indicator = pick(indicator, choices, "indicator")
    rows = _area_rows(t, level, code, pair)
    row = rows[rows["indicator_id"] == indicator]
    hidden = bool(row["suppressed"].iloc[0])
    comps = [c for c in ("value_from", *COMPONENTS, "value_to", "change") if c in row.columns]
    long = pd.DataFrame({"component": comps, "points": [row[c].iloc[0] for c in comps]})
    st = pd.DataFrame({"points": [SUPPRESSED if hidden else (MISSING if pd.isna(v) else None) for v in long["points"]]})
    info = store.indicators.get(indicator, {"title_nb": indicator, "title_en": indicator})
    title = (
        f"{i18n.t(lang, 'flows_decomposition')}: {i18n.indicator_title(lang, info)}, "
        f"{store.area_label(lang, level, code)}, {pair[0]}–{pair[1]}"
    )
    v = _view(
        f"decomposition_{indicator}_{level}_{code}_{pair[0]}_{pair[1]}",
        title,
        long,
        ["component"],
        ["points"],
        lang,
        status=st,
        cats={"component": _terms(lang, comps)},
    )
    v.note = reading(lang, row.iloc[0]) if not hidden else i18n.t(lang, "suppressed_row")
    return v


def reading(lang: str, row) -> str:
    """The decomposition in plain words: the change, then the components that moved it most. English is the
    store's own sentence; bokmål is written here from the same numbers."""
    if lang == "en" and isinstance(row.get("reading"), str) and row.get("reading"):
        return str(row["reading"])
    change, a, b = float(row["change"]), float(row["value_from"]), float(row["value_to"])
    if abs(change) < 0.05:
        head = f"Andelen var nesten uendret ({_num(a)} → {_num(b)} %)"
    else:
        head = f"Andelen {'økte' if change > 0 else 'falt'} {_num(abs(change))} prosentpoeng ({_num(a)} → {_num(b)} %)"
    parts = [(c, float(row[c])) for c in COMPONENTS if c in row and pd.notna(row[c]) and round(float(row[c]), 1) != 0]
    parts.sort(key=lambda p: -abs(p[1]))
    if not parts:
        return head + "."
    said = "; ".join(f"{READING_NB.get(c, i18n.term('nb', c).lower())} {_num(v, sign=True)}" for c, v in parts[:3])
    return f"{head}. Størst bidrag (prosentpoeng): {said}."


# the components as the bokmål reading names them
READING_NB = {
    "stayers": "endring blant dem som ble boende",
    "ageing_in": "personer som kom inn i populasjonen uten å flytte",
    "ageing_out": "personer som gikk ut av populasjonen uten å flytte",
    "in_within_kommune": "innflyttere fra andre områder i kommunen",
    "in_other_kommune": "innflyttere fra andre kommuner",
    "immigrated": "innvandrede",
    "arrived_unrecorded": "tilkomne uten registrert flytting",
    "births": "fødte",
    "out_within_kommune": "utflyttere til andre områder i kommunen",
    "out_other_kommune": "utflyttere til andre kommuner",
    "emigrated": "utvandrede",
    "left_unrecorded": "bortfalte uten registrert flytting",
    "deaths": "døde",
    "small_groups": "små grupper samlet",
}


def _num(v: float, sign: bool = False) -> str:
    """A number as Norwegian text: decimal comma, a real minus sign."""
    text = f"{v:+.1f}" if sign else f"{v:.1f}"
    return text.replace("-", "−").replace(".", ",")


def decomposition_figure(lang: str, view: View) -> dict:
    """A waterfall: the first year's value, each component's contribution, the last year's value."""
    f = view.frame.set_index("component")["points"].astype(float)
    comps = [c for c in COMPONENTS if c in f.index and pd.notna(f[c])]
    x = [i18n.term(lang, "value_from"), *[i18n.term(lang, c) for c in comps], i18n.term(lang, "value_to")]
    y = [f.get("value_from"), *[f[c] for c in comps], f.get("value_to")]
    ok = all(v is not None and not np.isnan(v) for v in y)
    data = []
    if ok:
        data.append(
            {
                "type": "waterfall",
                "orientation": "v",
                "x": x,
                "y": [round(float(v), 3) for v in y],
                "measure": ["absolute", *["relative"] * len(comps), "total"],
                "text": [f"{v:+.1f}" if 0 < k < len(y) - 1 else f"{v:.1f}" for k, v in enumerate(y)],
                "increasing": {"marker": {"color": "#b2182b"}},
                "decreasing": {"marker": {"color": "#2166ac"}},
                "totals": {"marker": {"color": "#4d4d4d"}},
                "connector": {"line": {"color": "#999"}},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": view.title, "font": {"size": 15}},
            "yaxis": {"title": {"text": "%"}, "gridcolor": "#e5e5e5"},
            "height": 460,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 130},
            "showlegend": False,
        },
    }


def cohort_view(store: Store, level: str, code: str, pair: tuple[int, int], lang: str) -> View:
    t = need(store, FLOWS["cohort"], lang)
    rows = _area_rows(t, level, code, pair).sort_values("view", ascending=False)  # the cohort first
    measures = [c for c in rows.columns if c not in ("level", "area_code", "year_from", "year_to", "view")]
    hidden = rows[measures].isna().all(axis=1).to_numpy()  # the row went with its suppressed movers row
    st = _status(rows, measures, hidden=hidden, empty=NOTHING)
    title = f"{i18n.t(lang, 'flows_cohort')}: {store.area_label(lang, level, code)}, {pair[0]}–{pair[1]}"
    return _view(
        f"cohort_{level}_{code}_{pair[0]}_{pair[1]}",
        title,
        rows,
        ["view"],
        measures,
        lang,
        status=st,
        cats={"view": _terms(lang, rows["view"])},
    )


def flow_areas(store: Store, level: str | None = None) -> list[tuple[str, str]]:
    """Areas with flows (for the picker), coarse levels first."""
    if table(store, FLOWS["movers"]) is None:
        return []
    keys = _flow_index(store)
    order = {lv: i for i, lv in enumerate(store.levels)}
    out = [k for k in keys if level is None or k[0] == level]
    return sorted(out, key=lambda k: (order.get(k[0], 99), k[1]))
