"""`levekar serve`: the web barometer and its JSON API, read-only over one published store.

Pages are rendered on the server (Jinja2); charts and maps are Plotly figures drawn by the plotly.min.js
that ships inside the installed `plotly` package. Every asset is served from here and the Content Security
Policy forbids any other origin, so nothing leaves the machine. Interactive API docs (Swagger UI) would load
from a CDN and are switched off; the OpenAPI document is at /openapi.json and described at /api.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from plotly.utils import PlotlyJSONEncoder

from levekar import __version__
from levekar.classify.rules import SchemeError
from levekar.classify.run import explain
from levekar.classify.settlement import SettlementError, check_settlement
from levekar.web import charts, i18n, themes, views
from levekar.web.store import NotFound, Store, load_store

HERE = Path(__file__).resolve().parent
CODE = r"^[A-Za-z0-9_.\-]{1,64}$"  # every code in a path or query: no slashes, no traversal
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


STATIC = {
    "plotly.min.js": (plotly_js, "application/javascript"),
    "app.js": (lambda: HERE / "static" / "app.js", "application/javascript"),
    "style.css": (lambda: HERE / "static" / "style.css", "text/css"),
    # plotly.js loads a world outline for every geo map, even with every base layer off; an empty one here
    # keeps it from asking its CDN (app.js points topojsonURL at /static/)
    "world_110m.json": (lambda: HERE / "static" / "world_110m.json", "application/json"),
    "world_50m.json": (lambda: HERE / "static" / "world_110m.json", "application/json"),
}


class SecurityHeaders:
    """The CSP and friends on every response, as plain ASGI (Starlette's BaseHTTPMiddleware costs a task and
    a stream per request — a third of a small request's time)."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class ResponseCache:
    """The bytes of GET answers under /api/, kept (least recently used first out, up to `max_bytes`) and
    keyed by the path and the sorted query: the store is read-only, so an answer never changes while the
    server runs. A hit skips routing, validation and the handler; each answer carries an ETag, and a client
    that sends it back (If-None-Match) gets 304 with no body. Only 200 answers are kept."""

    def __init__(self, app, prefixes: tuple[str, ...] = ("/api/",), max_bytes: int = 256 << 20) -> None:
        self.app = app
        self.prefixes = prefixes
        self.max_bytes = max_bytes
        self.max_body = max_bytes // 16
        self.entries: OrderedDict[tuple[str, tuple], tuple[bytes, list, bytes]] = OrderedDict()
        self.size = 0
        self.hits = self.misses = 0

    @staticmethod
    def key(scope) -> tuple[str, tuple]:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        return scope["path"], tuple(sorted(query))

    async def __call__(self, scope, receive, send) -> None:
        cacheable = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if not cacheable or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        key = self.key(scope)
        hit = self.entries.get(key)
        if hit is not None:
            self.hits += 1
            self.entries.move_to_end(key)
            etag, headers, body = hit
            if etag in _header(scope, b"if-none-match"):
                await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
            return
        self.misses += 1
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                if message["status"] != 200:
                    return await send(message)
                return  # held back until the body is whole: the ETag goes into the headers
            if message["type"] != "http.response.body" or start.get("status") != 200:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"etag", b"cache-control")]
            headers += [(b"etag", etag), (b"cache-control", b"no-cache")]
            if scope["method"] == "GET" and len(body) <= self.max_body:
                self.entries[key] = (etag, headers, body)
                self.size += len(body)
                while self.size > self.max_bytes and self.entries:
                    self.size -= len(self.entries.popitem(last=False)[1][2])
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return await self.app(scope, receive, capture)


def _header(scope, name: bytes) -> bytes:
    for k, v in scope.get("headers", []):
        if k == name:
            return v
    return b""


class FastJSON(JSONResponse):
    """JSON by orjson (NaN → null, numpy scalars understood): the values and profile answers are large, and
    the standard encoder was most of their time."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


Lang = Annotated[str, Query(pattern="^(nb|en)$")]


class Fmt(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    json = "json"


class ViewName(StrEnum):
    map = "map"
    profile = "profile"
    trend = "trend"
    compare = "compare"
    classification = "classification"
    values = "values"
    table = "table"
    knn = "knn"
    residential = "residential"
    schools = "schools"
    movers = "movers"
    decomposition = "decomposition"
    cohort = "cohort"


def dumps(obj: Any) -> str:
    """JSON for a <script type="application/json"> block: NaN → null, and no '</' that could end the block."""
    return json.dumps(obj, cls=PlotlyJSONEncoder, ensure_ascii=False).replace("</", "<\\/")


def clean(v: Any) -> Any:
    """A cell as JSON: NaN and NA → null, numpy scalars → Python."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def records(frame: pd.DataFrame) -> list[dict]:
    cols = list(frame.columns)
    return [{c: clean(v) for c, v in zip(cols, row, strict=True)} for row in frame.itertuples(index=False)]


