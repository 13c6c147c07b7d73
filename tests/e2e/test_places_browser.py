"""Browser test of the Places page and the Map's period layer, offline, on the real AMW layers and territories:
move the period slider, click a territory on the map (it becomes the selected place), download the CSV; on the
Map, switch the period layer on (AMW's) and move its period slider (the period's polygons are drawn; the time from the
slider move to the drawn layer is printed)."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest
from browser_support import LEAFLET, click_period_detection
from conftest import app_server, shot
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.e2e


def _env(tmp_path) -> dict[str, str]:
    return {
        "ASGM_DATA_DIR": str(tmp_path / "data"),
        "ASGM_MODELS_DIR": str(tmp_path / "models"),
        "ASGM_APP_AUTOPREPARE": "0",
    }


def _frame(page):
    page.wait_for_selector("iframe", timeout=120_000)
    frame = page.locator("iframe").first.element_handle().content_frame()
    frame.wait_for_function(
        f"() => {{ const m = {LEAFLET}; return m && Object.keys(m._layers).length > 3; }}", timeout=120_000
    )
    return frame


def test_slider_click_a_territory_and_download_the_csv(tmp_path, new_page):
    page = new_page
    with app_server(_env(tmp_path), tmp_path) as url:
        page.goto(f"{url}/Places")
        page.get_by_text("Places ranked by mined area").first.wait_for(timeout=120_000)
        # the period slider: move its start from 2018 to 2024 (six steps right)
        thumb = page.get_by_role("slider").first
        thumb.focus()
        for _ in range(6):
            thumb.press("ArrowRight")
        page.get_by_text("new in 2024–2025Q3").first.wait_for(timeout=60_000)
        # Zoom onto Kayapó (Brazil) and click the middle of its outline. Under load the period change can redraw
        # the map's iframe once more after its text appears, and a click on the old map is lost: the map is looked
        # up again and clicked again, for at most the same 60 s the panel was waited for before.
        kayapo = page.locator("[data-testid=stMarkdownContainer] strong", has_text="Kayapó").first
        deadline = time.monotonic() + 60
        while True:
            xy = _frame(page).evaluate(
                f"""(id) => {{ const m = {LEAFLET}; let c = null; m.eachLayer(l => {{
                if (l.feature && l.feature.properties && l.feature.properties.boundary_id === id && l.getBounds) {{
                    m.fitBounds(l.getBounds(), {{animate: false, paddingBottomRight: [350, 300]}});
                    const p = m.latLngToContainerPoint(l.getBounds().getCenter()); c = {{x: p.x, y: p.y}}; }} }});
                return c; }}""",
                "BR23001_0",
            )
            assert xy is not None
            page.locator("iframe").first.scroll_into_view_if_needed()
            box = page.locator("iframe").first.bounding_box()
            page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
            try:
                kayapo.wait_for(timeout=15_000)
                break
            except PlaywrightTimeout:
                assert time.monotonic() < deadline, "a click on Kayapó's outline did not open its panel in 60 s"
        shot(page, "places_kayapo")
        with page.expect_download() as dl:
            page.get_by_role("button", name="Table (CSV)").click()
        table = pd.read_csv(io.BytesIO(open(dl.value.path(), "rb").read()))
    assert set(table["period"].astype(str)) == {"2024", "2025Q2", "2025Q3"}
    assert len(table) == 237 * 3 and "new_mined_ha" in table and "cumulative_footprint_ha" in table
    kayapo = table[table["boundary_id"] == "BR23001_0"]
    assert kayapo["new_mined_ha"].sum() > 100


#: Whether some iframe of the page has drawn a period layer of ``n`` features. Read from the page, not from a frame
#: handle: a rerun may replace the map's iframe, and a handle to the old frame then fails with "Frame was detached".
PERIOD_DRAWN = """(n) => Array.from(document.querySelectorAll('iframe')).some(f => {
    try { const w = f.contentWindow; return !!(w && w.asgmPeriodLayer && w.asgmPeriodLayer.features === n); }
    catch (e) { return false; } })"""


def _wait_period_layer(page, n: int) -> None:
    page.wait_for_function(PERIOD_DRAWN, arg=n, timeout=120_000, polling=20)


def test_map_period_slider_draws_the_period(tmp_path, new_page):
    page = new_page
    with app_server(_env(tmp_path), tmp_path) as url:
        page.goto(f"{url}/Map")
        toggle = page.get_by_text("Detections by period")
        toggle.wait_for(timeout=120_000)
        toggle.click()
        # the view radio is enabled by the rerun the toggle starts
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('input[type=radio]')).some(r => {
                     const l = r.closest('label'); return l && l.textContent.includes('new in') && !r.disabled; })""",
            timeout=120_000,
        )
        page.get_by_text("new in", exact=True).click()
        _wait_period_layer(page, 2780)  # AMW's layer of 2025 Q3
        timings = []
        for expected in (3004, 5232):  # 2025Q3 -> 2025Q2 -> 2024 (each period's file is written on first use)
            thumb = page.get_by_role("slider").last
            thumb.focus()
            t0 = time.perf_counter()
            thumb.press("ArrowLeft")
            _wait_period_layer(page, expected)
            timings.append(time.perf_counter() - t0)
        shot(page, "map_amw_2024")
        print(f"slider move -> period layer drawn: {', '.join(f'{t:.2f} s' for t in timings)}")
        # a click on one of 2024's polygons: the panel beside the map gives its period and mined area
        click_period_detection(page, "2024")
        page.get_by_text("Detection, period 2024").first.wait_for(timeout=120_000)
        assert (
            "mined area"
            in page.locator("[data-testid=stCaptionContainer]", has_text="detected footprint").first.inner_text()
        )
