"""Browser tests of what every page shares, in Chromium against a real ``streamlit run app.py``:

1. a deep link to any page (as a shared link opens it: a fresh browser, straight to ``/Map``) shows the app's
   own menu (``asgm.app.page.MENU``), not Streamlit's automatic list of the ``pages/`` files;
2. a page opened during the first start (the Map, while ``asgm demo prepare`` builds the demo store) says the
   store is being prepared and redraws itself when the job ends, with no reload; a click on it is then classified.
"""

from __future__ import annotations

import shutil
import socket

import pytest
from browser_support import isolated_marker
from conftest import app_server, click_marker, shot, wait_for_result

from asgm.app.page import MENU

pytestmark = pytest.mark.e2e

MENU_TITLES = [p.title for p in MENU]


def _sidebar_links(page) -> list[str]:
    page.locator('[data-testid="stSidebar"] a').first.wait_for()
    return [t.strip() for t in page.locator('[data-testid="stSidebar"] a').all_inner_texts() if t.strip()]


def test_every_deep_link_shows_the_apps_menu(ui_env, tmp_path, browser):
    env = {**ui_env.environ(), "ASGM_APP_AUTOPREPARE": "0"}
    with app_server(env, tmp_path) as url:
        for spec in MENU:
            link = f"{url}/{spec.url_path}" + ("?sample=cur-0001&store=demo" if spec.url_path == "Patch_viewer" else "")
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # a fresh browser per link
            try:
                page = ctx.new_page()
                page.set_default_timeout(90_000)
                page.goto(link)
                page.get_by_role(
                    "heading", name=spec.title if spec.title != "Home" else "ASGM Explorer"
                ).first.wait_for()
                links = _sidebar_links(page)
                assert links[: len(MENU)] == MENU_TITLES, (link, links)
                assert page.locator('[data-testid="stSidebarNav"]').count() == 0, link  # no automatic menu
            finally:
                ctx.close()


def test_the_map_opened_during_the_first_start_refreshes_when_the_store_is_ready(ui_env, tmp_path, new_page):
    page = new_page
    data, models = tmp_path / "data", tmp_path / "models"
    shutil.copytree(ui_env.models, models)  # a trained model exists: the first start only builds the demo store
    (models / "DEFAULT").write_text(ui_env.demo_run + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {
        "ASGM_DATA_DIR": str(data),
        "ASGM_MODELS_DIR": str(models),
        "ASGM_APP_AUTOPREPARE": "1",
        "ASGM_OVERPASS_URL": f"http://127.0.0.1:{closed}/api",  # offline: OSM is not fetched
    }
    with app_server(env, tmp_path) as url:
        page.goto(f"{url}/Map")  # the first page opened: it starts the preparation itself
        page.get_by_text("being prepared in the background").wait_for()
        assert page.get_by_text("This page refreshes when it ends").count() == 1
        assert not (data / "stores" / "demo" / "store.json").exists()
        shot(page, "map_during_first_start")
        # No reload: the page redraws itself when the demo store is there and the job ended.
        page.wait_for_function(
            "() => document.body.textContent.includes('with a patch in demo')"
            " && !document.body.textContent.includes('No patch store yet')",
            timeout=180_000,
            polling=250,
        )
        assert (data / "stores" / "demo" / "store.json").exists()
        page.get_by_text("This page refreshes when it ends").wait_for(state="detached", timeout=60_000)
        shot(page, "map_after_first_start")
        # ... and the first click on it is classified, in the popup and the side panel.
        frame, marker = isolated_marker(page)
        assert marker and marker["clearance"] > 8, marker
        click_marker(page, frame, marker)
        wait_for_result(page, marker["sid"])
        assert 0.0 <= float(page.get_by_test_id("stMetricValue").first.inner_text()) <= 1.0
