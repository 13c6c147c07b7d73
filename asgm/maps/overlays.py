"""The clicked patch on the map (its footprint, true/false colour, OSM overlays, swipe) and the OSM
features around it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from asgm.maps.controls import PATCH_PANE, PATCH_PANE_RIGHT
from asgm.maps.elements import _Script, _ScriptLayer
from asgm.maps.images import (
    OSM_COLOURS,
    false_colour,
    to_png,
    true_colour,
)
from asgm.maps.leaflet import PLUGIN_ASSETS


# -- the clicked patch on the map -------------------------------------------------------------------
def footprint_latlon(grid: Any) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of a patch grid in EPSG:4326 (Leaflet bounds). The UTM square is
    turned by the grid convergence (< 0.5° in Bolívar), under a metre per 100 m: within a pixel of a 48-px patch."""
    from pyproj import Transformer

    west, south, east, north = grid.bounds
    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lons, lats = tr.transform(np.array([west, east, east, west]), np.array([south, south, north, north]))
    return [[float(np.min(lats)), float(np.min(lons))], [float(np.max(lats)), float(np.max(lons))]]


def _data_url(img: np.ndarray) -> str:
    """PNG data URL of an (H, W, 3|4) image in [0, 1] at its own size (the map scales it, pixelated)."""
    return "data:image/png;base64," + base64.b64encode(to_png(img, size=int(img.shape[0]))).decode("ascii")


def osm_rgba(masks: np.ndarray, layers: Sequence[str], alpha: float = 0.75) -> np.ndarray:
    """(H, W, 4) image of the OSM masks, each layer in its colour, transparent where no layer is."""
    out = np.zeros((*masks.shape[1:], 4), dtype=np.float32)
    for i, layer in enumerate(layers):
        if i >= masks.shape[0]:
            break
        on = masks[i] > 0
        out[on, :3] = np.array(OSM_COLOURS.get(layer, (255, 255, 255)), dtype=np.float32) / 255.0
        out[on, 3] = alpha
    return out


def patch_overlay(patch: Any, osm: tuple[np.ndarray, Sequence[str]] | None = None, split: bool = False) -> Any:
    """A feature group drawing one patch on its footprint: true colour, OSM masks (when given), the footprint
    outline; with ``split`` and the bands for it, a swipe between true colour (left) and false colour
    B12-B8-B4 (right). streamlit-folium adds it to the live map without rebuilding the map."""
    import folium

    bounds = footprint_latlon(patch.grid)
    fg = folium.FeatureGroup(name=f"Patch {patch.sample_id}", overlay=True, control=False)
    rgb = true_colour(patch.data, patch.bands)
    left = None
    if rgb is not None:
        left = folium.raster_layers.ImageOverlay(
            _data_url(rgb), bounds, name="true colour", pane=PATCH_PANE, pixelated=False, control=False
        )
        left.add_to(fg)
    if osm is not None:
        folium.raster_layers.ImageOverlay(
            _data_url(osm_rgba(osm[0], osm[1])), bounds, name="OSM", pane=PATCH_PANE, pixelated=False, control=False
        ).add_to(fg)
    fc = false_colour(patch.data, patch.bands) if split else None
    if fc is not None and left is not None:
        right = folium.raster_layers.ImageOverlay(
            _data_url(fc), bounds, name="false colour", pane=PATCH_PANE_RIGHT, pixelated=False, control=False
        )
        right.add_to(fg)
        swipe_control(left, right).add_to(fg)
    folium.Rectangle(bounds, color="#ffffff", weight=2, fill=False, dash_array="4,3", interactive=False).add_to(fg)
    return fg


def swipe_control(left: Any, right: Any) -> Any:
    """leaflet-side-by-side between two image overlays of the patch. The plugin clips a layer's container,
    which image overlays lack, so each side clips its own map pane; the control goes with its layers."""
    from folium.plugins import SideBySideLayers

    class PatchSwipe(SideBySideLayers):
        left_pane: str
        right_pane: str
        _template = SideBySideLayers._template.__class__("""
{% macro script(this, kwargs) %}
(function (map, l, r) {
  l.getContainer = function () { return map.getPane({{ this.left_pane|tojson }}); };
  r.getContainer = function () { return map.getPane({{ this.right_pane|tojson }}); };
  var c = L.control.sideBySide(l, r).addTo(map);
  var stop = function () { c.remove(); map.off('layerremove', check); };
  var check = function (e) { if (e.layer === l || e.layer === r) { stop(); } };
  map.on('layerremove', check);
  window.asgmSwipe = c;
})({{ this._parent._parent.get_name() }}, {{ this.layer_left.get_name() }}, {{ this.layer_right.get_name() }});
{% endmacro %}
""")

    el = PatchSwipe(left, right)
    el.left_pane, el.right_pane = PATCH_PANE, PATCH_PANE_RIGHT
    el.default_js, el.default_css = (
        list(PLUGIN_ASSETS["SideBySideLayers"]["js"]),
        list(PLUGIN_ASSETS["SideBySideLayers"]["css"]),
    )
    return el


