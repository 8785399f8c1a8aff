"""The dedicated views over the later stages' tables — segregation (K-nearest profiles, residential indices),
schools and kindergartens, moves and change — and area names and search, over the demo store (in process).
Every expected number is read from the store's own table, never written here."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pyjstat import pyjstat

from levekar.web.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def client(web_store) -> TestClient:
    return TestClient(create_app(web_store))


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------- segregation ----------
def test_knn_view_matches_the_store(client, web_store):
    knn = web_store.extra["segregation_knn_profile"]
    group = sorted(knn["group"].unique())[0]
    r = client.get("/segregation", params={"group": group, "measure": "dissimilarity"})
    assert r.status_code == 200
    fig = json.loads(r.text.split('id="knn-figure">', 1)[1].split("</script>", 1)[0])
    years = sorted(int(y) for y in knn["year"].unique())
    assert [t["name"] for t in fig["data"]] == [str(y) for y in years]
    last = knn[(knn["group"] == group) & (knn["year"] == years[-1])].sort_values("k")
    assert fig["data"][-1]["x"] == last["k"].astype(int).tolist()
    assert np.allclose(fig["data"][-1]["y"], last["dissimilarity"].to_numpy(), atol=1e-4)
    assert fig["layout"]["xaxis"]["type"] == "log"
    # the download is the same table
    rows = _csv(client.get("/download/knn.csv", params={"group": group}).text)
    assert len(rows) == int((knn["group"] == group).sum())
    api = client.get("/api/segregation/knn", params={"group": group}).json()
    assert len(api["rows"]) == len(rows) and api["dimensions"] == ["year", "k"]
    assert client.get("/api/segregation/knn", params={"group": "nobody"}).status_code == 404


def test_residential_absent_is_said_plainly(client, web_store, monkeypatch):
    # a store written before the residential indices existed (the demo's has them)
    monkeypatch.delitem(web_store.extra, "segregation_indices", raising=False)
    r = client.get("/segregation")
    assert 'id="residential-absent"' in r.text and "segregation_indices" in r.text
    r = client.get("/api/segregation/indices", params={"lang": "en"})
    assert r.status_code == 404 and "segregation_indices" in r.json()["detail"]
    assert client.get("/download/residential.csv").status_code == 404


def _residential(web_store) -> pd.DataFrame:
    """A `segregation_indices` table in the shape the residential-indices stage writes (columns as agreed:
    scope_level, scope_code, unit_level, year, group_id, index, value, ci_low, ci_high, units)."""
    rng = np.random.default_rng(5)
    rows = []
    bydel = sorted(web_store.areas[web_store.areas["level"] == "bydel"]["area_code"])[:2]
    for scope_level, scope_code in [("kommune", "0301"), *[("bydel", b) for b in bydel]]:
        for unit in ("grunnkrets", "analysis_area"):
            for year in web_store.years:
                for group in ("immigrant_background", "low_income_eu60"):
                    for index in ("dissimilarity", "isolation", "entropy", "gini", "atkinson_0.5"):
                        v = float(rng.uniform(0.05, 0.5))
                        has_ci = scope_level == "kommune"
                        rows.append(
                            {
                                "scope_level": scope_level,
                                "scope_code": scope_code,
                                "unit_level": unit,
                                "year": year,
                                "group_id": group,
                                "index": index,
                                "value": v,
                                "ci_low": v - 0.02 if has_ci else np.nan,
                                "ci_high": v + 0.03 if has_ci else np.nan,
                                "units": 40 if unit == "grunnkrets" else 12,
                            }
                        )
    return pd.DataFrame(rows)


@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_residential_indices_when_present(web_store):
    table = _residential(web_store)
    store = replace(web_store, extra={**web_store.extra, "segregation_indices": table})
    client = TestClient(create_app(store))
    params = {"scope": "kommune:0301", "unit_level": "grunnkrets", "rgroup": "low_income_eu60"}
    r = client.get("/segregation", params=params)
    assert r.status_code == 200 and 'id="residential-absent"' not in r.text
    fig = json.loads(r.text.split('id="residential-figure">', 1)[1].split("</script>", 1)[0])
    want = table[
        (table["scope_level"] == "kommune")
        & (table["unit_level"] == "grunnkrets")
        & (table["group_id"] == "low_income_eu60")
    ]
    assert len(fig["data"]) == want["index"].nunique()
    gini = want[want["index"] == "gini"].sort_values("year")
    trace = next(t for t in fig["data"] if t["name"] == "Gini")
    assert trace["x"] == gini["year"].tolist()
    assert np.allclose(trace["y"], gini["value"], atol=1e-4)
    assert np.allclose(trace["error_y"]["array"], gini["ci_high"] - gini["value"], atol=1e-4)
    assert np.allclose(trace["error_y"]["arrayminus"], gini["value"] - gini["ci_low"], atol=1e-4)
    # a bydel has no interval: the chart draws none and the table says '..'
    b = table[table["scope_level"] == "bydel"]["scope_code"].iloc[0]
    api = client.get(
        "/api/segregation/indices",
        params={"scope": f"bydel:{b}", "unit_level": "analysis_area", "group": "immigrant_background"},
    ).json()
    assert len(api["rows"]) == 5 * len(web_store.years)
    assert all(row["symbols"]["ci_low"] == ".." for row in api["rows"])
    # downloads: CSV and JSON-stat (read back by pyjstat)
    q = {"scope": "kommune:0301", "unit_level": "grunnkrets", "group": "low_income_eu60"}
    rows = _csv(client.get("/download/residential.csv", params=q).text)
    assert len(rows) == len(want)
    js = client.get("/download/residential.json", params=q).content.decode()
    back = pyjstat.Dataset.read(js).write("dataframe", naming="id")
    assert len(back) == want["index"].nunique() * want["year"].nunique() * 4
    assert client.get("/api/segregation/indices", params={"scope": "kommune:9999"}).status_code == 404
    # the kommune's profile links to its indices
    assert "/segregation?scope=kommune:0301" in client.get("/area/kommune/0301").text


# ---------- schools and kindergartens ----------
def test_school_view_counts_and_suppression(client, web_store):
    if "segregation_school_classes" not in web_store.extra:
        pytest.skip("no school tables in this store")
    classes = web_store.extra["segregation_school_classes"]
    year = int(classes["year"].max())
    r = client.get("/schools", params={"year": year})
    assert r.status_code == 200
    for part in ("classes", "uptake", "indices", "contrast", "kindergarten"):
        assert f'id="h-{part}"' in r.text, part
    api = client.get("/api/schools/classes", params={"year": year}).json()
    got = {row["scope"]: row for row in api["rows"]}
    for _, want in classes[classes["year"] == year].iterrows():
        row = got[f"{want['scope_level']}:{want['scope_code']}"]
        for col in ("schools", "classified", "at_least_50", "over_90", "under_10"):
            assert row[col] == want[col], col
    # uptake: a hidden size shows ':' in every size column, a hidden local count in the local columns
    up = web_store.extra["segregation_school_uptake"]
    kommune = sorted(up["kommune"].unique())[0]
    flagged = up.copy()
    first = flagged.index[flagged["year"] == year][0]
    flagged.loc[first, ["uptake_suppressed", "local_suppressed"]] = True
    flagged.loc[first, ["enrolled", "resident", "uptake", "local", "local_share"]] = np.nan
    store = replace(web_store, extra={**web_store.extra, "segregation_school_uptake": flagged})
    c2 = TestClient(create_app(store))
    rows = _csv(c2.get("/download/schools.csv", params={"part": "uptake", "year": year, "kommune": kommune}).text)
    hidden = next(r for r in rows if r["institution_id"] == flagged.loc[first, "institution_id"])
    assert [hidden[c] for c in ("enrolled", "resident", "uptake", "local", "local_share")] == [":"] * 5
    shown = up[(up["year"] == year) & ~up["uptake_suppressed"] & (up["kommune"] == kommune) & (up.index != first)].iloc[
        0
    ]
    row = next(r for r in rows if r["institution_id"] == shown["institution_id"])
    assert row["enrolled"] == str(int(shown["enrolled"]))
    # the composition table marks the store's suppressed cells
    comp = web_store.extra["segregation_institution_composition"]
    sub = comp[(comp["year"] == year) & (comp["group"] == "immigrant_background") & (comp["kommune"] == kommune)]
    api = client.get("/api/schools/composition", params={"year": year, "group": "immigrant_background"}).json()
    assert sum(1 for r in api["rows"] if r.get("symbols", {}).get("share") == ":") == int(sub["suppressed"].sum())
    assert client.get("/api/schools/nothing").status_code == 404
    assert client.get("/api/schools/classes", params={"kommune": "9999"}).status_code == 404


# ---------- moves and change ----------
def _flow_area(web_store):
    m = web_store.extra["flows_movers"]
    d = web_store.extra["flows_decomposition"]
    ok = d[~d["suppressed"] & (d["level"] == "analysis_area")]
    row = ok.iloc[0]
    return row, m


def test_flows_view(client, web_store):
    if "flows_movers" not in web_store.extra:
        pytest.skip("no flows tables in this store")
    row, movers = _flow_area(web_store)
    level, code, pair = row["level"], row["area_code"], f"{row['year_from']}-{row['year_to']}"
    r = client.get(f"/flows/{level}/{code}", params={"pair": pair, "indicator": row["indicator_id"]})
    assert r.status_code == 200
    fig = json.loads(r.text.split('id="decomposition-figure">', 1)[1].split("</script>", 1)[0])
    w = fig["data"][0]
    assert w["type"] == "waterfall" and w["measure"][0] == "absolute" and w["measure"][-1] == "total"
    # the contributions add up to the change: first value + Σ contributions = last value
    assert abs(w["y"][0] + sum(w["y"][1:-1]) - w["y"][-1]) < 1e-2
    assert abs(w["y"][-1] - row["value_to"]) < 1e-2
    assert "Andelen" in r.text.split('id="reading">', 1)[1].split("</p>", 1)[0]
    en = client.get(f"/flows/{level}/{code}", params={"pair": pair, "indicator": row["indicator_id"], "lang": "en"})
    assert row["reading"].split(";")[0].replace("'", "&#39;") in en.text
    # movers: counts from the store; a suppressed row is ':' in every column
    api = client.get(f"/api/flows/{level}/{code}", params={"pair": pair}).json()
    got = {m["group"]: m for m in api["movers"]["rows"]}
    want = movers[
        (movers["level"] == level)
        & (movers["area_code"] == code)
        & (movers["year_from"] == row["year_from"])
        & (movers["year_to"] == row["year_to"])
    ]
    for _, m in want.iterrows():
        if m["suppressed"]:
            assert got[m["group"]]["symbols"]["persons"] == ":"
        elif pd.notna(m["persons"]):
            assert got[m["group"]]["persons"] == m["persons"]
    hidden = movers[movers["suppressed"]].iloc[0]
    q = {"level": hidden["level"], "area": hidden["area_code"], "pair": f"{hidden['year_from']}-{hidden['year_to']}"}
    rows = _csv(client.get("/download/movers.csv", params=q).text)
    hid = next(r for r in rows if r["group"] == hidden["group"])
    assert set(list(hid.values())[1:]) == {":"}
    # the fixed cohort beside the current population
    assert {c["view"] for c in api["cohort"]["rows"]} == {"fixed_cohort", "current_population"}
    # errors name what exists
    bad = client.get(f"/api/flows/{level}/{code}", params={"pair": "1990-1991"})
    assert bad.status_code == 404 and "published pairs" in bad.json()["detail"]
    assert client.get("/api/flows/kommune/9999").status_code == 404
    # the profile links to its flows
    assert f'href="/flows/{level}/{code}"' in client.get(f"/area/{level}/{code}").text


def test_navigation_and_openapi(client):
    html = client.get("/").text
    for href in ('href="/segregation"', 'href="/schools"', 'href="/flows"', 'href="/tables"'):
        assert href in html
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/segregation/knn", "/api/segregation/indices", "/api/schools/{part}", "/api/flows/{level}/{code}"):
        assert p in paths


# ---------- names and search ----------
def test_area_names_and_search(client, web_store):
    named = {k: v for k, v in web_store.names.items() if k[0] == "bydel"}
    assert named, "the store should carry bydel names from the geography"
    (level, code), name = sorted(named.items())[0]
    r = client.get(f"/area/{level}/{code}")
    title = r.text.split('id="area-title">', 1)[1].split("</h1>", 1)[0]
    assert name in title and code in title
    # the map's tooltips carry the name
    r = client.get("/", params={"level": level})
    fig = json.loads(r.text.split('id="map-figure">', 1)[1].split("</script>", 1)[0])
    assert any(name in h for t in fig["data"] for h in (t.get("hovertext") or t.get("text") or []))
    # search: the exact name or code opens the profile; a part lists the matches
    r = client.get("/find", params={"q": name}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/area/{level}/{code}"
    r = client.get("/find", params={"q": f"{name} (bydel {code})"}, follow_redirects=False)
    assert r.headers["location"] == f"/area/{level}/{code}"
    assert client.get("/find", params={"q": "no such place zzz"}).status_code == 404
    grunnkrets = {k: v for k, v in web_store.names.items() if k[0] == "grunnkrets"}
    assert grunnkrets  # grunnkrets names too (the geography's grunnkrets_name)


# ---------- the cache ----------
def test_api_cache_etag(client, web_store):
    a = client.get("/api/profile/kommune/0301")
    assert a.status_code == 200 and a.headers["etag"]
    b = client.get("/api/profile/kommune/0301", headers={"If-None-Match": a.headers["etag"]})
    assert b.status_code == 304 and b.content == b""
    c = client.get("/api/profile/kommune/0301")
    assert c.content == a.content and c.headers["etag"] == a.headers["etag"]
    assert "content-security-policy" in c.headers  # cached answers get the security headers too
    # the query is normalised: the same parameters in another order are the same answer
    y = client.get("/api/meta").json()["years"][-1]
    ind = web_store.indicator_ids[0]
    d1 = client.get(f"/api/values?level=kommune&year={y}&indicator={ind}")
    d2 = client.get(f"/api/values?indicator={ind}&year={y}&level=kommune")
    assert d1.headers["etag"] == d2.headers["etag"]
    assert client.get("/api/profile/kommune/9999").status_code == 404  # errors are not cached
    assert client.get("/api/profile/kommune/9999").status_code == 404


def test_residential_indices_from_a_store_on_disk(web_store, tmp_path):
    """The same, end to end: a store folder whose DuckDB file has a `segregation_indices` table is read by
    `load_store` and shown."""
    import shutil

    import duckdb

    from levekar.web.store import load_store

    for name in ("barometer.duckdb", "manifest.json", "areas.geo.parquet"):
        shutil.copy(web_store.path / name, tmp_path / name)
    table = _residential(web_store)
    con = duckdb.connect(str(tmp_path / "barometer.duckdb"))
    con.register("frame", table)
    con.execute("CREATE OR REPLACE TABLE segregation_indices AS SELECT * FROM frame")
    con.close()
    store = load_store(tmp_path)
    assert len(store.extra["segregation_indices"]) == len(table)
    client = TestClient(create_app(store))
    r = client.get("/segregation", params={"scope": "kommune:0301", "unit_level": "analysis_area"})
    assert r.status_code == 200 and 'id="residential-chart"' in r.text
    api = client.get("/api/segregation/indices", params={"scope": "kommune:0301", "unit_level": "analysis_area"})
    want = table[(table["scope_level"] == "kommune") & (table["unit_level"] == "analysis_area")]
    want = want[want["group_id"] == sorted(want["group_id"].unique())[0]]
    got = {(row["index"], row["year"]): row["value"] for row in api.json()["rows"]}
    assert got == pytest.approx({(i, y): v for i, y, v in want[["index", "year", "value"]].itertuples(index=False)})
