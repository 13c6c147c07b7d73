"""The Map page's map: ``leafmap.foliumap`` with every browser asset served locally.

What the analyst gets: basemaps to pick (satellite / OpenStreetMap / topographic online, a plain background
chosen automatically when tiles cannot load), a layer control, the labelled points coloured by the selected
run's probability (continuous scale, colour bar) with the probability in each marker's tooltip and in a popup
the browser opens by itself on click, a legend, a draw control for an area of interest, a scale bar,
fullscreen, and the clicked patch drawn on its exact footprint (true colour, OSM overlays), optionally as a
swipe between true and false colour.

No CDN at run time: Leaflet and jQuery come from the xstatic packages (``static/vendor``); the Leaflet plugins
folium/leafmap would fetch (fullscreen, draw, side-by-side) are vendored from npm under ``static/plugins``
(see its README); ``localize_assets`` swaps them in and refuses a map that still names a remote asset. The
colour bar and legend are plain HTML controls: branca's colormap would make streamlit-folium load d3 from a
CDN. No streamlit here; the page places what these functions return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from branca.element import MacroElement

from asgm.errors import AsgmError
from asgm.maps.controls import (
    basemap_fallback,
    basemap_layers,
    html_legend,
    legend_control,
    patch_panes,
    swatch_legend,
)
from asgm.maps.point_layer import points_layer, prob_colour
from asgm.maps.vector_layers import remote_geojson_layer

#: URL prefix of ``static/plugins`` (Streamlit static serving).
PLUGIN_URL = "/app/static/plugins"
#: Local replacements of the assets folium's plugins name, by plugin class name.
PLUGIN_ASSETS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "Fullscreen": {
        "js": [("Control.Fullscreen.js", f"{PLUGIN_URL}/leaflet-fullscreen/Control.FullScreen.js")],
        "css": [("Control.FullScreen.css", f"{PLUGIN_URL}/leaflet-fullscreen/Control.FullScreen.css")],
    },
    "Draw": {
        "js": [("leaflet_draw_js", f"{PLUGIN_URL}/leaflet-draw/leaflet.draw.js")],
        "css": [("leaflet_draw_css", f"{PLUGIN_URL}/leaflet-draw/leaflet.draw.css")],
    },
    "SideBySideLayers": {
        "js": [("leaflet.sidebyside", f"{PLUGIN_URL}/leaflet-side-by-side/leaflet-side-by-side.js")],
        "css": [("leaflet.sidebyside_css", f"{PLUGIN_URL}/leaflet-side-by-side/leaflet-side-by-side.css")],
    },
}


class MapAssetError(AsgmError):
    """The map would load something from the internet; the message names it."""


# -- assets -----------------------------------------------------------------------------------------
def _walk(element: Any) -> Any:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def external_assets(m: Any) -> list[str]:
    """Remote URLs the browser would load for map ``m`` through streamlit-folium (scripts and stylesheets of
    every element, and the d3 it adds for any branca colormap)."""
    import branca.colormap

    urls: list[str] = []
    for el in _walk(m):
        if isinstance(el, branca.colormap.ColorMap):
            urls.append("d3 (streamlit-folium adds it from a CDN for branca colormaps)")
        for _, url in [*getattr(el, "default_js", []), *getattr(el, "default_css", [])]:
            if "://" in url or url.startswith("//"):
                urls.append(url)
    return list(dict.fromkeys(urls))


def localize_assets(m: Any, js: Sequence[tuple[str, str]], css: Sequence[tuple[str, str]]) -> Any:
    """Point the map at local Leaflet/jQuery (``js``/``css``) and its plugins at ``PLUGIN_ASSETS``; raise
    ``MapAssetError`` when anything remote is left (a plugin added without a local copy)."""
    m.default_js, m.default_css = list(js), list(css)
    for el in _walk(m):
        local = PLUGIN_ASSETS.get(type(el).__name__)
        if local is not None:
            el.default_js, el.default_css = list(local["js"]), list(local["css"])
    remote = external_assets(m)
    if remote:
        raise MapAssetError(
            f"the map would load {remote} from the internet; vendor it under static/plugins "
            "(see its README) and add it to asgm.maps.leaflet.PLUGIN_ASSETS"
        )
    return m


def fetch_hints(source: str | None = None) -> dict[str, str]:
    """The command that fetches patches for each of the study's point sets (shown in the popup of a point
    without a patch): Earth Engine when its credentials are configured, else Earth Search (STAC)."""
    from asgm.data.points import STUDY_SETS

    src = "gee" if source == "gee" else "stac"
    return {s: f"asgm patches fetch --source {src} --points {s}" for s in STUDY_SETS}


def plugin_assets() -> Any:
    """An element that only carries the plugin assets patch overlays may need later (the swipe): streamlit-folium
    loads scripts once, when the map is first drawn, not when a feature group is added."""
    from folium.elements import JSCSSMixin

    class PluginAssets(JSCSSMixin, MacroElement):
        default_js = list(PLUGIN_ASSETS["SideBySideLayers"]["js"])
        default_css = list(PLUGIN_ASSETS["SideBySideLayers"]["css"])

    return PluginAssets()


def _base_map(center: Sequence[float], zoom: int, online_basemap: bool) -> Any:
    """A ``leafmap.foliumap.Map`` with the basemaps (the first shown) and the offline fallback, no other
    control than the scale bar: what every map of the app starts from."""
    import leafmap.foliumap as lf

    m = lf.Map(
        center=list(center),
        zoom=zoom,
        tiles=None,
        prefer_canvas=True,
        scale_control=True,
        fullscreen_control=False,
        draw_control=False,
        measure_control=False,
        max_zoom=19,
    )
    bases = basemap_layers(online_basemap)
    for b in bases:
        b.add_to(m)
    basemap_fallback(bases[0], bases[1:]).add_to(m)
    return m


def build_map(
    points: pd.DataFrame,
    *,
    colour_by: str,
    store_name: str | None,
    js: Sequence[tuple[str, str]],
    css: Sequence[tuple[str, str]],
    threshold: float | None = None,
    reference_layers: Sequence[tuple[str, str, str, bool, float]] = (),
    fetch_hints: Mapping[str, str] | None = None,
    online_basemap: bool = True,
    center: tuple[float, float] | None = None,
    zoom: int = 7,
    extra_layers: Sequence[Any] = (),
) -> Any:
    """The whole map for the Map page: a ``leafmap.foliumap.Map`` with basemaps (+ offline fallback), the
    reference layers (``(url, name, colour, shown, fill_opacity)``), ``extra_layers`` (folium elements, e.g. the
    period layer of AMW's detections), the points, legend, layer control,
    draw control (polygon/rectangle: the area of interest), scale bar and fullscreen; assets local."""
    import folium
    import folium.plugins

    if center is None:
        center = (
            (
                (float(points["lat"].min()) + float(points["lat"].max())) / 2,
                (float(points["lon"].min()) + float(points["lon"].max())) / 2,
            )
            if len(points)
            else (6.8, -63.0)
        )
    m = _base_map(center, zoom, online_basemap)
    folium.plugins.Fullscreen(position="topleft", title="Full screen", title_cancel="Leave full screen").add_to(m)
    patch_panes().add_to(m)
    for url, name, colour, shown, fill in reference_layers:
        remote_geojson_layer(url, name, colour, show=shown, fill_opacity=fill).add_to(m)
    for layer in extra_layers:
        layer.add_to(m)
    points_layer(points, colour_by, store_name, threshold, fetch_hints).add_to(m)
    legend_control(colour_by, threshold).add_to(m)
    folium.plugins.Draw(
        export=False,
        position="topleft",
        draw_options={
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
            "polygon": {"allowIntersection": False, "showArea": True},
            "rectangle": {"showArea": True},
        },
        edit_options={"edit": True, "remove": True},
    ).add_to(m)
    plugin_assets().add_to(m)
    m.add_layer_control()
    return localize_assets(m, js, css)


# -- region scans (the Scan page) ------------------------------------------------------------------------
#: Colours of the change classes (new / gone / persistent / unknown) of two scans.
CHANGE_COLOURS = {"new": "#d7191c", "gone": "#2c7bb6", "persistent": "#fdae61", "unknown": "#999999"}
AOI_COLOUR = "#222222"


def scan_map(
    polygons: Any,
    aoi: Any,
    *,
    js: Sequence[tuple[str, str]],
    css: Sequence[tuple[str, str]],
    threshold: float | None = None,
    change: bool = False,
    synthetic: bool = False,
    online_basemap: bool = True,
) -> Any:
    """A region scan's map: basemaps (+ offline fallback), the AOI outline, and ``polygons`` (EPSG:4326)
    coloured by ``max_prob`` on the probability ramp with a colour bar (``threshold``: the scan's high
    threshold, ticked) — or, with ``change``, by their ``change`` class with a legend. Each polygon's
    tooltip starts with its id (what a click returns). Assets local, fitted to the AOI."""
    import folium
    from shapely.geometry import mapping

    w, s, e, n = aoi.bounds
    m = _base_map(((s + n) / 2, (w + e) / 2), 12, online_basemap)
    folium.GeoJson(
        mapping(aoi),
        name="Area of interest",
        interactive=False,
        style_function=lambda _f: {"color": AOI_COLOUR, "weight": 2, "dashArray": "6 4", "fill": False},
    ).add_to(m)
    fields = ["id", "change", "area_ha", "max_prob"] if change else ["id", "area_ha", "max_prob", "mean_prob"]
    data = json.loads(polygons[[*fields, "geometry"]].to_json(drop_id=True)) if len(polygons) else None
    if data is not None:

        def style(f: dict) -> dict:
            p = f["properties"]
            c = CHANGE_COLOURS.get(p.get("change"), "#999999") if change else prob_colour(p.get("max_prob") or 0.0)
            return {"color": c, "weight": 2, "fillColor": c, "fillOpacity": 0.55}

        folium.GeoJson(
            data,
            name="Change" if change else "Detections",
            style_function=style,
            highlight_function=lambda _f: {"weight": 4},
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=fields, sticky=False),
        ).add_to(m)
    note = "<div><b>SYNTHETIC imagery</b> (not a real place)</div>" if synthetic else ""
    aoi_line = (
        f"<div><span style='display:inline-block;width:14px;border-top:2px dashed {AOI_COLOUR};"
        "margin:0 5px 3px 0'></span>area of interest</div>"
    )
    if change:
        swatch_legend("Change between the scans", CHANGE_COLOURS, aoi_line + note).add_to(m)
    else:
        legend_control(
            "probability", threshold, title="Detection: highest window probability", extra_html=aoi_line + note
        ).add_to(m)
    m.fit_bounds([[s, w], [n, e]])
    m.add_layer_control()
    return localize_assets(m, js, css)


# -- place statistics (the Places page) ------------------------------------------------------------------
#: Classes of mining area per place (ha), ColorBrewer YlOrRd: the areas span five orders of magnitude.
AREA_CLASSES: tuple[tuple[float, str], ...] = (
    (0.0, "#f0f0f0"),
    (1.0, "#ffffb2"),
    (10.0, "#fecc5c"),
    (100.0, "#fd8d3c"),
    (1000.0, "#f03b20"),
    (10000.0, "#bd0026"),
)
SELECTED_COLOUR = "#0571b0"


def area_colour(ha: float | None) -> str:
    """The class colour of an area in ha (0 or missing: grey)."""
    colour = AREA_CLASSES[0][1]
    for lower, c in AREA_CLASSES[1:]:
        if ha is not None and ha == ha and ha >= lower:
            colour = c
    return colour


def places_map(
    places: Any,
    value: str,
    title: str,
    *,
    js: Sequence[tuple[str, str]],
    css: Sequence[tuple[str, str]],
    selected: str | None = None,
    credit: str = "",
    online_basemap: bool = True,
) -> Any:
    """A choropleth of ``places`` (EPSG:4326 with ``boundary_id``, ``name`` and the column ``value`` in ha)
    in area classes with a legend; ``selected`` outlined. A polygon's tooltip starts with its ``boundary_id``
    (what a click returns). Fitted to the places; assets local."""
    import folium

    w, s, e, n = places.total_bounds
    m = _base_map(((s + n) / 2, (w + e) / 2), 5, online_basemap)
    fields = ["boundary_id", "name", value]
    data = json.loads(places[[*fields, "geometry"]].to_json(drop_id=True, na="null"))

    def style(f: dict) -> dict:
        p = f["properties"]
        chosen = p["boundary_id"] == selected
        return {
            "color": SELECTED_COLOUR if chosen else "#555555",
            "weight": 3 if chosen else 0.6,
            "fillColor": area_colour(p.get(value)),
            "fillOpacity": 0.75,
        }

    folium.GeoJson(
        data,
        name=title,
        style_function=style,
        highlight_function=lambda _f: {"weight": 3},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=["id", "name", title], sticky=False),
    ).add_to(m)
    labels = ["0"] + [f"≥ {lo:,.0f} ha" for lo, _ in AREA_CLASSES[1:]]
    body = f"<b>{title}</b>" + "".join(
        f"<div><span style='display:inline-block;width:12px;height:10px;background:{c};border:1px solid #999;"
        f"margin-right:4px'></span>{t}</div>"
        for (_, c), t in zip(AREA_CLASSES, labels, strict=True)
    )
    body += (
        f"<div><span style='display:inline-block;width:12px;border-top:3px solid {SELECTED_COLOUR};"
        "margin-right:4px'></span>selected place</div>"
    )
    if credit:
        body += f"<div style='max-width:220px;font-size:10px'>{credit}</div>"
    html_legend(body).add_to(m)
    m.fit_bounds([[s, w], [n, e]])
    m.add_layer_control()
    return localize_assets(m, js, css)
