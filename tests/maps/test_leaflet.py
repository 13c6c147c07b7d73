"""The map builder without Streamlit: colours, local assets only, the patch footprint, the payload."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asgm.data.points import haversine_m
from asgm.grid import patch_grid
from asgm.maps import controls as map_controls
from asgm.maps import leaflet as maps_leaflet
from asgm.maps import overlays, point_layer

LOCAL_JS = [("leaflet", "/app/static/vendor/leaflet/leaflet.js"), ("jquery", "/app/static/vendor/jquery/jquery.min.js")]
LOCAL_CSS = [("leaflet_css", "/app/static/vendor/leaflet/leaflet.css")]


def _points() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": ["a-1", "a-2", "r-1"],
            "label": [1, 0, 0],
            "set": ["positives", "curated", "random"],
            "lon": [-63.0, -62.9, -62.8],
            "lat": [6.8, 6.9, 7.0],
            "has_patch": [True, True, False],
            "map_prob": [0.91, 0.12, np.nan],
            "outcome": ["TP", "TN", ""],
        }
    )


def test_probability_colours_follow_the_stops():
    assert point_layer.prob_colour(0.0) == point_layer.PROB_STOPS[0][1]
    assert point_layer.prob_colour(1.0) == point_layer.PROB_STOPS[-1][1]
    assert point_layer.prob_colour(0.5) == "#ffffbf"
    # halfway between the 0.5 and 0.75 stops: each channel halfway (ffffbf -> fdae61)
    assert point_layer.prob_colour(0.625) == "#fed690"
    assert point_layer.prob_colour(-3) == point_layer.prob_colour(0.0) and point_layer.prob_colour(
        7
    ) == point_layer.prob_colour(1.0)


def test_map_names_no_remote_asset_and_carries_every_control():
    m = maps_leaflet.build_map(
        _points(),
        colour_by="probability",
        store_name="demo",
        js=LOCAL_JS,
        css=LOCAL_CSS,
        threshold=0.4,
        fetch_hints=maps_leaflet.fetch_hints(),
    )
    assert maps_leaflet.external_assets(m) == []
    kinds = {type(el).__name__ for el in maps_leaflet._walk(m)}
    assert {
        "Fullscreen",
        "Draw",
        "LayerControl",
        "_ProbabilityPoints",
        "_MapLegend",
        "_BasemapFallback",
        "_PlainBackground",
    } <= kinds
    html = m.get_root().render()
    assert "L.control.scale" in html  # the scale bar
    for url in (
        "/app/static/plugins/leaflet-draw/leaflet.draw.js",
        "/app/static/plugins/leaflet-fullscreen/Control.FullScreen.js",
        "/app/static/plugins/leaflet-side-by-side/leaflet-side-by-side.js",
    ):
        assert url in html
    names = [getattr(el, "layer_name", "") for el in maps_leaflet._walk(m)]
    assert map_controls.PLAIN_NAME in names and "Satellite (Esri World Imagery)" in names and "OpenStreetMap" in names


def test_a_plugin_without_a_local_copy_is_refused():
    import folium.plugins

    m = maps_leaflet.build_map(_points(), colour_by="label", store_name="demo", js=LOCAL_JS, css=LOCAL_CSS)
    folium.plugins.MeasureControl().add_to(m)
    with pytest.raises(maps_leaflet.MapAssetError, match="leaflet-measure"):
        maps_leaflet.localize_assets(m, LOCAL_JS, LOCAL_CSS)
    import branca.colormap

    m2 = maps_leaflet.build_map(_points(), colour_by="label", store_name="demo", js=LOCAL_JS, css=LOCAL_CSS)
    branca.colormap.LinearColormap(["blue", "red"]).add_to(m2)
    assert any("d3" in u for u in maps_leaflet.external_assets(m2))


def test_payload_has_probabilities_and_fetch_hints():
    payload = point_layer.points_payload(_points(), "probability", "demo", maps_leaflet.fetch_hints())
    rows = {r[2]: r for r in payload["p"]}
    assert rows["a-1"][3] == 0.91 and rows["a-2"][3] == 0.12 and rows["r-1"][3] == -1
    assert rows["r-1"][4] == 0 and payload["h"][rows["r-1"][7]] == "asgm patches fetch --source stac --points random"
    assert [r[2] for r in payload["p"]][0] == "r-1"  # points without a patch drawn first (underneath)
    with pytest.raises(ValueError):
        point_layer.points_payload(_points(), "rainbow", "demo")


def test_footprint_is_the_patch_square_around_its_point():
    lon, lat = -61.55, 6.2  # UTM zone 20, 1.45 degrees east of its central meridian
    grid = patch_grid(lon, lat, 48)
    (s, w), (n, e) = overlays.footprint_latlon(grid)
    assert s < lat < n and w < lon < e
    # 48 px x 10 m = 480 m per side, to within the grid's small turn against north
    assert haversine_m(np.array([w]), np.array([lat]), np.float64(e), np.float64(lat))[0] == pytest.approx(480, abs=6)
    assert haversine_m(np.array([lon]), np.array([s]), np.float64(lon), np.float64(n))[0] == pytest.approx(480, abs=6)
    centre = ((s + n) / 2, (w + e) / 2)
    # the point is the centre of the centre pixel (half a pixel off the square's centre)
    assert haversine_m(np.array([centre[1]]), np.array([centre[0]]), np.float64(lon), np.float64(lat))[0] < 10


def test_patch_overlay_with_swipe_and_osm():
    from asgm.data.store import Patch
    from asgm.maps import overlays

    grid = patch_grid(-63.0, 6.8, 8)
    bands = ("B2", "B3", "B4", "B8", "B12")
    patch = Patch("x-1", 1, "positives", -63.0, 6.8, grid, np.full((5, 8, 8), 1500, np.uint16), bands)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, 3, :] = 1
    fg = overlays.patch_overlay(patch, (masks, ("highway", "waterway")), split=True)
    kinds = [type(c).__name__ for c in fg._children.values()]
    assert kinds.count("ImageOverlay") == 3 and "PatchSwipe" in kinds and "Rectangle" in kinds
    panes = [c.options.get("pane") for c in fg._children.values() if type(c).__name__ == "ImageOverlay"]
    assert panes == [map_controls.PATCH_PANE, map_controls.PATCH_PANE, map_controls.PATCH_PANE_RIGHT]
    rgb_only = Patch("x-2", 0, "curated", -63.0, 6.8, grid, np.full((3, 8, 8), 900, np.uint16), bands[:3])
    kinds = [type(c).__name__ for c in overlays.patch_overlay(rgb_only, None, split=True)._children.values()]
    assert kinds.count("ImageOverlay") == 1 and "PatchSwipe" not in kinds
    rgba = overlays.osm_rgba(masks, ("highway", "waterway"))
    assert rgba[3, 0, 3] > 0 and rgba[0, 0, 3] == 0


def test_osm_features_layer_colours_each_key_as_the_overlays_and_names_no_remote_asset():
    import geopandas as gpd
    from shapely.geometry import LineString, Point, box

    from asgm.maps import leaflet as maps_leaflet
    from asgm.maps import overlays
    from asgm.maps.images import OSM_COLOURS

    feats = gpd.GeoDataFrame(
        {"key": ["highway", "highway", "building", "aeroway"], "value": ["track", "path", "yes", "aerodrome"]},
        geometry=[
            LineString([(-63, 6.8), (-62.99, 6.81)]),
            LineString([(-63, 6.81), (-62.99, 6.8)]),
            box(-63.001, 6.801, -63.0, 6.802),
            Point(-63.0, 6.8),
        ],
        crs="EPSG:4326",
    )
    fg = overlays.osm_features_layer(feats, 2000)
    kids = {type(c).__name__: c for c in fg._children.values()}
    layer, legend = kids["_OsmFeatures"], kids["_OsmLegend"]
    assert [f["properties"]["key"] for f in layer.geojson["features"]] == list(feats["key"])
    assert layer.colours["waterway"] == "#{:02x}{:02x}{:02x}".format(*OSM_COLOURS["waterway"]) == "#1e90ff"
    for key, n in [("highway", 2), ("building", 1), ("aeroway", 1), ("waterway", 0), ("landuse", 0)]:
        assert f"data-key='{key}'" in legend.html and f"{key} ({n})" in legend.html
        assert overlays.osm_hex(key) in legend.html
    assert "within 2 km" in legend.html
    m = maps_leaflet.build_map(_points(), colour_by="label", store_name="demo", js=LOCAL_JS, css=LOCAL_CSS)
    fg.add_to(m)
    html = m.get_root().render()
    assert maps_leaflet.external_assets(m) == [] and "asgm-osm-legend" in html and '"aerodrome"' in html
    empty = overlays.osm_features_layer(feats.iloc[:0], 1000)
    assert "highway (0)" in next(c for c in empty._children.values() if type(c).__name__ == "_OsmLegend").html


def test_map_copies_share_the_point_data_and_render_it_verbatim():
    """The page deep-copies the cached map on every click: the copy shares the (read-only) point data, and
    the points' script reaches the page as written, not re-parsed as a Jinja template (which would also
    eat a sample id that looks like template syntax)."""
    import copy

    pts = _points()
    pts.loc[0, "sample_id"] = "a-{{ x }}"
    m = maps_leaflet.build_map(
        pts, colour_by="probability", store_name="demo", js=LOCAL_JS, css=LOCAL_CSS, threshold=0.4
    )
    layer = next(el for el in maps_leaflet._walk(m) if type(el).__name__ == "_ProbabilityPoints")
    c = copy.deepcopy(m)
    copied = next(el for el in maps_leaflet._walk(c) if type(el).__name__ == "_ProbabilityPoints")
    assert copied is not layer and copied.payload is layer.payload and copied.sample_ids is layer.sample_ids
    assert copied.get_name() == layer.get_name()
    html = c.get_root().render()
    assert '"a-{{ x }}"' in html and html.count('"a-{{ x }}"') == 1
    assert f"{layer.get_name()}.addTo(" in html  # still added to the map (Layer.render's statement)
    assert "a-{{ x }}" in m.get_root().render()  # the cached original renders the same
