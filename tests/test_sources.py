"""External formats (levekar.sources): JSON-stat 2.0 against real API responses and pyjstat, the PxWebApi v2
client on recorded responses through a fake transport (no network), SSB's CSV exports and grid files, and
geometry files; every malformed file gives a located error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyjstat import pyjstat
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.geo.inputs import InputError, read_units
from levekar.sources import pxweb
from levekar.sources.jsonstat import read_dataset, read_jsonstat, to_jsonstat, write_jsonstat
from levekar.sources.pxweb import PxWebClient, PxWebError, Response, pages, parse_select, resolve
from levekar.sources.ssbfiles import read_grid, read_ssb_csv, ssb_cell_corner, ssb_cell_id
from levekar.sources.symbols import SourceError

REAL = Path(__file__).parent / "data" / "real"
JS = REAL / "jsonstat-fixtures"
TAB638 = JS / "scb_v2_TAB638_data-35e0e2-5aec69-POST.json"
TAB5974 = JS / "scb_v2_TAB5974_data-35e0e2-fb7f17-POST.json"
SSB1120 = JS / "ssb_v0_dataset_1120_jsonstat1.json"
CSV10826 = REAL / "storby-bydeler" / "ssb_10826_personer_bydel_alder_2024.csv"
GML1KM = REAL / "ssb-rutenett-oslo" / "BefolkningOslo1km2019.gml"
GPKG = REAL / "oslo-delbydeler" / "oslo_bydeler.gpkg"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "levekar" / "data" / "oslo"
SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


# --- JSON-stat ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Shouldn't use this function:DeprecationWarning")  # the one reading 1.0 too
@pytest.mark.parametrize(
    ("path", "expected"),
    [(TAB638, [50937]), (TAB5974, [50080, 47361]), (SSB1120, [14297, 42.23, 15439, 37.7, 342, 43.49, 447, 43.32])],
)
def test_real_responses_match_pyjstat(path, expected):
    ours = read_dataset(path).to_frame()
    assert ours["value"].tolist() == expected
    theirs = pyjstat.from_json_stat(json.loads(path.read_text(encoding="utf-8")), naming="id")[0]
    assert theirs["value"].astype(float).tolist() == ours["value"].tolist()
    for dim in [c for c in theirs.columns if c != "value"]:
        assert theirs[dim].astype(str).tolist() == ours[dim].tolist()


def test_real_response_metadata():
    ds = read_dataset(TAB5974)
    assert ds.size == (1, 1, 2, 1, 1)
    kon = ds.dimension("Kon")
    assert kon.codes == ("1", "2") and kon.labels == ("män", "kvinnor")
    assert ds.dimension("Tid").role == "time" and ds.dimension("ContentsCode").role == "metric"
    assert ds.dimension("ContentsCode").units["000005NO"]["decimals"] == 0
    assert ds.dimension("InrikesUtrikes").extension["elimination"] is True
    assert ds.extension["px"]["tableid"] == "TAB5974"
    assert len(read_dataset(TAB638).note) == 3  # dataset notes, \r\n inside one kept
    framed = read_dataset(TAB5974).to_frame(labels=True)
    assert framed["Kon_label"].tolist() == ["män", "kvinnor"]


def _doc(**extra) -> dict:
    return {
        "version": "2.0",
        "class": "dataset",
        "id": ["region", "year"],
        "size": [2, 3],
        "dimension": {
            "region": {"category": {"index": {"0301": 0, "4601": 1}, "label": {"0301": "Oslo", "4601": "Bergen"}}},
            "year": {"category": {"index": ["2022", "2023", "2024"]}},
        },
        **extra,
    }


def test_sparse_values_status_and_symbols():
    ds = read_dataset(
        _doc(
            value={"0": 1, "2": 3.5, "4": None, "5": "..", "3": None},
            status={"3": "-", "4": ":", "5": ".."},
        )
    )
    f = ds.to_frame()
    assert f["value"].tolist()[:4] == [1.0, None, 3.5, 0.0] or np.isnan(f["value"][1])
    assert f["value"][3] == 0.0  # "-": nothing to report, i.e. zero
    assert np.isnan(f["value"][4]) and f["status"][4] == ":"
    assert np.isnan(f["value"][5]) and f["status"][5] == ".."
    assert read_dataset(_doc(value=[1, 2, 3, 4, 5, 6], status="*")).to_frame()["status"].eq("*").all()
    arr = read_dataset(_doc(value=[1, 2, 3, 4, 5, 6], status=[None, None, None, None, None, "*"]))
    assert arr.status.tolist()[-1] == "*"


def test_collection_and_v1_bundle():
    coll = {"version": "2.0", "class": "collection", "link": {"item": [_doc(value=[1] * 6), _doc(value=[2] * 6)]}}
    assert [d.values.sum() for d in read_jsonstat(coll)] == [6, 12]
    bundle = json.loads(SSB1120.read_text())
    assert len(read_jsonstat(bundle)) == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(value=[1, 2, 3]), "'value' has 3 entries"),
        (_doc(value=[1, 2, 3, 4, 5, "x"]), "value 5 is not a number"),
        ({**_doc(value=[1] * 6), "size": [2, 2]}, "dimension 'year' has 3 categories"),
        ({"version": "2.0", "class": "dimension"}, "holds no values"),
        (_doc(), "needs 'value'"),
    ],
)
def test_malformed_jsonstat(doc, message):
    with pytest.raises(SourceError, match=message):
        read_jsonstat(doc)


def test_malformed_json_is_located(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(TAB5974.read_text(encoding="utf-8").replace('"size": [', '"size" [', 1), encoding="utf-8")
    with pytest.raises(SourceError) as e:
        read_jsonstat(bad)
    assert "bad.json, line 22" in str(e.value) and "not valid JSON" in str(e.value) and '"size" [' in str(e.value)


@pytest.mark.filterwarnings("ignore:Shouldn't use this function:DeprecationWarning")  # inside pyjstat
def test_writer_round_trip_with_pyjstat(tmp_path):
    frame = pd.DataFrame(
        {
            "area": ["030101", "030101", "030102", "030102", "030103"],
            "year": [2023, 2024, 2023, 2024, 2024],
            "name": ["Gamle Oslo"] * 2 + ["Grünerløkka"] * 2 + ["Sagene"],
            "value": [12.5, 13.0, np.nan, 9.25, 4.0],
            "status": [None, None, ":", None, None],
        }
    )
    obj = to_jsonstat(
        frame,
        ["area", "year"],
        status="status",
        label="Test",
        source="levekår",
        labels={"area": "name"},
        roles={"geo": ["area"], "time": ["year"]},
    )
    assert obj["size"] == [3, 2] and obj["status"] == {"2": ":"}
    assert obj["value"] == [12.5, 13, None, 9.25, None, 4]  # 030103 × 2023 has no row: null
    path = write_jsonstat(obj, tmp_path / "t.json")
    shuffled = write_jsonstat(
        to_jsonstat(
            frame.sample(frac=1, random_state=1),
            ["area", "year"],
            status="status",
            label="Test",
            source="levekår",
            labels={"area": "name"},
            roles={"geo": ["area"], "time": ["year"]},
        ),
        tmp_path / "u.json",
    )
    assert path.read_bytes() == shuffled.read_bytes()  # deterministic whatever the row order
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temporary left
    theirs = pyjstat.Dataset.read(path.read_text(encoding="utf-8")).write("dataframe", naming="id")
    back = read_dataset(path).to_frame(labels=True)
    assert np.allclose(theirs["value"].astype(float), back["value"], equal_nan=True)
    assert theirs["area"].tolist() == back["area"].tolist()
    assert back.loc[back["status"] == ":", "area"].tolist() == ["030102"]
    assert back["area_label"].iloc[0] == "Gamle Oslo"


def test_writer_refuses_duplicates():
    with pytest.raises(ValueError, match="share a cell"):
        to_jsonstat(pd.DataFrame({"a": ["x", "x"], "value": [1, 2]}), ["a"])


# --- PxWebApi v2 -----------------------------------------------------------------------------------------


def _metadata() -> dict:
    """A metadata answer in the shape PxWebApi v2 gives (JSON-stat 2.0 without values), built from the
    recorded TAB5974 response's dimensions with the full code lists of a table."""
    doc = json.loads(TAB5974.read_text(encoding="utf-8"))
    doc.pop("value")
    doc["dimension"]["Alder"]["category"] = {"index": [str(a) for a in range(5)], "label": {}}
    doc["dimension"]["Tid"]["category"] = {"index": [str(y) for y in range(2020, 2027)], "label": {}}
    doc["size"] = [1, 5, 2, 1, 7]
    return doc


