"""`levekar report`: a printable municipality report (levekårsanalyse) in one self-contained HTML file —
plotly.min.js, the polygons and every figure inline, so it opens offline and prints to PDF from any browser
(no PDF library: the well-kept ones need system packages)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from levekar.web import charts, i18n, views
from levekar.web.app import dumps, plotly_js
from levekar.web.store import NotFound, Store

HERE = Path(__file__).resolve().parent


def _area_level(store: Store) -> str:
    """The small-area level of the analysis: analysis areas where the store has them (the report's unit)."""
    for lv in ("analysis_area", "oslo_delbydel", "bydel", "grunnkrets"):
        if lv in store.levels:
            return lv
    return store.levels[-1]


def _subset_geojson(store: Store, level: str, codes: list[str]) -> dict:
    keep = set(codes)
    fc = store.geojson.get(level, {"type": "FeatureCollection", "features": []})
    return {"type": "FeatureCollection", "features": [f for f in fc["features"] if f["id"] in keep]}


def render_report(store: Store, kommune: str, lang: str = "nb", year: int | None = None) -> str:
    if ("kommune", kommune) not in store.area_index:
        known = sorted(store.areas[store.areas["level"] == "kommune"]["area_code"])
        raise NotFound(f"unknown kommune {kommune!r}; the store has {', '.join(known)}")
    year = store.check_year(year) if year is not None else store.years[-1]
    level = _area_level(store)
    codes = store.children("kommune", kommune, level)
    geo = _subset_geojson(store, level, codes)
    screening = [i for i, r in store.indicators.items() if r.get("screening")]
    figures: dict[str, dict] = {}
    geo_of: dict[str, str] = {}

    # 1. the kommune against the country
    rows = views.profile_rows(store, "kommune", kommune, year)
    name = store.area_label(lang, "kommune", kommune)
    figures["profile"] = charts.profile_figure(lang, rows, store.indicators, f"{name}, {year}")
    profile = views.profile_view(store, "kommune", kommune, year, lang)

    # 2. a map and the spread of each screening indicator over the small areas
    maps = []
    for ind in screening:
        sl = store.slice(ind, level, year)
        sl = sl[sl["area_code"].isin(codes)]
        info = store.indicator(ind)
        title = i18n.indicator_title(lang, info)
        fig = charts.map_figure(lang, sl, codes, level, info, title, store.names)
        fig["layout"]["height"] = 420
        key = f"map_{ind}"
        figures[key], geo_of[key] = fig, "areas"
        shown = sl[~sl["suppressed"]]["value"].dropna()
        maps.append(
            {
                "key": key,
                "title": title,
                "min": shown.min() if len(shown) else None,
                "max": shown.max() if len(shown) else None,
                "suppressed": int(sl["suppressed"].sum()),
                "areas": len(sl),
            }
        )

    # 3. the four tiers, with their reasons
    tiers = None
    if "tiers" in store.schemes:
        c = store.classification
        t = c[(c["scheme"] == "tiers") & (c["level"] == level) & (c["year"] == year) & c["area_code"].isin(codes)]
        order = {"particularly_extensive": 0, "large_follow_closely": 1, "negative_development_watch": 2}
        t = t.sort_values(
            ["category", "area_code"], key=lambda s: s.map(order).fillna(9) if s.name == "category" else s
        )
        figures["tiers"] = charts.category_map(lang, t, codes, level, i18n.scheme_name(lang, "tiers"), store.names)
        geo_of["tiers"] = "areas"
        tiers = {
            "counts": t["category"].value_counts().to_dict(),
            "rows": t[t["category"] != "limited"].to_dict("records"),
        }

    # 4. the screening table: each small area's five indicators (suppressed shown as ':')
    table = []
    for code in codes:
        r = store.area_values(level, code)
        r = r[(r["year"] == year) & (r["breakdown"] == "total") & (r["pooled_years"] == 1)]
        by = {x["indicator_id"]: x for x in r.to_dict("records")}
        cells = []
        for ind in screening:
            x = by.get(ind)
            if x is None:
                cells.append(("..", ""))
            elif x["suppressed"]:
                cells.append((":", ""))
            else:
                cells.append((charts.fmt(x["value"]), x.get("significance_country") or ""))
        table.append({"code": code, "cells": cells})

    # 5. the kommune's screening indicators over the years
    trend = store.area_values("kommune", kommune)
    trend = trend[
        (trend["breakdown"] == "total") & (trend["pooled_years"] == 1) & trend["indicator_id"].isin(screening)
    ]
    trend_table = trend.pivot_table(index="indicator_id", columns="year", values="value", aggfunc="first")
    trend_table = trend_table.reindex([i for i in screening if i in trend_table.index])

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    template = env.get_template("report.html")
    return template.render(
        lang=lang,
        t=lambda key, **kw: i18n.t(lang, key, **kw),
        i18n=i18n,
        fmt=charts.fmt,
        store=store,
        kommune=kommune,
        name=name,
        year=year,
        level=level,
        codes=codes,
        screening=screening,
        profile=profile,
        maps=maps,
        tiers=tiers,
        table=table,
        trend_table=trend_table,
        trend_years=[int(y) for y in trend_table.columns],
        figures=dumps(figures),
        geo_of=dumps(geo_of),
        geo=dumps({"areas": geo}),
        plotly=plotly_js().read_text(encoding="utf-8").replace("</script", "<\\/script"),
        today=date.today().isoformat(),
        pd=pd,
    )
