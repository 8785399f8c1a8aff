"""The web barometer in headless Chromium (Playwright) against the real server: the map, changing indicator
and year, an area profile, the language switch, the three downloads — and not one request to another host.
Screenshots go to tests/artifacts/ (kept by CI as test artifacts, ignored by git)."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import uvicorn
from openpyxl import load_workbook
from pyjstat import pyjstat

from levekar.web.app import create_app

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str | None:
    """Debian's Chromium (`.ci/run` installs it), or one named by LEVEKAR_CHROMIUM."""
    for candidate in (os.environ.get("LEVEKAR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def server(web_store):
    """uvicorn in a thread on a free port of the loopback interface, serving the demo store."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(web_store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium: .ci/run should have installed it (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=FLAGS)
        yield b
        b.close()


def _wait_plot(page, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-ready='1'] .main-svg", timeout=30_000)


@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_barometer_in_a_browser(server, browser, web_store):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    requests: list[str] = []
    errors: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))

    # the map, in Norwegian, with the synthetic banner
    page.goto(server + "/")
    _wait_plot(page, "#map")
    assert page.locator("html").get_attribute("lang") == "nb"
    assert "SYNTETISKE DATA" in page.inner_text("#synthetic-banner")
    assert page.locator("#map .choroplethlocation").count() > 10
    page.screenshot(path=str(ARTIFACTS / "01-map.png"))

    # change the indicator, then the year: each choice reloads the map
    other = web_store.indicator_ids[1]
    with page.expect_navigation():
        page.select_option("#f-indicator", other)
    _wait_plot(page, "#map")
    assert f"indicator={other}" in page.url
    assert page.inner_text("h1") == web_store.indicators[other]["title_nb"]
    first_year = str(web_store.years[-2])
    with page.expect_navigation():
        page.select_option("#f-year", first_year)
    _wait_plot(page, "#map")
    assert f"year={first_year}" in page.url and f"indicator={other}" in page.url
    assert page.locator("#f-year").input_value() == first_year
    page.screenshot(path=str(ARTIFACTS / "02-map-changed.png"))

    # an area profile, from the table under the map (keyboard: focus the link and press Enter)
    link = page.locator("#values tbody a").first
    link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/area/" in page.url
    _wait_plot(page, "#profile-chart")
    _wait_plot(page, "#trend-chart")
    assert page.inner_text("#area-title").startswith("Områdeprofil")
    assert page.locator("#profile tbody tr").count() == len(web_store.indicator_ids)
    page.screenshot(path=str(ARTIFACTS / "03-profile.png"), full_page=True)

    # switch to English: the same page, and the choice is kept
    with page.expect_navigation():
        page.click("#switch-lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("#area-title").startswith("Area profile")
    assert "SYNTHETIC DATA" in page.inner_text("#synthetic-banner")
    page.screenshot(path=str(ARTIFACTS / "04-profile-en.png"))

    # the three downloads of the profile table
    got = {}
    for fmt in ("csv", "xlsx", "json"):
        with page.expect_download() as info:
            page.click(f"#h-profile ~ .downloads .dl-{fmt}, section[aria-labelledby='h-profile'] .dl-{fmt}")
        path = ARTIFACTS / f"profile.{fmt}"
        info.value.save_as(path)
        got[fmt] = path.read_bytes()
    lines = got["csv"].decode("utf-8").splitlines()
    assert lines[0].startswith("indicator_id,value,ci_low,ci_high")
    assert len(lines) == len(web_store.indicator_ids) + 1
    wb = load_workbook(io.BytesIO(got["xlsx"]))
    assert wb["data"].max_row == len(web_store.indicator_ids) + 1
    assert any("SYNTHETIC" in (r[0] or "") for r in wb["about"].iter_rows(values_only=True))
    ds = json.loads(got["json"])
    assert ds["version"] == "2.0"
    frame = pyjstat.Dataset.read(got["json"].decode("utf-8")).write("dataframe")
    assert len(frame) == ds["size"][0] * ds["size"][1]

    # lists and comparison render too
    page.goto(server + "/lists?scheme=tiers")
    assert page.locator("#list tbody tr").count() > 0
    page.screenshot(path=str(ARTIFACTS / "05-lists-en.png"))
    page.goto(server + "/compare")
    _wait_plot(page, "#compare-chart")
    page.screenshot(path=str(ARTIFACTS / "06-compare-en.png"))

    # the dedicated views: segregation (K-profile chart), schools, flows (waterfall), each from the navigation
    page.goto(server + "/?lang=nb")
    with page.expect_navigation():
        page.click("header nav a[href='/segregation']")
    _wait_plot(page, "#knn-chart")
    assert page.locator("#knn-chart .scatterlayer .trace").count() == len(
        web_store.extra["segregation_knn_profile"]["year"].unique()
    )
    assert page.locator("#residential-absent").count() == (0 if "segregation_indices" in web_store.extra else 1)
    page.screenshot(path=str(ARTIFACTS / "07-segregation.png"), full_page=True)
    with page.expect_navigation():
        page.click("header nav a[href='/schools']")
    _wait_plot(page, "#indices-chart")
    assert page.locator("#school-classes tbody tr").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "08-schools.png"), full_page=True)
    with page.expect_navigation():
        page.click("header nav a[href='/flows']")
    # the picker by keyboard: the select, then Enter on the submit button
    page.focus("#f-flow-area")
    page.keyboard.press("ArrowDown")
    page.focus("main form button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/flows/" in page.url
    _wait_plot(page, "#movers-chart")
    if page.locator("#decomposition-chart").count():
        _wait_plot(page, "#decomposition-chart")
        assert page.locator("#decomposition-chart .waterfalllayer").count() == 1
        assert page.inner_text("#reading").startswith("Slik leses det")
    page.screenshot(path=str(ARTIFACTS / "09-flows.png"), full_page=True)

    # an area by keyboard from the map page: type its name in the search box, press Enter
    (level, code), name = sorted((k, v) for k, v in web_store.names.items() if k[0] == "bydel")[0]
    page.goto(server + "/")
    page.focus("#f-find")
    page.keyboard.type(name)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/area/{level}/{code}")
    assert name in page.inner_text("#area-title")

    context.close()
    assert not errors, errors
    host = urlparse(server).netloc
    foreign = [u for u in requests if not u.startswith(("data:", "blob:")) and urlparse(u).netloc != host]
    assert not foreign, foreign
    assert len(requests) > 10