class FakeApi:
    """Recorded answers by path; data queries answered from the recorded TAB5974 cells (Kon 1 and 2)."""

    def __init__(self, failures: list[Response] | None = None):
        self.calls: list[tuple[str, str, dict | None]] = []
        self.failures = list(failures or [])

    def __call__(self, method: str, url: str, body: bytes | None, headers: dict) -> Response:
        self.calls.append((method, url, json.loads(body) if body else None))
        if self.failures:
            return self.failures.pop(0)
        path = url.split("/v2/", 1)[1].split("?", 1)[0]
        if path == "config":
            return Response(200, {}, json.dumps({"maxDataCells": 1000, "maxCallsPerTimeWindow": 30}).encode())
        if path.endswith("/metadata"):
            return Response(200, {}, json.dumps(_metadata()).encode())
        if path == "tables":
            page = int(url.split("pageNumber=")[1].split("&")[0])
            tables = [{"id": f"0745{page}", "label": f"Table {page}", "firstPeriod": "2000", "lastPeriod": "2024"}]
            return Response(200, {}, json.dumps({"tables": tables, "page": {"totalPages": 2}}).encode())
        sel = {s["variableCode"]: s["valueCodes"] for s in json.loads(body)["selection"]}
        cells = read_dataset(TAB5974).to_frame()
        cells = cells[cells["Kon"].isin(sel["Kon"])]
        rows = [{**r, "Alder": a, "Tid": t} for r in cells.to_dict("records") for a in sel["Alder"] for t in sel["Tid"]]
        frame = pd.DataFrame(rows)
        return Response(200, {}, json.dumps(to_jsonstat(frame, ["Alder", "Kon", "Tid"], order=sel)).encode())


