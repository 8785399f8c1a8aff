"""The web app and its JSON API over the demo store (in process): pages, API, downloads with SSB symbols,
Excel and JSON-stat read back, validation, no path traversal, the OpenAPI document under schemathesis,
and the municipality report."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from openpyxl import load_workbook
from pyjstat import pyjstat
from typer.testing import CliRunner

from levekar.cli.main import app as cli
from levekar.web.app import create_app

# starlette's test client warns that httpx will be replaced; the tests need only its requests
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def client(web_store) -> TestClient:
    return TestClient(create_app(web_store))


@pytest.fixture(scope="module")
def sample(web_store) -> dict:
    """An indicator, level, year and an area with a published value and one with a suppressed one."""
    v = web_store.values
    level = "grunnkrets"
    rows = v[(v["level"] == level) & (v["breakdown"] == "total") & (v["pooled_years"] == 1)]
    hidden = rows[rows["suppressed"]].iloc[0]
    shown = rows[
        (~rows["suppressed"])
        & (rows["indicator_id"] == hidden["indicator_id"])
        & (rows["year"] == hidden["year"])
        & rows["value"].notna()
    ].iloc[0]
    return {
        "indicator": hidden["indicator_id"],
        "level": level,
        "year": int(hidden["year"]),
        "hidden": hidden["area_code"],
        "shown": shown["area_code"],
        "shown_value": float(shown["value"]),
    }


def test_pages_render_with_banner(client, web_store):
    assert web_store.synthetic
    for url in ("/", "/compare", "/lists", "/method", "/api", "/area/kommune/0301"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert 'id="synthetic-banner"' in r.text
        assert "Content-Security-Policy" in r.headers
        assert "http://" not in r.text.replace("http://www.w3.org", "") and "https://" not in r.text, url
    assert "NOU 2020:16" in client.get("/method").text


def test_language_switch_sets_cookie(client):
    r = client.get("/method?lang=en")
    assert '<html lang="en">' in r.text and "Read small areas with caution" in r.text
    assert r.cookies.get("lang") == "en"
    assert '<html lang="en">' in client.get("/lists").text  # the cookie keeps it
    assert '<html lang="nb">' in client.get("/lists?lang=nb").text


def test_map_page_marks_suppressed(client, sample):
    r = client.get("/", params={"indicator": sample["indicator"], "level": sample["level"], "year": sample["year"]})
    assert r.status_code == 200
    fig = r.text.split('id="map-figure">', 1)[1].split("</script>", 1)[0]
    data = json.loads(fig)["data"]
    assert sample["hidden"] in data[1]["locations"] and "(:)" in data[1]["name"]
    assert sample["shown"] in data[0]["locations"]
    assert data[0]["type"] == "choropleth" and json.loads(fig)["layout"]["geo"]["fitbounds"] == "locations"


def test_api_meta_and_catalogue(client, web_store):
    meta = client.get("/api/meta").json()
    assert meta["synthetic"] is True and meta["years"] == web_store.years
    assert "analysis_area" in meta["levels"]
    cat = client.get("/api/indicators").json()
    assert {c["indicator_id"] for c in cat} == set(web_store.indicator_ids)
    assert client.get(f"/api/indicators/{cat[0]['indicator_id']}").json()["title_nb"]


def test_api_values_and_suppression(client, sample):
    q = {"indicator": sample["indicator"], "level": sample["level"], "year": sample["year"]}
    body = client.get("/api/values", params={**q, "area": sample["hidden"], "breakdown": "total"}).json()
    row = body["values"][0]
    assert row["suppressed"] is True
    assert row["value"] is None and row["numerator"] is None and row["denominator"] is None
    body = client.get("/api/values", params={**q, "area": sample["shown"], "breakdown": "total"}).json()
    assert body["values"][0]["value"] == pytest.approx(sample["shown_value"])
    assert client.get("/api/values", params={**q, "limit": 3}).json()["total"] > 3


def test_api_profile_classification_settlement(client, web_store):
    code = web_store.areas[web_store.areas["level"] == "analysis_area"]["area_code"].iloc[0]
    p = client.get(f"/api/profile/analysis_area/{code}", params={"lang": "en"}).json()
    assert p["year"] == web_store.years[-1] and p["kommune"] == "0301"
    assert len(p["indicators"]) == len(web_store.indicator_ids)
    first = p["indicators"][0]
    assert {"value", "ci_low", "ci_high", "value_kommune", "value_country", "label", "trend"} <= set(first)
    assert len(first["trend"]) == len(web_store.years)
    assert {c["scheme"] for c in p["classification"]} >= {"tiers", "nou_screening"}
    cls = client.get("/api/classification", params={"scheme": "tiers", "level": "analysis_area"}).json()
    assert cls["total"] == len(web_store.years) * (web_store.areas["level"] == "analysis_area").sum()
    ex = client.get(f"/api/classification/tiers/analysis_area/{code}/explain").json()
    assert {"criterion", "value", "threshold", "met"} <= set(ex["criteria"][0])
    gk = web_store.members[web_store.members["level"] == "analysis_area"]["grunnkrets"].iloc[0]
    s = client.get("/api/settlement", params={"grunnkrets": gk}).json()
    assert s["level"] == "analysis_area" and s["accumulated"] in (True, False, None) and s["reasons"]
    assert client.get("/api/settlement", params={"grunnkrets": "99999999"}).status_code == 404
    assert client.get("/api/settlement").status_code == 422


def test_unknown_codes_give_404_with_message(client):
    r = client.get("/api/values", params={"indicator": "nope"})
    assert r.status_code == 404 and "unknown indicator 'nope'" in r.json()["detail"]
    assert client.get("/api/profile/grunnkrets/00000000").status_code == 404
    assert client.get("/api/areas", params={"level": "planet"}).status_code == 404
    assert client.get("/api/tables/persons").status_code == 404  # the microdata are not in the store
    r = client.get("/area/kommune/9999")
    assert r.status_code == 404 and "9999" in r.text
    assert client.get("/api/values", params={"year": 1800}).status_code == 422


def test_no_path_traversal(client):
    for url in (
        "/static/../app.py",
        "/static/..%2Fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/geo/..%2F..%2Fbarometer.duckdb.geojson",
        "/area/..%2F..%2Fetc/passwd",
        "/download/table.csv?name=../../barometer",
        "/api/tables/..%2Fmanifest",
        "/barometer.duckdb",
        "/manifest.json",
    ):
        r = client.get(url)
        assert r.status_code in (404, 422), url
        assert b"DUCK" not in r.content and b"import " not in r.content, url


def _csv(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_downloads_csv_excel_jsonstat(client, sample):
    q = {"indicator": sample["indicator"], "level": sample["level"], "year": sample["year"]}
    rows = {r["area_code"]: r for r in _csv(client.get("/download/map.csv", params=q).content)}
    assert rows[sample["hidden"]]["value"] == ":" and rows[sample["hidden"]]["denominator"] == ":"
    assert float(rows[sample["shown"]]["value"]) == pytest.approx(sample["shown_value"], abs=0.05)
    # the country has no kommune: '-' (nothing), never a number
    prof = _csv(client.get("/download/profile.csv", params={"level": "country", "area": "0"}).content)
    assert {r["value_kommune"] for r in prof} == {"-"}

    r = client.get("/download/map.xlsx", params=q)
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    data = list(wb["data"].iter_rows(values_only=True))
    by_area = {row[0]: row for row in data[1:]}
    assert by_area[sample["hidden"]][1] == ":"
    assert by_area[sample["shown"]][1] == pytest.approx(sample["shown_value"])
    assert any("SYNTETISKE" in (c[0] or "") for c in wb["om"].iter_rows(values_only=True))

    r = client.get("/download/map.json", params=q)
    ds = r.json()
    assert ds["version"] == "2.0" and ds["extension"]["synthetic"] is True
    back = pyjstat.Dataset.read(r.text).write("dataframe", naming="id")
    got = back.set_index(["area_code", "contents"])["value"]
    assert got[(sample["shown"], "value")] == pytest.approx(sample["shown_value"])
    index = ds["dimension"]["area_code"]["category"]["index"]  # JSON-stat allows an array or an object
    at = index.index(sample["hidden"]) if isinstance(index, list) else index[sample["hidden"]]
    assert ds["status"][str(at * ds["size"][1])] == ":"


@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_every_table_view_downloads(client, web_store):
    code = web_store.areas[web_store.areas["level"] == "analysis_area"]["area_code"].iloc[0]
    views = {
        "profile": {"level": "analysis_area", "area": code},
        "trend": {"level": "analysis_area", "area": code},
        "compare": {"areas": f"analysis_area:{code},kommune:0301"},
        "classification": {"scheme": "tiers", "level": "analysis_area"},
        "values": {"indicator": web_store.indicator_ids[0], "level": "bydel"},
    }
    for view, params in views.items():
        for fmt in ("csv", "xlsx", "json"):
            r = client.get(f"/download/{view}.{fmt}", params=params)
            assert r.status_code == 200, (view, fmt, r.text[:200])
            assert "attachment" in r.headers["content-disposition"]
        pyjstat.Dataset.read(client.get(f"/download/{view}.json", params=params).text).write("dataframe")
    assert client.get("/download/profile.csv").status_code == 422
    assert client.get("/download/values.csv").status_code == 413  # the whole table: filter it


def test_openapi_has_no_server_errors(web_store):
    """schemathesis against the OpenAPI document: no generated request gives a 5xx."""
    import schemathesis
    from schemathesis.checks import not_a_server_error

    app = create_app(web_store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 10
    failures = []
    for op in ops:
        strategy = op.as_strategy()

        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def check(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        from hypothesis import given

        try:
            given(strategy)(check)()
        except Exception as e:  # collect every operation's failure, then report them all
            failures.append(f"{op.path}: {e}")
    assert not failures, "\n".join(failures)


def test_report_command(tmp_path, demo_dir, web_store, monkeypatch):
    # the command's own loading is what `serve` does too; reuse the session's store to save its seconds
    monkeypatch.setattr("levekar.web.store.load_store", lambda path: web_store)
    out = tmp_path / "report.html"
    r = CliRunner().invoke(cli, ["report", str(demo_dir.parent / "published"), "--kommune", "0301", "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert "Levekårsanalyse" in html and 'id="synthetic-banner"' in html and "Plotly" in html
    assert "https://cdn" not in html.split("</script>", 1)[1]  # nothing outside plotly.js itself refers to a CDN
    bad = CliRunner().invoke(cli, ["report", str(demo_dir.parent / "published"), "--kommune", "9999"])
    assert bad.exit_code == 2 and "9999" in bad.output


def test_serve_command_prints_the_address(demo_dir, web_store, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr("levekar.web.store.load_store", lambda path: web_store)
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: seen.update(host=host, port=port))
    r = CliRunner().invoke(cli, ["serve", str(demo_dir.parent / "published"), "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert "http://localhost:8123/" in r.output and "SYNTHETIC" in r.output
    assert seen == {"host": "127.0.0.1", "port": 8123}
    monkeypatch.undo()
    missing = CliRunner().invoke(cli, ["serve", str(demo_dir.parent / "nowhere")])
    assert missing.exit_code == 2


def test_serve_with_workers(demo_dir, web_store, monkeypatch):
    """--workers N hands uvicorn the app factory (each worker loads the store named in the environment)."""
    import uvicorn

    from levekar.web import app as web_app

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: seen.update(target=target, **kw))
    monkeypatch.delenv("LEVEKAR_WEB_STORE", raising=False)
    store = demo_dir.parent / "published"
    r = CliRunner().invoke(cli, ["serve", str(store), "--port", "8124", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "http://localhost:8124/" in r.output and "SYNTHETIC" in r.output
    assert seen["target"] == "levekar.web.app:app_from_env" and seen["factory"] and seen["workers"] == 2
    assert os.environ["LEVEKAR_WEB_STORE"] == str(store.resolve())
    monkeypatch.setattr(web_app, "load_store", lambda path: web_store)
    assert TestClient(web_app.app_from_env()).get("/api/meta").json()["synthetic"] is True
    monkeypatch.delenv("LEVEKAR_WEB_STORE")
    with pytest.raises(RuntimeError, match="LEVEKAR_WEB_STORE"):
        web_app.app_from_env()
    bad = CliRunner().invoke(cli, ["serve", str(demo_dir.parent / "nowhere"), "--workers", "2"])
    assert bad.exit_code == 2