def _int(v: str | None, name: str) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError as e:
        raise HTTPException(422, f"{name} must be a whole number") from e


def view_json(view: views.View) -> dict:
    """A table view as the API gives it: numbers (null where the cell has a symbol) and the symbols."""
    rows = []
    frame, status = view.frame, view.status
    for k in range(len(frame)):
        rec = {d: clean(frame[d].iloc[k]) for d in view.dimensions}
        symbols = {}
        for m in view.measures:
            s = status[m].iloc[k] if m in status else None
            if isinstance(s, str) and s:
                symbols[m] = s
                rec[m] = None
            else:
                rec[m] = clean(frame[m].iloc[k])
        if symbols:
            rec["symbols"] = symbols
        rows.append(rec)
    return {
        "title": view.title,
        "dimensions": view.dimensions,
        "measures": view.measures,
        "labels": {c: view.labels.get(c, c) for c in [*view.dimensions, *view.measures]},
        "note": view.note,
        "rows": rows,
    }


def create_app(store: Store | str | Path) -> FastAPI:
    if not isinstance(store, Store):
        store = load_store(store)
    app = FastAPI(
        title="levekår — Levekårsbarometeret API",
        version=__version__,
        description="Read-only API over a published levekår store (NOU 2020:16). Only published, "
        "disclosure-controlled aggregates are served; suppressed cells have no value."
        + (" SYNTHETIC DATA: no real person is described." if store.synthetic else ""),
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(i18n=i18n, fmt=charts.fmt)
    directions = dict(zip(store.catalogue["indicator_id"], store.catalogue["direction"], strict=True))
    updated = datetime.fromtimestamp((store.path / "manifest.json").stat().st_mtime, UTC).strftime("%Y-%m-%d")

    # the cache inside the security headers: a cached answer gets them as a fresh one does.
    # LEVEKAR_WEB_CACHE_MB sets its size per process (0: no cache)
    cache_mb = int(os.environ.get("LEVEKAR_WEB_CACHE_MB", "256"))
    if cache_mb > 0:
        app.add_middleware(ResponseCache, max_bytes=cache_mb << 20)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        if request.url.path.startswith(("/api/", "/download/", "/geo/")):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return page(request, "error.html", {"message": str(exc)}, status_code=404)

    # ---------- helpers ----------
    def lang_of(request: Request) -> str:
        q = request.query_params.get("lang")
        if q in i18n.LANGS:
            return q
        c = request.cookies.get("lang")
        return c if c in i18n.LANGS else "nb"

    def url_with(request: Request, **changes) -> str:
        params = dict(request.query_params)
        for k, v in changes.items():
            if v is None:
                params.pop(k, None)
            else:
                params[k] = str(v)
        q = urlencode(params)
        return request.url.path + ("?" + q if q else "")

    def page(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
        lang = lang_of(request)
        other = "en" if lang == "nb" else "nb"
        ctx = {
            "lang": lang,
            "t": lambda key, **kw: i18n.t(lang, key, **kw),
            "store": store,
            "switch_url": url_with(request, lang=other),
            "path": request.url.path,
            "url_with": lambda **kw: url_with(request, **kw),
            **context,
        }
        response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
        if request.query_params.get("lang") in i18n.LANGS:
            response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
        return response

    def latest_year() -> int:
        return store.years[-1]

    def default_level() -> str:
        for lv in ("analysis_area", "bydel", "grunnkrets"):
            if lv in store.levels:
                return lv
        return store.levels[-1]

    def downloads(view: str, **params) -> dict[str, str]:
        q = urlencode({k: v for k, v in params.items() if v is not None})
        return {f: f"/download/{view}.{f}?{q}" for f in ("csv", "xlsx", "json")}

    def view_of(request: Request, view: ViewName, lang: str) -> views.View:
        p = request.query_params

        def need(name: str) -> str:
            v = p.get(name)
            if not v:
                raise HTTPException(422, f"the {view.value} table needs the query parameter {name!r}")
            return v

        def year(name: str = "year") -> int:
            v = p.get(name)
            if v is None:
                return latest_year()
            try:
                return store.check_year(int(v))
            except ValueError as e:
                raise HTTPException(422, f"{name} must be a whole number") from e

        if view is ViewName.map:
            return views.map_view(
                store,
                need("indicator"),
                need("level"),
                year(),
                p.get("breakdown", "total"),
                p.get("breakdown_value", "total"),
                lang,
            )
        if view is ViewName.profile:
            level, code = need("level"), need("area")
            store.check_area(level, code)
            return views.profile_view(store, level, code, year(), lang)
        if view is ViewName.trend:
            level, code = need("level"), need("area")
            return views.trend_view(store, level, store.check_area(level, code), lang)
        if view is ViewName.compare:
            return views.compare_view(store, views.parse_areas(store, need("areas")), year(), lang)
        if view is ViewName.classification:
            return views.classification_view(
                store, need("scheme"), need("level"), year(), lang, p.get("category") or None
            )
        if view is ViewName.values:
            rows = filtered_values(
                p.get("indicator"),
                p.get("level"),
                p.get("area"),
                int(p["year"]) if p.get("year", "").isdigit() else None,
                p.get("breakdown"),
                p.get("breakdown_value"),
                None,
            )
            if len(rows) > 200_000:
                raise HTTPException(413, "too many rows: filter by indicator, level, area or year")
            return views.query_view(store, rows, lang)
        if view is ViewName.table:
            return views.table_view(store, need("name"), lang)
        if view is ViewName.knn:
            return themes.knn_view(store, lang, p.get("group"))
        if view is ViewName.residential:
            return themes.residential_view(store, lang, p.get("scope"), p.get("unit_level"), p.get("group"))
        if view is ViewName.schools:
            return themes.school_view(
                store, need("part"), lang, _int(p.get("year"), "year"), p.get("group"), p.get("kommune")
            )
        level, code = need("level"), need("area")
        pair = themes.parse_pair(store, level, code, p.get("pair"), lang)
        if view is ViewName.movers:
            return themes.movers_view(store, level, code, pair, lang)
        if view is ViewName.decomposition:
            return themes.decomposition_view(store, level, code, pair, p.get("indicator"), lang)
        return themes.cohort_view(store, level, code, pair, lang)

    def filtered_values(indicator, level, area, year, breakdown, breakdown_value, pooled) -> pd.DataFrame:
        if area is not None and level is None:
            raise HTTPException(422, "give the level with an area code")
        if year is not None:
            store.check_year(year)
        return store.query(indicator, level, area, year, breakdown, breakdown_value, pooled)

    # ---------- assets ----------
    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, f"no asset {name!r}")
        path, media = STATIC[name]
        return FileResponse(path(), media_type=media, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/geo/{level}.geojson", include_in_schema=False)
    def geojson(level: Annotated[str, PathParam(pattern=CODE)]) -> Response:
        store.check_level(level)
        body = geo_cache.get(level)
        if body is None:
            body = geo_cache[level] = json.dumps(
                store.geojson.get(level, {"type": "FeatureCollection", "features": []})
            )
        return Response(body, media_type="application/geo+json", headers={"Cache-Control": "public, max-age=3600"})

    geo_cache: dict[str, str] = {}

    # ---------- pages ----------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def map_page(
        request: Request,
        indicator: Annotated[str | None, Query(pattern=CODE)] = None,
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        year: int | None = None,
        group: Annotated[str, Query(max_length=80)] = "total",
    ) -> HTMLResponse:
        lang = lang_of(request)
        indicator = store.check_indicator(indicator or store.indicator_ids[0])
        level = store.check_level(level or default_level())
        year = store.check_year(year or latest_year())
        breakdown, breakdown_value = ("total", "total") if group == "total" else ([*group.split("=", 1), ""])[:2]
        store.check_breakdown(breakdown, breakdown_value)
        view = views.map_view(store, indicator, level, year, breakdown, breakdown_value, lang)
        info = store.indicator(indicator)
        codes = [f["id"] for f in store.geojson.get(level, {}).get("features", [])]
        fig = charts.map_figure(
            lang,
            store.slice(indicator, level, year, breakdown, breakdown_value),
            codes,
            level,
            info,
            view.title,
            store.names,
        )
        country = store.slice(indicator, "country", year, breakdown, breakdown_value)
        country_value = None
        if len(country) and not country["suppressed"].iloc[0]:
            country_value = country["value"].iloc[0]
        groups = [
            ("total" if b == "total" else f"{b}={v}", i18n.breakdown_name(lang, b, v))
            for b, v in store.breakdowns
            if b == "total" or b in (info.get("breakdowns") or "").split(",")
        ]
        return page(
            request,
            "map.html",
            {
                "indicator": indicator,
                "info": info,
                "level": level,
                "year": year,
                "group": group,
                "groups": groups,
                "view": view,
                "figure": dumps(fig),
                "country_value": country_value,
                "downloads": downloads(
                    "map",
                    indicator=indicator,
                    level=level,
                    year=year,
                    breakdown=breakdown,
                    breakdown_value=breakdown_value,
                    lang=lang,
                ),
                "map_levels": [lv for lv in store.levels if lv in store.geojson],
            },
        )

    @app.get("/area/{level}/{code}", response_class=HTMLResponse, include_in_schema=False)
    def area_page(
        request: Request,
        level: Annotated[str, PathParam(pattern=CODE)],
        code: Annotated[str, PathParam(pattern=CODE)],
        year: int | None = None,
        trend: Annotated[str | None, Query(pattern=CODE)] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        store.check_area(level, code)
        year = store.check_year(year or latest_year())
        view = views.profile_view(store, level, code, year, lang)
        rows = views.profile_rows(store, level, code, year)
        screening = [i for i, r in store.indicators.items() if r.get("screening")]
        trend = store.check_indicator(trend or (screening[0] if screening else store.indicator_ids[0]))
        trows = store.area_values(level, code)
        trows = trows[(trows["indicator_id"] == trend) & (trows["breakdown"] == "total") & (trows["pooled_years"] == 1)]
        name = store.area_label(lang, level, code)
        cls = store.area_classification(level, code)
        cls = cls[cls["year"] == year].sort_values("scheme")
        children = []
        finer = store.levels[store.levels.index(level) + 1 :] if level in store.levels else []
        if finer:
            children = [(finer[0], c) for c in store.children(level, code, finer[0])][:200]
        return page(
            request,
            "area.html",
            {
                "level": level,
                "code": code,
                "name": name,
                "year": year,
                "view": view,
                "rows": rows.to_dict("records"),
                "profile_figure": dumps(charts.profile_figure(lang, rows, store.indicators, f"{name}, {year}")),
                "trend": trend,
                "trend_figure": dumps(charts.trend_figure(lang, trows, store.indicator(trend), name)),
                "classification": cls.to_dict("records"),
                "parents": store.parents(level, code),
                "children": children,
                "downloads": downloads("profile", level=level, area=code, year=year, lang=lang),
                "trend_downloads": downloads("trend", level=level, area=code, lang=lang),
                "themes_links": related(lang, level, code),
            },
        )

    def related(lang: str, level: str, code: str) -> list[tuple[str, str]]:
        """The dedicated views that have this area: its flows, its kommune's schools, its segregation."""
        out = []
        if themes.flow_pairs(store, level, code):
            out.append((f"/flows/{level}/{code}", f"{i18n.t(lang, 'flows')}"))
        k = store.kommune_of(level, code)
        if k and k in themes.school_options(store).get("kommuner", []) and level in ("kommune", "bydel"):
            out.append((f"/schools?kommune={k}", i18n.t(lang, "schools")))
        scopes = themes.residential_options(store).get("scopes", [])
        if f"{level}:{code}" in scopes:
            out.append((f"/segregation?scope={level}:{code}#h-residential", i18n.t(lang, "residential_title")))
        elif level == "kommune" and themes.table(store, themes.KNN) is not None:
            out.append(("/segregation", i18n.t(lang, "segregation")))
        return out

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(
        request: Request,
        areas: Annotated[str, Query(max_length=800)] = "",
        year: int | None = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        year = store.check_year(year or latest_year())
        if not areas:
            lv = default_level()
            first = sorted(store.areas[store.areas["level"] == lv]["area_code"])[:2]
            areas = ",".join([f"{lv}:{c}" for c in first] + (["kommune:" + k] if (k := kommune_default()) else []))
        picked = views.parse_areas(store, areas)
        view = views.compare_view(store, picked, year, lang)
        labels = {f"{lv}:{c}": store.area_label(lang, lv, c) for lv, c in picked}
        rows = view.frame.assign(
            suppressed=view.status["value"].eq(views.SUPPRESSED).to_numpy(),
        )
        return page(
            request,
            "compare.html",
            {
                "areas": areas,
                "picked": picked,
                "year": year,
                "view": view,
                "figure": dumps(charts.compare_figure(lang, rows, store.indicators, labels)),
                "downloads": downloads("compare", areas=areas, year=year, lang=lang),
            },
        )

    def kommune_default() -> str | None:
        k = store.areas[store.areas["level"] == "kommune"]["area_code"]
        return str(k.iloc[0]) if len(k) else None

    @app.get("/lists", response_class=HTMLResponse, include_in_schema=False)
    def lists_page(
        request: Request,
        scheme: Annotated[str, Query(pattern=CODE)] = "tiers",
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        year: int | None = None,
        category: Annotated[str | None, Query(max_length=80)] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        if scheme not in store.schemes and store.schemes:
            scheme = store.check_scheme(scheme)
        level = store.check_level(level or default_level())
        year = store.check_year(year or latest_year())
        view = views.classification_view(store, scheme, level, year, lang, category or None)
        c = store.classification
        counts = (
            c[(c["scheme"] == scheme) & (c["level"] == level) & (c["year"] == year)]["category"]
            .value_counts()
            .to_dict()
        )
        return page(
            request,
            "lists.html",
            {
                "scheme": scheme,
                "level": level,
                "year": year,
                "category": category or "",
                "counts": counts,
                "view": view,
                "class_levels": sorted(set(c["level"])) if len(c) else [],
                "downloads": downloads(
                    "classification", scheme=scheme, level=level, year=year, category=category or None, lang=lang
                ),
            },
        )

    @app.get("/method", response_class=HTMLResponse, include_in_schema=False)
    def method_page(request: Request) -> HTMLResponse:
        return page(request, "method.html", {"manifest": store.manifest})

    @app.get("/tables/{name}", response_class=HTMLResponse, include_in_schema=False)
    def table_page(request: Request, name: Annotated[str, PathParam(pattern=CODE)]) -> HTMLResponse:
        lang = lang_of(request)
        view = views.table_view(store, name, lang, limit=2000)
        return page(
            request,
            "table.html",
            {"view": view, "name": name, "downloads": downloads("table", name=name, lang=lang)},
        )

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_page(request: Request) -> HTMLResponse:
        paths = [(p, sorted(m)) for p, m in app.openapi()["paths"].items()]
        return page(request, "api.html", {"paths": paths})

    # ---------- segregation, schools, flows ----------
    @app.get("/segregation", response_class=HTMLResponse, include_in_schema=False)
    def segregation_page(
        request: Request,
        group: Annotated[str | None, Query(pattern=CODE)] = None,
        measure: Annotated[str, Query(pattern=CODE)] = "dissimilarity",
        scope: Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9_.:\-]{1,80}$")] = None,
        unit_level: Annotated[str | None, Query(pattern=CODE)] = None,
        rgroup: Annotated[str | None, Query(pattern=CODE)] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        ctx: dict = {"knn": None, "residential": None, "measure": measure}
        if themes.table(store, themes.KNN) is not None:
            v = themes.knn_view(store, lang, group)
            if measure not in v.measures:
                raise NotFound(f"unknown measure {measure!r}; known: {', '.join(v.measures)}")
            ctx["knn"] = {
                "view": v,
                "group": v.name.removeprefix("knn_"),
                "options": themes.knn_options(store),
                "figure": dumps(themes.knn_figure(lang, v, measure)),
                "measures": [m for m in themes.KNN_MEASURES if m in v.measures],
                "downloads": downloads("knn", group=group, lang=lang),
            }
        if themes.residential_frame(store) is not None:
            v = themes.residential_view(store, lang, scope, unit_level, rgroup)
            ctx["residential"] = {
                "view": v,
                "options": themes.residential_options(store),
                "scope": scope,
                "unit_level": unit_level,
                "group": rgroup,
                "figure": dumps(themes.residential_figure(lang, v)),
                "downloads": downloads("residential", scope=scope, unit_level=unit_level, group=rgroup, lang=lang),
            }
        return page(request, "segregation.html", ctx)

    @app.get("/schools", response_class=HTMLResponse, include_in_schema=False)
    def schools_page(
        request: Request,
        kommune: Annotated[str | None, Query(pattern=CODE)] = None,
        year: int | None = None,
        group: Annotated[str | None, Query(pattern=CODE)] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        opts = themes.school_options(store)
        if not opts:
            return page(request, "schools.html", {"parts": None, "opts": opts})
        kommune = themes.pick(kommune, opts["kommuner"], "kommune")
        year = int(themes.pick(year, opts["years"][::-1], "year"))
        group = themes.pick(group, themes.prefer(opts["groups"], "immigrant_background"), "group")
        parts = {}
        for part, name in themes.SCHOOL_TABLES.items():
            if name not in store.extra:
                continue
            v = themes.school_view(store, part, lang, year, group, kommune)
            parts[part] = {
                "view": v,
                "downloads": downloads("schools", part=part, kommune=kommune, year=year, group=group, lang=lang),
            }
        figure = dumps(themes.institution_figure(lang, parts["indices"]["view"])) if "indices" in parts else None
        return page(
            request,
            "schools.html",
            {"parts": parts, "opts": opts, "kommune": kommune, "year": year, "group": group, "figure": figure},
        )

    @app.get("/flows", response_class=HTMLResponse, include_in_schema=False)
    def flows_index(
        request: Request,
        area: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.\-]{1,64}:[A-Za-z0-9_.\-]{1,64}$")] = None,
    ) -> Response:
        if area:  # the picker's level:code, without JavaScript
            level, code = area.split(":", 1)
            store.check_area(level, code)
            return RedirectResponse(f"/flows/{level}/{code}", status_code=303)
        areas = themes.flow_areas(store)
        return page(request, "flows.html", {"picker": areas, "flows": None})

    @app.get("/flows/{level}/{code}", response_class=HTMLResponse, include_in_schema=False)
    def flows_page(
        request: Request,
        level: Annotated[str, PathParam(pattern=CODE)],
        code: Annotated[str, PathParam(pattern=CODE)],
        pair: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{4}$")] = None,
        indicator: Annotated[str | None, Query(pattern=CODE)] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        store.check_area(level, code)
        pr = themes.parse_pair(store, level, code, pair, lang)
        movers = themes.movers_view(store, level, code, pr, lang)
        ctx: dict = {
            "level": level,
            "code": code,
            "name": store.area_label(lang, level, code),
            "pair": pr,
            "pairs": themes.flow_pairs(store, level, code),
            "movers": movers,
            "movers_figure": dumps(themes.movers_figure(lang, movers)),
            "picker": themes.flow_areas(store),
            "decomposition": None,
            "cohort": None,
        }
        q = {"level": level, "area": code, "pair": f"{pr[0]}-{pr[1]}", "lang": lang}
        ctx["movers_downloads"] = downloads("movers", **q)
        choices = themes.decomposition_indicators(store, level, code, pr)
        if choices:
            ind = themes.pick(indicator, choices, "indicator")
            d = themes.decomposition_view(store, level, code, pr, ind, lang)
            ctx["decomposition"] = {
                "view": d,
                "indicator": ind,
                "choices": choices,
                "figure": dumps(themes.decomposition_figure(lang, d)),
                "downloads": downloads("decomposition", indicator=ind, **q),
            }
        if themes.table(store, themes.FLOWS["cohort"]) is not None:
            ctx["cohort"] = {
                "view": themes.cohort_view(store, level, code, pr, lang),
                "downloads": downloads("cohort", **q),
            }
        return page(request, "flows.html", ctx)

    @app.get("/find", response_class=HTMLResponse, include_in_schema=False)
    def find_page(
        request: Request,
        q: Annotated[str, Query(max_length=80)] = "",
        level: Annotated[str | None, Query(pattern=CODE)] = None,
    ) -> Response:
        """The keyboard way to an area: a code or (part of) a name → its profile, or the list of matches."""
        hits = store.search(q, level)
        if len(hits) == 1 or (hits and hits[0][2]):
            lv, c, _ = hits[0]
            return RedirectResponse(f"/area/{lv}/{c}", status_code=303)
        return page(request, "find.html", {"q": q, "hits": hits[:200]}, status_code=200 if hits else 404)

    @app.get("/api/segregation/knn", tags=["segregation"], summary="K-nearest-neighbour profiles over K by year")
    def api_knn(group: Annotated[str | None, Query(pattern=CODE)] = None, lang: Lang = "nb") -> dict:
        return view_json(themes.knn_view(store, lang, group))

    @app.get(
        "/api/segregation/indices",
        tags=["segregation"],
        summary="Residential segregation indices by year for one scope, unit level and group",
    )
    def api_residential(
        scope: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:\-]{1,80}$")] = None,
        unit_level: Annotated[str | None, Query(pattern=CODE)] = None,
        group: Annotated[str | None, Query(pattern=CODE)] = None,
        lang: Lang = "nb",
    ) -> dict:
        """`scope` is level:code (e.g. kommune:0301). 404 with a message when the store has no such table."""
        return view_json(themes.residential_view(store, lang, scope, unit_level, group))

    @app.get("/api/schools/{part}", tags=["schools"], summary="School and kindergarten tables for a kommune and year")
    def api_schools(
        part: Annotated[str, PathParam(pattern=CODE)],
        kommune: Annotated[str | None, Query(pattern=CODE)] = None,
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
        group: Annotated[str | None, Query(pattern=CODE)] = None,
        lang: Lang = "nb",
    ) -> dict:
        """`part`: classes (NOU 2020:16 table 3.5), uptake, contrast, kindergarten, indices, composition.
        Suppressed cells are null with the symbol `:` under `symbols`."""
        return view_json(themes.school_view(store, part, lang, year, group, kommune))

    @app.get("/api/flows/{level}/{code}", tags=["flows"], summary="Movers, change decomposition and fixed cohort")
    def api_flows(
        level: Annotated[str, PathParam(pattern=CODE)],
        code: Annotated[str, PathParam(pattern=CODE)],
        pair: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{4}$")] = None,
        indicator: Annotated[str | None, Query(pattern=CODE)] = None,
        lang: Lang = "nb",
    ) -> dict:
        """`pair` is FROM-TO (default: the latest neighbouring pair). The decomposition is there for the pairs
        the store decomposes (first → last, the last neighbouring pair), else null."""
        store.check_area(level, code)
        pr = themes.parse_pair(store, level, code, pair, lang)
        dec = None
        if themes.decomposition_indicators(store, level, code, pr):
            dec = view_json(themes.decomposition_view(store, level, code, pr, indicator, lang))
        cohort = None
        if themes.table(store, themes.FLOWS["cohort"]) is not None:
            cohort = view_json(themes.cohort_view(store, level, code, pr, lang))
        return {
            "level": level,
            "area_code": code,
            "year_from": pr[0],
            "year_to": pr[1],
            "pairs": [f"{a}-{b}" for a, b in themes.flow_pairs(store, level, code)],
            "movers": view_json(themes.movers_view(store, level, code, pr, lang)),
            "decomposition": dec,
            "cohort": cohort,
        }

    @app.get("/tables", response_class=HTMLResponse, include_in_schema=False)
    def tables_index(request: Request) -> HTMLResponse:
        return page(request, "tables.html", {"tables": sorted(store.extra.items())})

    # ---------- downloads ----------
    @app.get("/download/{view}.{fmt}", tags=["downloads"], summary="Any table view as CSV, Excel or JSON-stat 2.0")
    def download(request: Request, view: ViewName, fmt: Fmt) -> Response:
        """The table behind a page: `map` (indicator, level, year, breakdown, breakdown_value), `profile`
        (level, area, year), `trend` (level, area), `compare` (areas=level:code,…, year), `classification`
        (scheme, level, year, category), `values` (the /api/values filters), `table` (name). CSV uses SSB's
        symbols (`:` suppressed, `..` missing, `-` nothing)."""
        lang = lang_of(request)
        v = view_of(request, view, lang)
        stem = v.name.replace("/", "_")
        if fmt is Fmt.csv:
            body, media = v.csv(), "text/csv; charset=utf-8"
        elif fmt is Fmt.xlsx:
            body, media = (
                v.xlsx(store.synthetic, lang),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        else:
            body = json.dumps(v.jsonstat(store.synthetic, updated), ensure_ascii=False).encode("utf-8")
            media = "application/json"
        ext = "jsonstat.json" if fmt is Fmt.json else fmt.value
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'})

    # ---------- JSON API ----------
    # the hot, short handlers (meta, values, profile) are `async`: they run on the event loop, without a
    # thread hop per request; the rest are plain functions in the thread pool
    @app.get("/api/meta", tags=["api"], summary="The store: synthetic flag, versions, levels, years, tables")
    async def api_meta() -> dict:
        m = store.manifest
        return {
            "synthetic": store.synthetic,
            "notice": m.get("notice", ""),
            "generator": m.get("generator"),
            "method_version": m.get("method_version"),
            "catalogue_version": m.get("catalogue_version"),
            "levels": store.levels,
            "years": store.years,
            "schemes": store.schemes,
            "breakdowns": [{"breakdown": b, "breakdown_value": v} for b, v in store.breakdowns],
            "tables": sorted(store.extra),
        }

    @app.get("/api/areas", tags=["api"], summary="Published areas, by level and kommune")
    def api_areas(
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        kommune: Annotated[str | None, Query(pattern=CODE)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        a = store.areas
        if level is not None:
            a = a[a["level"] == store.check_level(level)]
        if kommune is not None:
            if ("kommune", kommune) not in store.area_index:
                raise NotFound(f"unknown kommune {kommune!r}")
            a = a[(a["kommune"] == kommune) | ((a["level"] == "kommune") & (a["area_code"] == kommune))]
        return {"total": len(a), "areas": records(a.iloc[offset : offset + limit])}

    @app.get("/api/areas/{level}/{code}", tags=["api"], summary="One area: its kommune, parents and children")
    def api_area(level: Annotated[str, PathParam(pattern=CODE)], code: Annotated[str, PathParam(pattern=CODE)]) -> dict:
        area = {k: clean(v) for k, v in store.area(level, code).items()}
        finer = store.levels[store.levels.index(level) + 1 :]
        return {
            **area,
            "parents": [{"level": lv, "area_code": c} for lv, c in store.parents(level, code)],
            "children": {lv: store.children(level, code, lv) for lv in finer[:1]},
        }

    @app.get("/api/indicators", tags=["api"], summary="The indicator catalogue")
    def api_indicators() -> list[dict]:
        return records(store.catalogue)

    @app.get("/api/indicators/{indicator_id}", tags=["api"], summary="One indicator of the catalogue")
    def api_indicator(indicator_id: Annotated[str, PathParam(pattern=CODE)]) -> dict:
        return {k: clean(v) for k, v in store.indicator(indicator_id).items()}

    @app.get("/api/values", tags=["api"], summary="Published values, filtered")
    async def api_values(
        indicator: Annotated[str | None, Query(pattern=CODE)] = None,
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        area: Annotated[str | None, Query(pattern=CODE)] = None,
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
        breakdown: Annotated[str | None, Query(pattern=CODE)] = None,
        breakdown_value: Annotated[str | None, Query(pattern=CODE)] = None,
        pooled_years: Annotated[int | None, Query(ge=1, le=20)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> FastJSON:
        """Suppressed cells are rows with `suppressed: true` and no numbers (SSB's `:`)."""
        if area is not None and level is None:
            raise HTTPException(422, "give the level with an area code")
        if year is not None:
            store.check_year(year)
        pos = store.find(indicator, level, area, year, breakdown, breakdown_value, pooled_years)
        # a JSONResponse of plain dicts: FastAPI's own encoder would walk every cell again
        return FastJSON({"total": len(pos), "offset": offset, "values": store.rows(pos[offset : offset + limit])})

    @app.get(
        "/api/profile/{level}/{code}", tags=["api"], summary="Every indicator of an area against kommune and country"
    )
    async def api_profile(
        level: Annotated[str, PathParam(pattern=CODE)],
        code: Annotated[str, PathParam(pattern=CODE)],
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
        lang: Annotated[str, Query(pattern="^(nb|en)$")] = "nb",
    ) -> JSONResponse:
        store.check_area(level, code)
        year = store.check_year(year) if year is not None else latest_year()
        pos = store.find(None, level, code, None, "total", None, 1)
        trend_cols = ("year", "value", "ci_low", "ci_high", "suppressed", "value_kommune", "value_country")
        trends: dict[str, list] = {}
        current = []
        for r in store.rows(pos):
            trends.setdefault(r["indicator_id"], []).append({k: r[k] for k in trend_cols})
            if r["year"] == year:
                current.append(r)
        order = {i: k for k, i in enumerate(store.indicator_ids)}
        current.sort(key=lambda r: order.get(r["indicator_id"], 0))
        out = []
        for r in current:
            for k in ("level", "area_code", "breakdown", "breakdown_value"):
                del r[k]
            r["title"] = i18n.indicator_title(lang, store.indicators[r["indicator_id"]])
            r["difference_text"] = i18n.percent_difference(lang, r["relative_difference_country"])
            r["trend"] = trends.get(r["indicator_id"], [])
            out.append(r)
        return FastJSON(
            {
                "level": level,
                "area_code": code,
                "year": year,
                "synthetic": store.synthetic,
                "kommune": store.kommune_of(level, code),
                "indicators": out,
                "classification": [r for r in store.classification_records(level, code) if r["year"] == year],
            }
        )

    @app.get("/api/classification", tags=["api"], summary="Classification results with reasons, filtered")
    def api_classification(
        scheme: Annotated[str | None, Query(pattern=CODE)] = None,
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        area: Annotated[str | None, Query(pattern=CODE)] = None,
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
        category: Annotated[str | None, Query(max_length=80)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        c = store.classification
        if scheme is not None:
            c = c[c["scheme"] == store.check_scheme(scheme)]
        if level is not None:
            c = c[c["level"] == store.check_level(level)]
        if area is not None:
            if level is None:
                raise HTTPException(422, "give the level with an area code")
            store.check_area(level, area)
            c = c[c["area_code"] == area]
        if year is not None:
            c = c[c["year"] == store.check_year(year)]
        if category is not None:
            c = c[c["category"] == category]
        return {"total": len(c), "offset": offset, "classification": records(c.iloc[offset : offset + limit])}

    @app.get(
        "/api/classification/{scheme}/{level}/{code}/explain",
        tags=["api"],
        summary="The numbers behind a classification: every criterion's value, threshold and result",
    )
    def api_explain(
        scheme: Annotated[str, PathParam(pattern=CODE)],
        level: Annotated[str, PathParam(pattern=CODE)],
        code: Annotated[str, PathParam(pattern=CODE)],
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    ) -> dict:
        store.check_scheme(scheme)
        store.check_area(level, code)
        try:
            details = explain(store.area_values(level, code), directions, scheme, level, code)
        except SchemeError as e:
            raise HTTPException(404, str(e)) from e
        if year is not None:
            details = details[details["year"] == store.check_year(year)]
        return {"scheme": scheme, "level": level, "area_code": code, "criteria": records(details)}

    @app.get("/api/settlement", tags=["api"], summary="The settlement check for a grunnkrets or a point")
    def api_settlement(
        grunnkrets: Annotated[str | None, Query(pattern=CODE)] = None,
        x: Annotated[float | None, Query(ge=-1e8, le=1e8)] = None,
        y: Annotated[float | None, Query(ge=-1e8, le=1e8)] = None,
        crs: Annotated[str | None, Query(pattern=r"^EPSG:[0-9]{4,6}$")] = None,
        level: Annotated[str | None, Query(pattern=CODE)] = None,
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    ) -> dict:
        """Which area the place lies in and whether it has accumulated living-condition challenges (NOU
        2020:16 ch. 19), with the reasons. `crs` is the coordinates' EPSG code (default: the store's)."""
        if level is not None:
            store.check_level(level)
        if year is not None:
            store.check_year(year)
        if grunnkrets is None and (x is None or y is None):
            raise HTTPException(422, "give either grunnkrets or both x and y")
        try:
            answer = check_settlement(store.path, grunnkrets, x, y, crs, level, year)
        except SettlementError as e:
            raise HTTPException(404, str(e)) from e
        except Exception as e:  # a CRS pyproj cannot use, or coordinates it cannot transform
            if type(e).__name__ in ("CRSError", "ProjError"):
                raise HTTPException(422, f"cannot use crs {crs!r}: {e}") from e
            raise
        return {**answer.as_dict(), "synthetic": store.synthetic}

    @app.get("/api/tables", tags=["api"], summary="The store's further tables (segregation, flows, …) if present")
    def api_tables() -> list[dict]:
        return [{"name": n, "rows": len(f), "columns": list(f.columns)} for n, f in sorted(store.extra.items())]

    @app.get("/api/tables/{name}", tags=["api"], summary="Rows of one further table")
    def api_table(
        name: Annotated[str, PathParam(pattern=CODE)],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        f = store.check_table(name)
        return {"name": name, "total": len(f), "offset": offset, "rows": records(f.iloc[offset : offset + limit])}

    return app


def app_from_env() -> FastAPI:
    """The app for `levekar serve --workers N` (uvicorn imports it in each worker process): the store named
    by LEVEKAR_WEB_STORE."""
    path = os.environ.get("LEVEKAR_WEB_STORE")
    if not path:
        raise RuntimeError("LEVEKAR_WEB_STORE names no store")
    return create_app(path)
