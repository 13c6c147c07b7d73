"""GeoJSON layers the browser fetches from static URLs (their polygons never pass through a rerun): the reference
layers, and the detections of the chosen periods coloured by period, with their legend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asgm.maps.controls import swatch_legend
from asgm.maps.elements import _ScriptLayer


class _RemoteGeoJson(_ScriptLayer):
    kind = "RemoteGeoJson"
    script = """
var {{ this.get_name() }} = L.geoJSON(null, {
  interactive: false,
  style: function () { return {color: {{ this.colour|tojson }}, weight: 1, fillColor: {{ this.colour|tojson }}, fillOpacity: {{ this.fill_opacity }}}; },
  pointToLayer: function (f, latlng) {
    return L.circleMarker(latlng, {radius: {{ this.radius }}, color: {{ this.colour|tojson }}, fillOpacity: 0.7, weight: 1, interactive: false});
  }
});
fetch({{ this.url|tojson }}).then(function (r) { return r.json(); })
  .then(function (d) { {{ this.get_name() }}.addData(d); })
  .catch(function (e) { console.warn("reference layer unavailable: " + {{ this.url|tojson }}, e); });
"""  # noqa: E501


def remote_geojson_layer(
    url: str, name: str, colour: str, show: bool = True, point_radius: int = 2, fill_opacity: float = 0.25
) -> Any:
    """A reference layer the browser fetches from a static URL (its ~0.5 MB never pass through Python on a
    rerun), listed in the layer control; not clickable."""
    return _RemoteGeoJson(
        name,
        overlay=True,
        show=show,
        url=url,
        colour=colour,
        radius=int(point_radius),
        fill_opacity=float(fill_opacity),
    )


class _PeriodGeoJson(_ScriptLayer):
    kind = "PeriodGeoJson"
    script = """
var {{ this.get_name() }} = L.geoJSON(null, {
  style: function (f) {
    var c = {{ this.colours|tojson }}[f.properties.period] || "#999999";
    return {color: c, weight: 1, fillColor: c, fillOpacity: 0.6};
  },
  onEachFeature: function (f, layer) {
    var p = f.properties;
    layer.bindPopup("<div class='asgm-period-popup'><b>" + {{ this.what|tojson }} + "</b><br>period " + p.period +
                    (p.mined_ha === null || p.mined_ha === undefined ? "" : "<br>mined area " + p.mined_ha + " ha") +
                    "<br>detected footprint " + p.footprint_ha + " ha" + (p.scan ? "<br>scan " + p.scan : "") +
                    "<br><small>" + {{ this.credit|tojson }} + "</small><br><i>Beside the map: where to open it in the Patch viewer</i></div>");
    // Opening a popup stops the click, so the map never hears it: pass it on, so streamlit-folium returns the
    // clicked place and the page shows the detection's panel.
    layer.on("click", function (e) { if (layer._map) { layer._map.fire("click", {latlng: e.latlng}); } });
  }
});
Promise.all({{ this.urls|tojson }}.map(function (u) { return fetch(u).then(function (r) { return r.json(); }); }))
  .then(function (ds) {
    var n = 0;
    ds.forEach(function (d) { {{ this.get_name() }}.addData(d); n += d.features.length; });
    window.asgmPeriodLayer = {features: n, drawnAt: performance.now()};
  })
  .catch(function (e) { console.warn("period layer unavailable", e); });
"""  # noqa: E501


def period_layer(
    urls: Sequence[str],
    name: str,
    colours: Mapping[str, str],
    what: str = "AMW detection",
    credit: str = "Earth Genome, Amazon Mining Watch, CC BY 4.0",
) -> Any:
    """Detections of one or more periods fetched by the browser from ``urls`` (GeoJSON with ``period``,
    ``mined_ha`` (null: none), ``footprint_ha``, optionally ``scan``), coloured by period; a click opens a popup
    (``what``, the period, the areas, ``credit``). When drawn it sets ``window.asgmPeriodLayer`` (feature count,
    time) for browser tests and benchmarks."""
    return _PeriodGeoJson(
        name, overlay=True, show=True, urls=list(urls), colours=dict(colours), what=what, credit=credit
    )


def period_legend(colours: Mapping[str, str], title: str) -> Any:
    """The period layer's legend: one swatch per period shown."""
    return swatch_legend(title, colours)


#: One colour per AMW period (viridis-like, early = dark, recent = bright).
PERIOD_COLOURS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725")
