"""Browser test of reviewing with the keyboard (issue 23), offline: a finished scan of the SYNTHETIC demo mosaic
(``scan_support``'s fixed-weight detector), its windows opened in the Patch viewer in review-queue order, five of
them marked with the keys n / m / u in Chromium (the shortcut component clicks the buttons), each mark landing in
the label GeoPackage and the viewer moving to the next window of the queue by itself."""

from __future__ import annotations

import time

import pytest
from conftest import app_server, shot
from review_scenario import folders, mosaic
from ui_env import env_vars

pytestmark = pytest.mark.e2e


def test_mark_five_windows_with_the_keyboard(tmp_path, new_page):
    from scan_support import detector_run

    from asgm.data.labels import LabelStore
    from asgm.review import queue as review_queue
    from asgm.scan import driver
    from asgm.scan import results as scan_results

    page = new_page
    env = folders(tmp_path)
    with env_vars(env):
        run_id = detector_run()
        m, aoi = mosaic(tmp_path, size_px=400, n_mines=2, seed=1)
        options = driver.ScanOptions(source=str(m.path), tile_windows=8)
        driver.scan(aoi, 2022, run_id, scan_results.scans_dir() / "madre", options)
        q = review_queue.scan_queue("madre", "uncertain")
        expected = q.pending()[:6]
    keys = ["n", "n", "m", "u", "n"]
    labels = {"n": "not_mining", "m": "mining", "u": "unsure"}
    with app_server(env, tmp_path) as url:
        page.goto(f"{url}/Patch_viewer?scan=madre&window={expected[0]}")
        for k, (window, key) in enumerate(zip(expected, keys, strict=False)):
            page.get_by_text(f"window {window}", exact=False).first.wait_for()
            page.get_by_role("button", name="Not mining (n)").wait_for()
            page.wait_for_timeout(600)  # the shortcut component's script attaches after the buttons render
            page.get_by_role("heading", name="Patch viewer").click()  # focus the page, not a text box
            page.keyboard.press(key)
            with env_vars(env):
                deadline = time.monotonic() + 60
                while (rec := LabelStore().get(f"scan:madre:{window}")) is None:
                    assert time.monotonic() < deadline, f"key {key!r} did not mark window {window}"
                    time.sleep(0.3)
            assert rec["label"] == labels[key] and rec["via"] == "app" and rec["run_id"] == run_id
            page.wait_for_url(f"**window={expected[k + 1].replace(',', '%2C')}*", timeout=60_000)
        page.set_viewport_size({"width": 1400, "height": 1450})  # the review buttons in view
        page.get_by_role("button", name="Not mining (n)").wait_for()
        shot(page, "review-keyboard")
    with env_vars(env):
        store = LabelStore()
        assert len(store.current()) == 5 and len(store.history()) == 5
        assert review_queue.scan_queue("madre", "uncertain").done == 5


# -- the whole loop: scan, mark five false detections, train with my labels from the page, re-scan ----------
def test_mark_from_the_map_popup(ui_env, tmp_path, new_page):
    """The Map's popup buttons in Chromium: a click on "Not mining" in a patch point's popup reaches the page through
    streamlit-folium and lands in the label GeoPackage (via the app, with the selected run), and the side panel
    says so."""
    from browser_support import ISOLATED_MARKER_JS, click_marker, map_frame, wait_for_result

    from asgm.data.labels import LabelStore

    page = new_page
    env = {**ui_env.environ(), "ASGM_APP_AUTOPREPARE": "0"}
    gpkg = ui_env.data / "labels" / "labels.gpkg"
    gpkg.unlink(missing_ok=True)
    try:
        with app_server(env, tmp_path) as url:
            page.goto(f"{url}/Map?run={ui_env.demo_run}")
            frame = map_frame(page)
            marker = frame.evaluate(ISOLATED_MARKER_JS)
            assert marker and marker["clearance"] > 8, marker
            sid = marker["sid"]
            click_marker(page, frame, marker)
            wait_for_result(page, sid)  # the side panel follows the click; the popup stays the browser's
            button = frame.locator(f".asgm-popup[data-sid='{sid}'] button[data-label='not_mining']")
            if not button.is_visible():  # the rerun redrew the map: open the popup again
                click_marker(page, frame, frame.evaluate(ISOLATED_MARKER_JS))
            button.wait_for(timeout=10_000)
            button.click()
            with env_vars(env):
                deadline = time.monotonic() + 60
                while (rec := LabelStore().get(f"store:demo:{sid}")) is None:
                    assert time.monotonic() < deadline, f"the popup's button did not mark {sid}"
                    time.sleep(0.3)
            assert rec["label"] == "not_mining" and rec["via"] == "app" and rec["run_id"] == ui_env.demo_run
            page.get_by_text(f"{sid} marked not mining", exact=False).first.wait_for(timeout=30_000)
            shot(page, "review-map-popup")
    finally:
        gpkg.unlink(missing_ok=True)
