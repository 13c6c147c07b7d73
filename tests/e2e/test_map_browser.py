"""The Map page in a real browser with no network: the probability pops up in the browser on a marker click,
the side panel follows with the same number, the patch is drawn on the map, and nothing but basemap tiles
was asked of the internet (every other request is to the app itself)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from conftest import ISOLATED_MARKER_JS, app_server, click_marker, click_patch_zoomed, map_frame, shot, wait_for_result

pytestmark = pytest.mark.e2e

TILE_HOSTS = ("server.arcgisonline.com", "tile.openstreetmap.org", "tile.opentopomap.org")


def test_marker_click_popup_then_panel_offline(ui_env, tmp_path, new_page):
    from ui_env import env_vars

    from asgm.maps.probabilities import store_probabilities

    page = new_page
    remote: list[str] = []

    def no_network(route):  # the machine has no network anyway; this makes the test say so on any machine
        remote.append(route.request.url)
        return route.abort("internetdisconnected")

    # Only requests leaving this machine are routed (through Python); the app's own go straight through.
    page.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])"), no_network)
    with env_vars(ui_env.environ()):
        expected = store_probabilities(ui_env.demo_run, "demo").set_index("sample_id")
    with app_server({**ui_env.environ(), "ASGM_APP_AUTOPREPARE": "0"}, tmp_path) as url:
        page.goto(f"{url}/Map?run={ui_env.demo_run}")
        frame = map_frame(page)
        frame.wait_for_function("() => window.asgmBasemapFallback === true")  # tiles failed: plain background
        frame.get_by_text("Basemap tiles cannot load here").wait_for()
        marker = frame.evaluate(ISOLATED_MARKER_JS)
        assert marker and marker["clearance"] > 8, marker
        want = f"{expected.loc[marker['sid'], 'prob']:.3f}"
        click_marker(page, frame, marker)
        popup = frame.locator(f".asgm-popup[data-sid='{marker['sid']}'] .asgm-prob")
        popup.wait_for(timeout=5_000)  # the browser's own popup: no Python round trip
        assert popup.inner_text() == want
        wait_for_result(page, marker["sid"])
        assert page.get_by_test_id("stMetricValue").first.inner_text() == want
        frame.wait_for_function("() => document.querySelectorAll('img.leaflet-image-layer').length >= 1")
        bounds = frame.evaluate("""() => { let b = null; map_div.eachLayer(l => { if (l instanceof L.ImageOverlay) {
                                      b = l.getBounds(); } }); return b && [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]; }""")  # noqa: E501
        shot(page, "map_popup_panel")
    from asgm.data.store import PatchStore

    patch = PatchStore.open("demo", root=ui_env.data / "stores").read_patch(marker["sid"])
    s, w, n, e = bounds
    assert s < patch.lat < n and w < patch.lon < e
    assert all(urlparse(u).hostname.endswith(TILE_HOSTS) for u in remote), [u for u in remote if "tile" not in u]
    assert not [
        u
        for u in page.failed_requests
        if urlparse(u).hostname not in ("127.0.0.1",) and not urlparse(u).hostname.endswith(TILE_HOSTS)
    ]


def test_swipe_between_true_and_false_colour_offline(ui_env, tmp_path, new_page):
    """On a store with B12/B8/B4 the clicked patch is drawn twice on its footprint, true colour left of the
    swipe and false colour right of it, with the vendored leaflet-side-by-side (no network)."""
    page = new_page
    page.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])"), lambda route: route.abort("internetdisconnected"))
    with app_server({**ui_env.environ(), "ASGM_APP_AUTOPREPARE": "0"}, tmp_path) as url:
        page.goto(f"{url}/Map?run={ui_env.osm_run}")  # trained on the 12-band toy store, the default store here
        frame = map_frame(page)
        sid = "pos-0003"
        click_patch_zoomed(page, frame, sid, 16)  # its footprint large, the marker at the map's centre
        wait_for_result(page, sid)
        frame.wait_for_function(
            "() => !!window.asgmSwipe && document.querySelectorAll('img.leaflet-image-layer').length >= 3"
        )
        clips = frame.evaluate(
            "() => [map_div.getPane('asgmPatch').style.clip, map_div.getPane('asgmPatchRight').style.clip]"
        )
        assert all(c.startswith("rect(") for c in clips), clips
        left_right = frame.evaluate(
            "() => { const r = document.querySelector('.leaflet-sbs-range'); return r && r.value; }"
        )
        assert left_right == "0.5"
        shot(page, "map_swipe")
    assert not [
        u
        for u in page.failed_requests
        if urlparse(u).hostname not in ("127.0.0.1",) and not urlparse(u).hostname.endswith(TILE_HOSTS)
    ]


def test_osm_features_around_the_clicked_patch_offline(tmp_path, new_page):
    """On a store with OSM vectors, a click draws the cached features around the patch in the browser, one
    colour per key, with a legend counting them per key; nothing is asked of the internet but tiles."""
    import os

    from ui_env import env_vars

    from asgm.osm.nearby import features_around
    from asgm.sources import synthetic

    env = {
        "ASGM_DATA_DIR": str(tmp_path / "data"),
        "ASGM_MODELS_DIR": str(tmp_path / "models"),
        "ASGM_APP_AUTOPREPARE": "0",
        "ASGM_DATA_MIRROR": os.environ.get("ASGM_DATA_MIRROR", ""),
    }
    with env_vars(env):
        store = synthetic.build_store("syn", n_pos=2, n_neg=2, seed=3)
        sid = "syn-pos-0000"
        row = store.index().set_index("sample_id").loc[sid]
        expected = features_around(store, float(row["lon"]), float(row["lat"]), 2000.0)
    assert len(expected)
    page = new_page
    page.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])"), lambda route: route.abort("internetdisconnected"))
    with app_server(env, tmp_path) as url:
        page.goto(f"{url}/Map")
        frame = map_frame(page)
        click_patch_zoomed(page, frame, sid, 15)
        page.get_by_text("OSM features within 2 km drawn on the map").wait_for()
        frame.locator(".asgm-osm-legend").wait_for()
        legend = frame.locator(".asgm-osm-legend").inner_text()
        drawn = frame.evaluate("""() => { let n = 0; map_div.eachLayer(l => { if (l instanceof L.GeoJSON && l.options
                                    && l.options.interactive === false && l.getLayers().length && l.getLayers()[0].feature
                                    && l.getLayers()[0].feature.properties.key) { n += l.getLayers().length; } }); return n; }""")  # noqa: E501
        shot(page, "map_osm_features")
    counts = expected["key"].value_counts()
    for key in ("highway", "waterway", "building", "landuse", "aeroway"):
        assert f"{key} ({int(counts.get(key, 0))})" in legend
    assert drawn == len(expected)
    assert not [
        u
        for u in page.failed_requests
        if urlparse(u).hostname not in ("127.0.0.1",) and not urlparse(u).hostname.endswith(TILE_HOSTS)
    ]