# -- OSM features around the clicked patch ------------------------------------------------------------
def osm_hex(key: str) -> str:
    """The colour of OSM key ``key`` as on the patch overlays (``asgm.maps.images.OSM_COLOURS``), as ``#rrggbb``."""
    return "#" + "".join(f"{v:02x}" for v in OSM_COLOURS.get(key, (255, 255, 255)))


class _OsmFeatures(_ScriptLayer):
    kind = "OsmFeatures"
    geojson: dict[str, Any]
    script = """
var {{ this.get_name() }} = L.geoJSON({{ this.data_js }}, {
  interactive: false,
  style: function (f) { var c = {{ this.colours|tojson }}[f.properties.key] || '#ffffff';
    return {color: c, weight: 2, opacity: 0.95, fillColor: c, fillOpacity: 0.3}; },
  pointToLayer: function (f, latlng) { var c = {{ this.colours|tojson }}[f.properties.key] || '#ffffff';
    return L.circleMarker(latlng, {radius: 4, color: '#333', weight: 1, fillColor: c, fillOpacity: 0.9, interactive: false}); }
});
"""  # noqa: E501


class _OsmLegend(_Script):
    kind = "OsmLegend"
    script = """
(function (map, layer) {
  var c = L.control({position: 'bottomleft'});
  c.onAdd = function () {
    var div = L.DomUtil.create('div', 'asgm-osm-legend');
    div.style.cssText = 'background:rgba(255,255,255,.9);padding:5px 8px;font:12px sans-serif;border-radius:4px;line-height:1.5';
    div.innerHTML = {{ this.html|tojson }};
    return div;
  };
  c.addTo(map);
  var check = function (e) { if (e.layer === layer) { c.remove(); map.off('layerremove', check); } };
  map.on('layerremove', check);
})({{ this._parent._parent.get_name() }}, {{ this.layer.get_name() }});
"""  # noqa: E501


def osm_legend_html(features: pd.DataFrame, radius_m: float, keys: Sequence[str]) -> str:
    """The OSM legend: one line per key with its colour and how many features of it are drawn."""
    counts = features["key"].value_counts() if len(features) else pd.Series(dtype=int)
    lines = "".join(
        f"<div class='asgm-osm-key' data-key='{k}'><span style='display:inline-block;width:14px;height:4px;"
        f"background:{osm_hex(k)};border:1px solid #555;margin:0 5px 2px 0;vertical-align:middle'></span>"
        f"{k} ({int(counts.get(k, 0))})</div>"
        for k in keys
    )
    return f"<b>OSM within {radius_m / 1000:g} km</b>{lines}<div style='color:#555'>© OpenStreetMap contributors</div>"


def osm_features_layer(
    features: Any, radius_m: float, keys: Sequence[str] | None = None, name: str = "OSM features"
) -> Any:
    """A feature group drawing OSM features (``asgm.osm.nearby.features_around``: ``key``, ``value``,
    geometry in EPSG:4326) in their key's colour, not clickable (the points stay clickable), with a legend per
    key that goes when the group is removed (the next click)."""
    import folium

    from asgm.config import OSM_LAYERS

    keys = list(keys or OSM_LAYERS)
    fg = folium.FeatureGroup(name=name, overlay=True, control=False)
    data = (
        json.loads(features[["key", "value", "geometry"]].to_json())
        if len(features)
        else {"type": "FeatureCollection", "features": []}
    )
    layer = _OsmFeatures(
        name,
        overlay=True,
        show=True,
        data_js=json.dumps(data, separators=(",", ":")),
        colours={k: osm_hex(k) for k in keys},
    )
    layer.geojson = data
    layer.add_to(fg)
    _OsmLegend(html=osm_legend_html(features, radius_m, keys), layer=layer).add_to(fg)
    return fg


#: Colours of reviewed labels on the map.
LABEL_COLOURS = {"mining": "#d62728", "not_mining": "#1f77b4", "unsure": "#9e9e9e"}


def labels_layer(rows: Sequence[dict[str, Any]], name: str = "Reviewed labels") -> Any:
    """A feature group of reviewed items (current rows of ``asgm.data.labels.LabelStore``), one ring per item in
    its label's colour, with the label, note and reviewer as tooltip."""
    import folium

    fg = folium.FeatureGroup(name=name, overlay=True, control=False)
    for r in rows:
        colour = LABEL_COLOURS.get(str(r["label"]), "#000000")
        tip = (
            f"{r['label']} · {r['item']}"
            + (f" · {r['note']}" if r.get("note") else "")
            + (f" · by {r['reviewer']}" if r.get("reviewer") else "")
        )
        folium.CircleMarker(
            [float(r["lat"]), float(r["lon"])], radius=9, color=colour, weight=3, fill=False, tooltip=tip
        ).add_to(fg)
    return fg