def _client(api, tmp_path, **kw) -> tuple[PxWebClient, list[float]]:
    slept: list[float] = []
    c = PxWebClient(base_url="https://x.test/api/v2", cache_dir=tmp_path / "cache", transport=api, **kw)
    c.sleep = slept.append
    return c, slept


def test_selection_expressions():
    codes = [str(y) for y in range(2015, 2025)]
    assert resolve(codes, ["top(3)"]) == ["2022", "2023", "2024"]
    assert resolve(codes, ["top(2,1)"]) == ["2022", "2023"]  # the two latest after skipping one
    assert resolve(codes, ["bottom(2)"]) == ["2015", "2016"]
    assert resolve(codes, ["from(2023)"]) == ["2023", "2024"]
    assert resolve(codes, ["to(2016)", "2020"]) == ["2015", "2016", "2020"]
    assert resolve(codes, ["range(2018,2019)"]) == ["2018", "2019"]
    assert resolve(["0301", "030101", "4601", "1103"], ["0301*"]) == ["0301", "030101"]
    assert resolve(["0301", "0302", "03011"], ["030?"]) == ["0301", "0302"]
    with pytest.raises(ValueError, match="Tid: no code '1999'"):
        resolve(codes, ["1999"], "Tid")
    assert parse_select(["Region=0301,4601*", "Tid=range(2019,2021)"]) == {
        "Region": ["0301", "4601*"],
        "Tid": ["range(2019,2021)"],
    }
    with pytest.raises(ValueError, match="VARIABLE=CODES"):
        parse_select(["Region"])


def test_pages_stay_under_the_cell_limit():
    sel = {"A": list("abcdefg"), "B": list("xyz"), "C": ["1", "2"]}
    for limit in (1, 5, 7, 20, 100):
        parts = pages(sel, limit)
        assert all(np.prod([len(v) for v in p.values()]) <= limit for p in parts)
        cells = {(a, b, c) for p in parts for a in p["A"] for b in p["B"] for c in p["C"]}
        assert len(cells) == 42 == sum(np.prod([len(v) for v in p.values()]) for p in parts)


def test_data_paged_cached_and_tidy(tmp_path):
    api = FakeApi()
    client, _ = _client(api, tmp_path, max_cells=6)
    frame = client.data("05974", {"Alder": ["0"], "Tid": ["top(7)"], "Kon": ["*"]})
    posts = [c for c in api.calls if c[0] == "POST"]
    assert len(posts) >= 3  # 14 cells under a limit of 6
    assert all(
        np.prod([len(s["valueCodes"]) for s in body["selection"]]) <= 6 for _, _, body in posts
    )  # every page under the limit
    assert "InrikesUtrikes" not in {s["variableCode"] for _, _, b in posts for s in b["selection"]}  # eliminated
    assert len(frame) == 14 and set(frame["Kon"]) == {"1", "2"}
    assert frame.groupby("Kon")["value"].first().tolist() == [50080, 47361]
    assert "outputFormat=json-stat2" in posts[0][1] and "lang=no" in posts[0][1]
    # a second client with the same cache never reaches the network
    offline, _ = _client(lambda *a: (_ for _ in ()).throw(AssertionError("network")), tmp_path, max_cells=6)
    assert offline.data("05974", {"Alder": ["0"], "Tid": ["top(7)"], "Kon": ["*"]}).equals(frame)


