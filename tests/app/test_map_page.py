"""AppTest of the Map page's Python side: batched probabilities on the markers, the clicked patch drawn on
its footprint, the swipe, the area of interest. Expected values come from the core (asgm.maps.probabilities,
asgm.maps.leaflet), never from constants."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from ui_env import page, page_script

TIMEOUT = 120
MAP = page_script("Map")


def fake_map(monkeypatch, value: dict | None = None) -> list[dict]:
    """Replace st_folium with one returning ``value`` (what the browser would send); returns its calls."""
    import streamlit_folium

    calls: list[dict] = []

    def st_folium(fig, **kwargs):
        calls.append({"fig": fig, **kwargs})
        return dict(value or {})

    monkeypatch.setattr(streamlit_folium, "st_folium", st_folium)
    return calls


def click(sid: str) -> dict:
    return {
        "last_object_clicked_tooltip": f"{sid} · p 0.500",
        "last_object_clicked": {"lat": 0, "lng": 0},
        "last_clicked": {"lat": 0, "lng": 0},
    }


def run(**session) -> AppTest:
    at = AppTest.from_file(page(MAP), default_timeout=TIMEOUT)
    for k, v in session.items():
        at.session_state[k] = v
    return at.run()


def _points_layer(fig):
    from asgm.maps import leaflet

    return next(el for el in leaflet._walk(fig) if type(el).__name__ == "_ProbabilityPoints")


def test_markers_carry_the_runs_batched_probabilities(app_env, monkeypatch):
    from asgm.maps import leaflet
    from asgm.maps.probabilities import store_probabilities

    calls = fake_map(monkeypatch)
    at = run(run_id=app_env.demo_run)
    assert not at.exception, at.exception
    fig = calls[0]["fig"]
    assert leaflet.external_assets(fig) == []
    payload = _points_layer(fig).payload
    assert payload["mode"] == "probability"
    expected = store_probabilities(app_env.demo_run, "demo").set_index("sample_id")
    rows = {r[2]: r for r in payload["p"]}
    for sid, r in expected.iterrows():
        assert rows[sid][3] == pytest.approx(round(r["prob"], 4), abs=1e-4) and rows[sid][4] == 1
    no_patch = [r for r in payload["p"] if not r[4]]
    assert no_patch and all(r[3] == -1 for r in no_patch)
    assert "asgm patches fetch --source stac --points random" in payload["h"]
    legend = next(el for el in leaflet._walk(fig) if type(el).__name__ == "_MapLegend")
    assert f"decision threshold {expected.attrs['threshold']:.3f}" in legend.html
    assert calls[0]["feature_group_to_add"] is None  # nothing clicked yet
    # label colouring is one click away
    next(r for r in at.radio if r.label == "Colour").set_value("label").run()
    assert not at.exception and _points_layer(calls[-1]["fig"]).payload["mode"] == "label"


def test_click_shows_the_same_probability_and_draws_the_patch_in_place(app_env, monkeypatch):
    from asgm.data.store import PatchStore
    from asgm.maps import overlays as maps_overlays
    from asgm.maps.probabilities import store_probabilities

    sid = "egp-0007"
    calls = fake_map(monkeypatch, click(sid))
    at = run(run_id=app_env.demo_run)
    assert not at.exception, at.exception
    expected = store_probabilities(app_env.demo_run, "demo").set_index("sample_id").loc[sid]
    prob = next(m for m in at.metric if m.label == "Probability of mining")
    assert prob.value == f"{expected['prob']:.3f}"
    assert at.session_state["map_sid"] == sid
    # In the browser the click reaches session state before the rerun; here the next run draws it.
    at.run()
    fg = calls[-1]["feature_group_to_add"][0]  # the patch; then the OSM features when the store has them
    assert fg is not None and calls[-1]["pixelated"] is True
    overlays = [c for c in fg._children.values() if type(c).__name__ == "ImageOverlay"]
    patch = PatchStore.open("demo").read_patch(sid)
    assert overlays and overlays[0].bounds == maps_overlays.footprint_latlon(patch.grid)
    assert overlays[0].url.startswith("data:image/png;base64,")
    (s, w), (n, e) = overlays[0].bounds
    assert s < patch.lat < n and w < patch.lon < e


def test_swipe_and_osm_overlay_on_a_store_with_the_bands(app_env, monkeypatch):
    from asgm.maps import leaflet

    calls = fake_map(monkeypatch, click("pos-0003"))
    at = run(run_id=app_env.osm_run)  # trained on the 12-band toy store with OSM masks
    assert not at.exception, at.exception
    assert any("synthetic" in w.value for w in at.warning)
    at.run()
    fg = calls[-1]["feature_group_to_add"][0]  # the patch; then the OSM features when the store has them
    kinds = [type(c).__name__ for c in fg._children.values()]
    assert kinds.count("ImageOverlay") == 3 and "PatchSwipe" in kinds  # true colour, OSM, false colour
    swipe = next(c for c in fg._children.values() if type(c).__name__ == "PatchSwipe")
    assert all(url.startswith(leaflet.PLUGIN_URL) for _, url in swipe.default_js)
    next(t for t in at.toggle if t.label.startswith("Swipe")).set_value(False).run()
    kinds = [type(c).__name__ for c in calls[-1]["feature_group_to_add"][0]._children.values()]
    assert "PatchSwipe" not in kinds and kinds.count("ImageOverlay") == 2


def test_a_drawn_area_becomes_the_aoi(app_env, monkeypatch):
    square = {
        "type": "Feature",
        "properties": {},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[-63.0, 6.8], [-62.9, 6.8], [-62.9, 6.9], [-63.0, 6.9], [-63.0, 6.8]]],
        },
    }
    fake_map(monkeypatch, {"all_drawings": [square]})
    at = run(run_id=app_env.demo_run)
    assert not at.exception, at.exception
    aoi = at.session_state["aoi"]
    assert aoi["type"] == "FeatureCollection" and aoi["features"] == [square]
    from pyproj import Geod
    from shapely.geometry import shape

    km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(shape(square["geometry"]))[0]) / 1e6
    assert any(f"Area of interest: 1 shape(s), {km2:,.1f} km²" in c.value for c in at.caption)
    assert any("Scan this area" in m.value for m in at.markdown)  # the link to the Region scan page


def test_run_that_cannot_classify_the_store_still_shows_the_map(app_env, monkeypatch):
    calls = fake_map(monkeypatch)
    at = run(run_id=app_env.osm_run)
    next(s for s in at.selectbox if s.label == "Patch store").set_value("demo").run()
    assert not at.exception, at.exception
    assert any("cannot classify this store" in w.value for w in at.warning)
    payload = _points_layer(calls[-1]["fig"]).payload
    assert payload["mode"] != "probability" and all(r[3] == -1 for r in payload["p"])
    from asgm.data.store import PatchStore

    assert set(PatchStore.open("demo").sample_ids()) <= {r[2] for r in payload["p"] if r[4]}


def test_osm_features_around_the_clicked_patch_with_a_legend_per_key(empty_env, monkeypatch):
    from asgm.data.store import PatchStore
    from asgm.maps import leaflet
    from asgm.osm.nearby import features_around
    from asgm.sources import synthetic

    synthetic.build_store("syn", n_pos=2, n_neg=2, seed=3)  # writes its OSM vectors too
    sid = "syn-pos-0000"
    calls = fake_map(monkeypatch, click(sid))
    at = run()
    assert not at.exception, at.exception
    toggle = next(t for t in at.toggle if t.label == "OSM features around the clicked patch")
    assert toggle.value is True  # on: the store has OSM
    at.run()
    groups = calls[-1]["feature_group_to_add"]
    assert isinstance(groups, list) and len(groups) == 2
    osm = {type(c).__name__: c for c in groups[1]._children.values()}
    store = PatchStore.open("syn")
    row = store.index().set_index("sample_id").loc[sid]
    expected = features_around(store, float(row["lon"]), float(row["lat"]), 2000.0)
    assert len(expected) and len(osm["_OsmFeatures"].geojson["features"]) == len(expected)
    counts = expected["key"].value_counts()
    for key in ("highway", "waterway", "building", "landuse", "aeroway"):
        assert f"{key} ({int(counts.get(key, 0))})" in osm["_OsmLegend"].html
    assert leaflet.external_assets(groups[1]) == []
    assert any("OSM features within 2 km drawn on the map" in c.value for c in at.caption)
    toggle = next(t for t in at.toggle if t.label == "OSM features around the clicked patch")
    toggle.set_value(False).run()
    assert not at.exception and len(calls[-1]["feature_group_to_add"]) == 1  # the patch only


def test_a_store_without_osm_says_so_and_draws_the_patch_only(app_env, monkeypatch):
    calls = fake_map(monkeypatch, click("egp-0007"))
    at = run(run_id=app_env.demo_run)
    assert not at.exception, at.exception
    toggle = next(t for t in at.toggle if t.label == "OSM features around the clicked patch")
    assert toggle.value is False and toggle.disabled
    assert any("has no cached OSM features" in i.value and "asgm osm fetch --store demo" in i.value for i in at.info)
    at.run()
    assert len(calls[-1]["feature_group_to_add"]) == 1


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("random bytes", "is corrupt"),
        ("47 px", "47x47 px, the store holds 48x48 px"),
        ("12 bands", "12 bands, the store holds 3"),
    ],
)
def test_clicking_an_unreadable_patch_is_one_line(app_env, monkeypatch, tmp_path, damage, expected):
    """A click on a patch whose file is damaged shows what is wrong in the panel (the Patch viewer does the
    same) with what to mend: the patch, not the run; the map and the page stay up."""
    import shutil

    import numpy as np
    import rasterio

    sid = "egp-0007"
    data = tmp_path / "data"
    shutil.copytree(app_env.data / "stores" / "demo", data / "stores" / "demo")
    monkeypatch.setenv("ASGM_DATA_DIR", str(data))
    from asgm.data.store import PatchStore

    path = PatchStore.open("demo").patch_path(sid)
    if damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:  # a file of another size or band count, with the store's bands first
        with rasterio.open(path) as src:
            size = 47 if damage == "47 px" else src.width
            bands = src.descriptions + (() if damage == "47 px" else tuple(f"X{i}" for i in range(9)))
            profile = {**src.profile, "width": size, "height": size, "count": len(bands)}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((len(bands), size, size), 900, np.uint16))
            for i, b in enumerate(bands, start=1):
                dst.set_band_description(i, b)
    fake_map(monkeypatch, click(sid))
    at = run(run_id=app_env.demo_run)
    at.run()  # the click's patch drawn in this run too
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors and all(sid in e for e in errors), errors
    assert any(expected in e for e in errors), errors
    for e in errors:
        message = e.split("\n\n**What to do:**")[0]
        assert "\n" not in message and "Traceback" not in e, e
        assert "Retrain" not in e and "patches check --store demo" in e, e  # the patch is what to mend
    assert not any(m.label == "Probability of mining" for m in at.metric)
