"""Browser test of the Region scan page, offline: upload an area -> start a scan of the SYNTHETIC demo mosaic
(a real background job of ``asgm`` commands) -> its detections appear on the results map -> the picked
detection's window opens in the Patch viewer with the scan run's probability. The run is ``scan_support``'s
fixed-weight bare-soil detector."""

from __future__ import annotations

import json
import time

import pytest
from conftest import app_server, shot
from ui_env import env_vars

pytestmark = pytest.mark.e2e

LON, LAT, D = -61.8, 6.4, 0.015


def test_upload_an_area_scan_it_and_open_a_detection(tmp_path, new_page):
    from scan_support import detector_run

    from asgm.jobs import runner as jobs
    from asgm.scan import results as scan_results

    page = new_page
    env = {
        "ASGM_DATA_DIR": str(tmp_path / "data"),
        "ASGM_MODELS_DIR": str(tmp_path / "models"),
        "ASGM_APP_AUTOPREPARE": "0",
    }
    with env_vars(env):
        detector_run()
    area = tmp_path / "area.geojson"
    area.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [[LON - D, LAT - D], [LON + D, LAT - D], [LON + D, LAT + D], [LON - D, LAT + D], [LON - D, LAT - D]]
                ],
            }
        )
    )
    with app_server(env, tmp_path) as url:
        page.goto(f"{url}/Scan")
        page.get_by_text("Upload GeoJSON").click()
        page.locator("input[type=file]").set_input_files(str(area))
        page.get_by_text("area.geojson: ").wait_for()
        name = page.get_by_label("Scan name (its folder under data/scans)")
        name.fill("e2e-2022")
        name.press("Enter")
        year = page.get_by_label("Year", exact=True)
        year.fill("2022")
        year.press("Enter")
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Start the scan").click()
        page.get_by_text("Started job").wait_for()
        with env_vars(env):
            end = time.monotonic() + 180
            while (job := jobs.list_jobs()[0]).active:
                assert time.monotonic() < end, job.log_tail()
                time.sleep(0.5)
            assert job.status == "completed", (job.error, job.log_tail())
            table = scan_results.detections_table(scan_results.open_scan("e2e-2022"))
        assert len(table) >= 1
        page.reload()
        page.get_by_role("tab", name="Results").click()
        page.get_by_text("SYNTHETIC imagery (not a real place)").first.wait_for()
        frame = page.locator("iframe").first.element_handle().content_frame()
        # The detections layer: one Leaflet polygon per detection, coloured on the probability ramp.
        # The Leaflet map object (found by shape: streamlit-folium's global name for it varies).
        leaflet = "Object.values(window).find(v => v && typeof v.eachLayer === 'function' && v._layers)"
        frame.wait_for_function(
            f"() => {{ const m = {leaflet}; return m && Object.keys(m._layers).length > 3; }}", timeout=60_000
        )
        n_polygons = frame.evaluate(f"""() => {{ let n = 0; {leaflet}.eachLayer(l => {{
            if (l.feature && l.feature.properties && String(l.feature.properties.id).startsWith('det-')) n++; }});
            return n; }}""")
        assert n_polygons == len(table)
        assert frame.get_by_text("Detection: highest window probability").count() == 1
        shot(page, "scan_results")
        # Click the last detection's polygon on the map (not the one picked by default): the page picks it and links
        # its window.
        assert len(table) >= 2
        det = table.iloc[-1]
        xy = frame.evaluate(
            f"""(id) => {{ const m = {leaflet}; let c = null; m.eachLayer(l => {{
            if (l.feature && l.feature.properties && l.feature.properties.id === id && l.getBounds) {{
                const p = m.latLngToContainerPoint(l.getBounds().getCenter()); c = {{x: p.x, y: p.y}}; }} }});
            return c; }}""",
            det["id"],
        )
        page.locator("iframe").first.scroll_into_view_if_needed()
        box = page.locator("iframe").first.bounding_box()
        page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
        link = page.locator(f"a[href*='window={det['window'].replace(',', '%2C')}']")
        link.wait_for(timeout=30_000)
        link.click()
        page.get_by_text("Probability of mining").wait_for()
        assert f"window {det['window']}" in page.content()
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                                       .some(i => i.complete && i.naturalWidth > 0)""",
            timeout=30_000,
        )
        shot(page, "scan_window")
    assert not [u for u in page.failed_requests if "127.0.0.1" not in u and "tile" not in u]