def test_rate_limit_retry_and_errors(tmp_path):
    api = FakeApi(failures=[Response(429, {"retry-after": "7"}, b""), Response(503, {}, b"busy")])
    client, slept = _client(api, tmp_path, max_cells=100)
    client._config = {}
    client.metadata("05974")
    assert slept[:2] == [7.0, 2.0]  # Retry-After honoured, then a growing wait
    bad, _ = _client(FakeApi(failures=[Response(400, {}, b"Unknown variable Foo")]), tmp_path / "b")
    bad._config = {}
    with pytest.raises(PxWebError, match="HTTP 400: Unknown variable Foo"):
        bad.metadata("05974")
    busy, _ = _client(FakeApi(failures=[Response(429, {}, b"")] * 3), tmp_path / "c", max_retries=2)
    busy._config = {}
    with pytest.raises(PxWebError, match="HTTP 429"):
        busy.metadata("05974")
    unknown, _ = _client(FakeApi(), tmp_path / "d")
    with pytest.raises(ValueError, match="no variable 'Region'"):
        unknown.data("05974", {"Region": ["0301"]})


def test_throttle_and_search(tmp_path):
    api = FakeApi()
    now = [0.0]
    client, slept = _client(api, tmp_path, clock=lambda: now[0])
    client._config = {"maxCallsPerTimeWindow": 2, "timeWindow": 10}
    client.search("befolkning")
    client.metadata("05974")
    assert slept == [10.0]  # the third call within the window waits for it
    found = client.search("befolkning")  # two pages, from the cache now
    assert found["id"].tolist() == ["07451", "07452"]


def test_cli_fetch_ssb(tmp_path, monkeypatch):
    monkeypatch.setattr(pxweb, "urllib_transport", lambda timeout=60.0: FakeApi())
    out = tmp_path / "t.parquet"
    args = [
        "fetch",
        "ssb",
        "05974",
        "-s",
        "Alder=0",
        "-s",
        "Tid=2026",
        "-s",
        "Kon=*",
        "--out",
        str(out),
        "--cache",
        str(tmp_path),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert df["value"].tolist() == [50080, 47361] and {"Kon", "Kon_label", "status"} <= set(df.columns)
    r = CliRunner().invoke(app, [*args[:4], "Alder=99", "--out", str(tmp_path / "x.parquet")])
    assert r.exit_code == 2 and "Alder: no code '99'" in r.output and not (tmp_path / "x.parquet").exists()


# --- SSB files as published ------------------------------------------------------------------------------


def test_ssb_csv_export_latin1_with_title():
    df = read_ssb_csv(CSV10826)
    assert len(df) == 10494 and df["region"].nunique() == 99
    assert set(df["period"]) == {"2024"} and set(df["contents"]) == {"Persons"}
    oslo = df[df["region"] == "030100aa"]
    assert oslo["region_label"].iloc[0] == "Oslo total" and oslo["value"].sum() == 717710
    assert df.loc[df["region"] == "030102a", "region_label"].iloc[0] == "Grünerløkka"  # Latin-1 decoded
    bydeler = df[df["region"].str.fullmatch(r"0301\d\da") & (df["region"] != "030100a")]
    assert bydeler["value"].sum() == oslo["value"].sum()  # the bydeler (with unknown) add up to Oslo
    assert df["age"].iloc[0] == "0 years" and "age_label" not in df  # "0 years" is a label, not code + label


def test_ssb_csv_symbols_and_utf8(tmp_path):
    text = (
        '"Title: a table"\n\n"region";"Persons 2023";"Persons 2024"\n"0301 Oslo";":";"1 234"\n"4601 Bergen";"..";5,5\n'
    )
    p = tmp_path / "t.csv"
    p.write_text(text, encoding="utf-8")
    df = read_ssb_csv(p)
    assert df["status"].tolist() == [":", "..", None, None]
    assert df["value"].tolist()[2:] == [1234.0, 5.5] and df["period"].tolist() == ["2023", "2023", "2024", "2024"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('"1 year";7734', '"1 year";77x4', 1), "line 5, column 'Persons 2024'"),
        (lambda s: s.replace('"2 years";8118', '"2 years";8118;1', 1), "line 6: 4 fields, the header has 3"),
    ],
)
def test_ssb_csv_malformed_is_located(tmp_path, edit, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(edit(CSV10826.read_bytes().decode("latin-1")).encode("latin-1"))
    with pytest.raises(SourceError, match=message) as e:
        read_ssb_csv(p)
    assert "bad.csv" in str(e.value)


def test_grid_csv_100m():
    g = read_grid(PACKAGE / "Oslo_bef_100m_2015.csv")
    assert len(g) == 9371 and g["population"].sum() == 640797 and set(g["size"]) == {100}
    assert (g["x"].iloc[0], g["y"].iloc[0]) == (253600, 6661600)
    assert (ssb_cell_id(g["x"] + 50, g["y"] + 99, 100) == g["ssb_id"]).all()
    x, y = ssb_cell_corner(g["ssb_id"])
    assert (x == g["x"]).all() and (y == g["y"]).all()
    assert (ssb_cell_id(g["x"], g["y"], 1000) % 10_000_000 % 1000 == 0).all()  # the 1 km cell holding each


def test_grid_250m_semicolon(tmp_path):
    x, y = np.array([262_000, 262_250, 262_500]), np.array([6_650_000, 6_650_250, 6_649_750])
    p = tmp_path / "ru250m.csv"
    ids = ssb_cell_id(x + 10, y + 240, 250)
    p.write_text("ru250m;pop_tot\n" + "".join(f"{i};{n}\n" for i, n in zip(ids, (5, 0, 12), strict=True)))
    g = read_grid(p)
    assert set(g["size"]) == {250} and g["x"].tolist() == x.tolist() and g["population"].sum() == 17
    with pytest.raises(SourceError, match="not a 1000 m cell"):
        read_grid(p, size=1000)


def test_grid_gml_1km():
    g = read_grid(GML1KM)
    assert len(g) == 258 and g["popTot"].sum() == 678692 and set(g["size"]) == {1000}
    assert (g["popMal"] + g["popFem"] == g["popTot"]).all() and (g["population"] == g["popTot"]).all()
    assert not GML1KM.with_suffix(".gfs").exists()  # reading leaves nothing beside the input
    # the 1 km cells hold the 100 m cells' population of four years earlier, roughly
    fine = read_grid(PACKAGE / "Oslo_bef_100m_2015.csv")
    assert 0.9 < fine["population"].sum() / g["population"].sum() < 1.0


def test_grid_malformed_is_located(tmp_path):
    p = tmp_path / "grid.csv"
    lines = (PACKAGE / "Oslo_bef_100m_2015.csv").read_text().splitlines()
    lines[3] = "2253600666170 7"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"grid.csv, line 4, column 'rute_100m': not a 14-digit SSB grid cell id"):
        read_grid(p)
    q = tmp_path / "grid.gml"
    q.write_text(GML1KM.read_text(encoding="utf-8").replace("<app:popTot>4</app:popTot>", "<app:popTot>4</app:pop>", 1))
    with pytest.raises(SourceError, match=r"grid.gml, line \d+, column 'char \d+': not well-formed XML"):
        read_grid(q)
    r = tmp_path / "moved.gml"
    r.write_text(GML1KM.read_text(encoding="utf-8").replace("22560006672000", "22580006672000", 1))
    with pytest.raises(SourceError, match="feature 1: the polygon is not the cell its id names"):
        read_grid(r)


