"""Plotly figures as plain dicts (rendered in the browser by the bundled plotly.min.js). Maps are `choropleth`
traces on a `geo` subplot with `fitbounds` — no tiles, nothing fetched from elsewhere. The polygons are not
in the figure: the page adds the level's GeoJSON (served once, cached) to every trace, and the report embeds
it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from levekar.web import i18n

SUPPRESSED_GREY = "#7a7a7a"
MISSING_GREY = "#d9d9d9"
# colour-blind-safe sequential scales; "worse" is always the darker end
WORSE_HIGH = [[0, "#ffffcc"], [0.25, "#fed976"], [0.5, "#fd8d3c"], [0.75, "#e31a1c"], [1, "#800026"]]
NEUTRAL = [[0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]]
SIG_COLOURS = {"higher": "#b2182b", "lower": "#2166ac", "ns": "#4d4d4d", None: "#4d4d4d"}
# areas side by side: ColorBrewer Dark2, distinct and dark enough on white
AREA_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#666666"]
CATEGORY_COLOURS = ["#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac", "#999999", "#542788"]


def fmt(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ".."
    return f"{float(v):,.{digits}f}".replace(",", " ")


def _unit(kind: str) -> str:
    return " %" if kind == "share" else ""


def hover(lang: str, name: str, row, kind: str) -> str:
    """The tooltip of one area: value, interval, comparison and flags."""
    if row is None:
        return f"<b>{name}</b><br>{i18n.t(lang, 'no_data')} (..)"
    if row["suppressed"]:
        return f"<b>{name}</b><br>{i18n.t(lang, 'suppressed')} (:)"
    u = _unit(kind)
    parts = [f"<b>{name}</b>", f"{fmt(row['value'])}{u} ({fmt(row['ci_low'])}–{fmt(row['ci_high'])})"]
    if row.get("label"):
        parts.append(i18n.comparison_label(lang, row["label"]))
    if sig := i18n.significance_name(lang, row.get("significance_country")):
        parts.append(f"{i18n.t(lang, 'country_value')}: {sig}")
    if not row.get("reliable", True):
        parts.append(f"n = {fmt(row['denominator'], 0)} — {i18n.t(lang, 'reliable').split('(')[0].strip()}: ✗")
    return "<br>".join(parts)


def map_figure(
    lang: str,
    rows: pd.DataFrame,
    all_codes: list[str],
    level: str,
    indicator: dict,
    title: str,
    names: dict[tuple[str, str], str] | None = None,
) -> dict:
    """Values, suppressed cells and areas without a row as three traces (the last two in fixed greys);
    `names` ((level, code) → place name) puts the name beside the code in the tooltips."""
    kind = indicator.get("kind", "share")
    direction = indicator.get("direction", "neutral")
    by_code = {r["area_code"]: r for r in rows.to_dict("records")}
    shown = [c for c in all_codes if c in by_code and not by_code[c]["suppressed"] and _ok(by_code[c]["value"])]
    hidden = [c for c in all_codes if c in by_code and by_code[c]["suppressed"]]
    missing = [c for c in all_codes if c not in shown and c not in hidden]
    names = names or {}
    name = {c: i18n.area_name(lang, level, c, names.get((level, c))) for c in all_codes}
    scale = WORSE_HIGH if direction in ("higher_is_worse", "higher_is_better") else NEUTRAL
    traces = [
        {
            "type": "choropleth",
            "name": i18n.t(lang, "value"),
            "locations": shown,
            "z": [float(by_code[c]["value"]) for c in shown],
            "featureidkey": "id",
            "colorscale": scale,
            # higher is better: the darkest colour for the lowest value, so dark is always worse
            "reversescale": direction == "higher_is_better",
            "marker": {"line": {"color": "#ffffff", "width": 0.5}},
            "colorbar": {"title": {"text": "%" if kind == "share" else ""}, "thickness": 14},
            "hovertext": [hover(lang, name[c], by_code[c], kind) for c in shown],
            "hoverinfo": "text",
            "customdata": shown,
        }
    ]
    for codes, colour, label in (
        (hidden, SUPPRESSED_GREY, f"{i18n.t(lang, 'suppressed')} (:)"),
        (missing, MISSING_GREY, f"{i18n.t(lang, 'no_data')} (..)"),
    ):
        if codes:
            traces.append(
                {
                    "type": "choropleth",
                    "name": label,
                    "locations": codes,
                    "z": [0] * len(codes),
                    "featureidkey": "id",
                    "colorscale": [[0, colour], [1, colour]],
                    "showscale": False,
                    "showlegend": True,
                    "marker": {"line": {"color": "#ffffff", "width": 0.5}},
                    "hovertext": [hover(lang, name[c], by_code.get(c), kind) for c in codes],
                    "hoverinfo": "text",
                    "customdata": codes,
                }
            )
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "geo": {"fitbounds": "locations", "visible": False, "projection": {"type": "mercator"}},
            "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
            "height": 560,
            "legend": {"orientation": "h", "y": -0.02},
            "font": {"family": "system-ui, sans-serif"},
        },
    }


def category_map(
    lang: str,
    rows: pd.DataFrame,
    all_codes: list[str],
    level: str,
    title: str,
    names: dict[tuple[str, str], str] | None = None,
) -> dict:
    """A categorical map (classification): one trace per category, in the order given."""
    names = names or {}
    traces = []
    cats = list(dict.fromkeys(rows["category"].tolist()))
    for k, cat in enumerate(cats):
        sub = rows[rows["category"] == cat]
        colour = CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)]
        codes = sub["area_code"].tolist()
        traces.append(
            {
                "type": "choropleth",
                "name": i18n.category_name(lang, str(cat)),
                "locations": codes,
                "z": [0] * len(codes),
                "featureidkey": "id",
                "colorscale": [[0, colour], [1, colour]],
                "showscale": False,
                "showlegend": True,
                "marker": {"line": {"color": "#ffffff", "width": 0.5}},
                "hovertext": [
                    f"<b>{i18n.area_name(lang, level, c, names.get((level, c)))}</b><br>"
                    f"{i18n.category_name(lang, str(cat))}"
                    for c in codes
                ],
                "hoverinfo": "text",
            }
        )
    rest = sorted(set(all_codes) - set(rows["area_code"]))
    if rest:
        traces.append(
            {
                "type": "choropleth",
                "name": i18n.t(lang, "no_data"),
                "locations": rest,
                "z": [0] * len(rest),
                "featureidkey": "id",
                "colorscale": [[0, MISSING_GREY], [1, MISSING_GREY]],
                "showscale": False,
                "showlegend": True,
                "hoverinfo": "skip",
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "geo": {"fitbounds": "locations", "visible": False, "projection": {"type": "mercator"}},
            "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
            "height": 520,
            "legend": {"orientation": "h", "y": -0.02},
        },
    }


def _ok(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def profile_figure(lang: str, rows: pd.DataFrame, catalogue: dict[str, dict], title: str) -> dict:
    """Shares (percent) of one area: the value with its interval, the kommune and the country; the area's
    marker coloured by significance against the country."""
    rows = rows[[catalogue[i]["kind"] == "share" for i in rows["indicator_id"]]]
    rows = rows.iloc[::-1]  # first indicator on top
    names = [i18n.indicator_title(lang, catalogue[i]) for i in rows["indicator_id"]]
    ok = ~rows["suppressed"].to_numpy(dtype=bool)
    v = rows["value"].to_numpy(dtype=float)
    lo = rows["ci_low"].to_numpy(dtype=float)
    hi = rows["ci_high"].to_numpy(dtype=float)
    colours = [SIG_COLOURS.get(s, SIG_COLOURS[None]) for s in rows["significance_country"]]
    symbols = [
        "triangle-up" if s == "higher" else "triangle-down" if s == "lower" else "circle"
        for s in rows["significance_country"]
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": i18n.t(lang, "area"),
                "y": names,
                "x": np.where(ok, v, np.nan).tolist(),
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": np.where(ok, hi - v, np.nan).tolist(),
                    "arrayminus": np.where(ok, v - lo, np.nan).tolist(),
                    "color": "#555",
                },
                "marker": {"color": colours, "symbol": symbols, "size": 11},
                "hovertemplate": "%{y}: %{x:.1f} %<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "markers",
                "name": i18n.t(lang, "kommune_value"),
                "y": names,
                "x": rows["value_kommune"].astype(float).tolist(),
                "marker": {"symbol": "diamond-open", "size": 10, "color": "#1b7837"},
                "hovertemplate": "%{y}: %{x:.1f} %<extra>" + i18n.t(lang, "kommune_value") + "</extra>",
            },
            {
                "type": "scatter",
                "mode": "markers",
                "name": i18n.t(lang, "country_value"),
                "y": names,
                "x": rows["value_country"].astype(float).tolist(),
                "marker": {"symbol": "line-ns-open", "size": 16, "color": "#000", "line": {"width": 2}},
                "hovertemplate": "%{y}: %{x:.1f} %<extra>" + i18n.t(lang, "country_value") + "</extra>",
            },
        ],
        "layout": {
            "height": 140 + 26 * len(names),
            "margin": {"l": 380, "r": 20, "t": 50, "b": 40},
            "xaxis": {"title": {"text": "%"}, "rangemode": "tozero", "gridcolor": "#e5e5e5"},
            "yaxis": {"automargin": True},
            "legend": {"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
            "plot_bgcolor": "#ffffff",
        },
    }


def trend_figure(lang: str, rows: pd.DataFrame, indicator: dict, area_label: str) -> dict:
    """One indicator over the years: the area with its interval, the kommune and the country."""
    rows = rows.sort_values("year")
    ok = ~rows["suppressed"].to_numpy(dtype=bool)
    v = np.where(ok, rows["value"].to_numpy(dtype=float), np.nan)
    years = rows["year"].astype(int).tolist()
    u = "%" if indicator.get("kind") == "share" else ""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": area_label,
                "x": years,
                "y": v.tolist(),
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": (rows["ci_high"].to_numpy(dtype=float) - v).tolist(),
                    "arrayminus": (v - rows["ci_low"].to_numpy(dtype=float)).tolist(),
                    "color": "#777",
                },
                "line": {"color": "#b2182b"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": i18n.t(lang, "kommune_value"),
                "x": years,
                "y": rows["value_kommune"].astype(float).tolist(),
                "line": {"color": "#1b7837", "dash": "dash"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": i18n.t(lang, "country_value"),
                "x": years,
                "y": rows["value_country"].astype(float).tolist(),
                "line": {"color": "#000000", "dash": "dot"},
            },
        ],
        "layout": {
            "title": {"text": i18n.indicator_title(lang, indicator), "font": {"size": 14}},
            "height": 340,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
            "xaxis": {"dtick": 1, "title": {"text": i18n.t(lang, "year")}},
            "yaxis": {"title": {"text": u}, "rangemode": "tozero", "gridcolor": "#e5e5e5"},
            "plot_bgcolor": "#ffffff",
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def compare_figure(lang: str, rows: pd.DataFrame, catalogue: dict[str, dict], area_labels: dict[str, str]) -> dict:
    """Shares of several areas side by side, each with its interval."""
    rows = rows[[catalogue[i]["kind"] == "share" for i in rows["indicator_id"]]]
    order = list(dict.fromkeys(rows["indicator_id"]))[::-1]
    traces = []
    for k, (area, sub) in enumerate(rows.groupby("area", sort=False)):
        sub = sub.set_index("indicator_id").reindex(order)
        ok = ~sub["suppressed"].fillna(True).to_numpy(dtype=bool)
        v = np.where(ok, sub["value"].to_numpy(dtype=float), np.nan)
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": area_labels.get(area, area),
                "y": [i18n.indicator_title(lang, catalogue[i]) for i in order],
                "x": v.tolist(),
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": (sub["ci_high"].to_numpy(dtype=float) - v).tolist(),
                    "arrayminus": (v - sub["ci_low"].to_numpy(dtype=float)).tolist(),
                    "color": AREA_COLOURS[k % len(AREA_COLOURS)],
                },
                "marker": {"size": 10, "color": AREA_COLOURS[k % len(AREA_COLOURS)]},
            }
        )
    return {
        "data": traces,
        "layout": {
            "height": 120 + 26 * len(order),
            "margin": {"l": 380, "r": 20, "t": 30, "b": 40},
            "xaxis": {"title": {"text": "%"}, "rangemode": "tozero", "gridcolor": "#e5e5e5"},
            "yaxis": {"automargin": True},
            "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
            "plot_bgcolor": "#ffffff",
        },
    }