# --- geometry --------------------------------------------------------------------------------------------


def _in_oslo(gdf) -> bool:
    c = gdf.geometry.union_all().centroid
    return 250_000 < c.x < 275_000 and 6_640_000 < c.y < 6_675_000


@pytest.mark.filterwarnings("ignore:More than one layer found")  # the grid GML has its boundary too
def test_geometry_geojson_geopackage_gml():
    delbydeler = read_units(PACKAGE / "oslo_delbydeler.geojson", "DELBYDEL")  # CRS84, 3D
    assert len(delbydeler) == 97 and delbydeler.crs.to_epsg() == 25833 and _in_oslo(delbydeler)
    bydeler = read_units(GPKG, "bydelsnr")
    assert len(bydeler) == 17 and bydeler["bydelsnr"].str.startswith("0301").all() and _in_oslo(bydeler)
    assert read_units(GML1KM, "ssbid1000M").crs.to_epsg() == 25833
    gml = SHARED_REAL / "storby-bydeler" / "bydel2020_mednavn.gml"
    if gml.exists():  # 1 MB: read from the shared folder when it is there
        storby = read_units(gml, "bydelnr")
        assert len(storby) == 38 and _in_oslo(storby[storby["bydelnr"].str.startswith("0301")])


def test_geometry_malformed_is_located(tmp_path):
    bad = tmp_path / "delbydeler.geojson"
    bad.write_text((PACKAGE / "oslo_delbydeler.geojson").read_text(encoding="utf-8")[:5000], encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_units(bad, "DELBYDEL")
    assert "delbydeler.geojson" in str(e.value) and "not valid JSON" in str(e.value) and "line 7" in str(e.value)
    with pytest.raises(InputError, match="column not found"):
        read_units(GPKG, "bydelnr")
