"""The Map's elements for folium/leafmap: the probability colour ramp, the labelled points (one canvas layer
drawn by the browser, with tooltips and popups), remote GeoJSON layers, the plain offline background and its
automatic fallback, the panes of the clicked patch and the legend. Each element is a small class whose
JavaScript the browser runs; ``asgm.maps.leaflet`` puts them on a map."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd
from branca.element import Element, MacroElement
from folium.elements import ElementAddToElement
from folium.map import Layer
from jinja2 import Template

from asgm.maps.images import (
    LABEL_COLOURS,
    OUTCOME_COLOURS,
    point_colour,
)

#: Colour ramp of the probability of mining (ColorBrewer RdYlBu, reversed): blue = unlikely, red = likely.
PROB_STOPS: tuple[tuple[float, str], ...] = (
    (0.0, "#2c7bb6"),
    (0.25, "#abd9e9"),
    (0.5, "#ffffbf"),
    (0.75, "#fdae61"),
    (1.0, "#d7191c"),
)
NO_PATCH_COLOUR = "#555555"
#: leafmap basemap keys offered online, with their names in the layer control.
BASEMAPS: tuple[tuple[str, str], ...] = (
    ("SATELLITE", "Satellite (Esri World Imagery)"),
    ("OpenStreetMap", "OpenStreetMap"),
    ("OpenTopoMap", "Topographic (OpenTopoMap)"),
)
PLAIN_NAME = "Plain background (offline)"
#: Map pane of the clicked patch: above the basemap (200), below points and polygons (400).
PATCH_PANE, PATCH_PANE_RIGHT = "asgmPatch", "asgmPatchRight"
COLOUR_MODES = ("probability", "label", "outcome")


# -- colours --------------------------------------------------------------------------------------
def prob_colour(p: float) -> str:
    """Hex colour of a probability on ``PROB_STOPS`` (linear in RGB between stops; the browser uses the
    same rule, see ``_RAMP_JS``)."""
    p = min(1.0, max(0.0, float(p)))
    for (a, ca), (b, cb) in zip(PROB_STOPS, PROB_STOPS[1:], strict=False):
        if p <= b:
            t = (p - a) / (b - a)
            rgb = [
                round(int(ca[i : i + 2], 16) + t * (int(cb[i : i + 2], 16) - int(ca[i : i + 2], 16))) for i in (1, 3, 5)
            ]
            return "#" + "".join(f"{v:02x}" for v in rgb)
    return PROB_STOPS[-1][1]


_RAMP_JS = """function (p, stops) {
  p = Math.max(0, Math.min(1, p));
  for (var i = 1; i < stops.length; i++) {
    if (p <= stops[i][0]) {
      var a = stops[i - 1], b = stops[i], t = (p - a[0]) / (b[0] - a[0]), out = '#';
      for (var k = 1; k < 7; k += 2) {
        var x = parseInt(a[1].substr(k, 2), 16), y = parseInt(b[1].substr(k, 2), 16);
        var v = Math.round(x + t * (y - x)).toString(16);
        out += v.length < 2 ? '0' + v : v;
      }
      return out;
    }
  }
  return stops[stops.length - 1][1];
}"""


# -- map elements -----------------------------------------------------------------------------------
class _FromScript:
    """Builds a map element's Jinja template from the class's ``script`` (with ``this``) and sets the keyword
    attributes. The template is a class attribute, as in folium: the page deep-copies the cached map on every
    rerun, and a copied Jinja template loses its macros."""

    script = ""
    kind = "Script"
    _template: Template

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls._template = Template("{% macro script(this, kwargs) %}" + cls.script + "{% endmacro %}")

    def _set(self, attrs: dict[str, Any]) -> None:
        self._name = self.kind
        for k, v in attrs.items():
            setattr(self, k, v)


class _Script(_FromScript, MacroElement):
    """A map element whose script is the class's ``script``."""

    def __init__(self, **attrs: Any):
        MacroElement.__init__(self)
        self._set(attrs)


class _ScriptLayer(_FromScript, Layer):
    """A folium ``Layer`` (listed in the layer control) whose script defines ``var <name>``."""

    def __init__(self, layer_name: str, overlay: bool, show: bool, **attrs: Any):
        Layer.__init__(self, name=layer_name, overlay=overlay, show=show)
        self._set(attrs)


def points_payload(
    points: pd.DataFrame, colour_by: str, store_name: str | None, fetch_hints: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Compact per-point data for the browser: one ``[lat, lon, sample_id, prob (-1: none), has_patch, label,
    colour index, hint index]`` row per point, a colour table for label/outcome colouring, and the
    "how to get a patch" hints by point set. Points with a patch come last, so they are drawn on top."""
    if colour_by not in COLOUR_MODES:
        raise ValueError(f"colour_by must be one of {COLOUR_MODES}, got {colour_by!r}")
    if "has_patch" in points:
        points = points.sort_values("has_patch", kind="stable")
    colours: list[str] = []
    hints: list[str] = []
    rows = []
    fetch_hints = fetch_hints or {}
    for row in points.to_dict("records"):
        c = point_colour(row, "outcome" if colour_by == "outcome" else "label")
        if c not in colours:
            colours.append(c)
        hint = fetch_hints.get(str(row.get("set")), "")
        if hint not in hints:
            hints.append(hint)
        p = row.get("map_prob")
        prob = round(float(p), 4) if p is not None and not pd.isna(p) else -1
        rows.append(
            [
                round(float(row["lat"]), 5),
                round(float(row["lon"]), 5),
                str(row["sample_id"]),
                prob,
                int(bool(row.get("has_patch"))),
                int(row["label"]),
                colours.index(c),
                hints.index(hint),
            ]
        )
    return {
        "mode": colour_by,
        "c": colours,
        "h": hints,
        "p": rows,
        "stops": [list(s) for s in PROB_STOPS],
        "store": store_name or "",
    }


class _Text(Element):
    """Text placed in a figure as it is (``Element(text)`` would parse it as a Jinja template)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text.removesuffix("\n")  # as Jinja renders a template: without its last newline


class _ProbabilityPoints(_ScriptLayer):
    kind = "ProbabilityPoints"
    sample_ids: list[str]
    payload: dict[str, Any]
    #: Read-only after ``points_layer`` built them, so copies share them.
    _SHARED = ("payload", "sample_ids", "data_js")

    def render(self, **kwargs: Any) -> Any:
        """``Layer.render`` (the "add to the map" statement, then the script) without branca compiling this
        layer's rendered script, ~80 KB of point data, as a Jinja template once more: ``MacroElement.render``
        wraps each macro's output in ``Element(text)``, which parses it; that was ~15-25 ms of every click."""
        parent, figure, macros = cast(Any, self._parent), cast(Any, self.get_root()), cast(Any, self._template.module)
        if self.show:
            self.add_child(
                ElementAddToElement(element_name=self.get_name(), element_parent_name=parent.get_name()),
                name=self.get_name() + "_add",
            )
        figure.script.add_child(_Text(macros.script(self, kwargs)), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> _ProbabilityPoints:
        """A copy sharing the point data: the page deep-copies the cached map on every click, and copying
        one list per point (~13,000 objects for the study's points) was most of that copy's time."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = v if k in self._SHARED else copy.deepcopy(v, memo)
        return new

    script = (
        """
var {{ this.get_name() }} = (function (d) {
  var ramp = """
        + _RAMP_JS
        + """;
  var g = L.featureGroup();
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; }); }
  function popup(q) {
    var truth = q[5] ? 'mining' : 'not mining';
    var html = '<div class="asgm-popup" data-sid="' + esc(q[2]) + '"><b>' + esc(q[2]) + '</b><br>';
    if (!q[4]) {
      html += '<span class="asgm-nopatch">No patch in store <code>' + esc(d.store || '(none)') + '</code>.</span><br>' +
              (d.h[q[7]] ? 'Get one: <code>' + esc(d.h[q[7]]) + '</code>' : 'None can be fetched for this point.') +
              '<br>true label: ' + truth;
    } else if (q[3] < 0) {
      html += 'Patch in store <code>' + esc(d.store) + '</code>; no probability from the selected run.<br>true label: ' + truth;
    } else {
      var word = d.threshold === null ? '' : (q[3] >= d.threshold ? 'mining' : 'not mining');
      html += 'Probability of mining: <b class="asgm-prob">' + q[3].toFixed(3) + '</b>' +
              (word ? '<br>decision at ' + d.threshold.toFixed(3) + ': <b>' + word + '</b>' : '') +
              '<br>true label: ' + truth;
    }
    if (q[4]) {
      html += '<br><a href="#" class="asgm-zoom" onclick="(window.map || map_div).setView([' + q[0] + ',' + q[1] +
              '], 15); return false;">zoom to the patch</a>';
    }
    return html + '</div>';
  }
  for (var i = 0; i < d.p.length; i++) {
    var q = d.p[i];
    var c = (d.mode === 'probability' && q[3] >= 0) ? ramp(q[3], d.stops) : (d.mode === 'probability' ? '"""  # noqa: E501
        + NO_PATCH_COLOUR
        + """' : d.c[q[6]]);
    var tip = q[2] + (q[4] ? (q[3] >= 0 ? ' \u00b7 p ' + q[3].toFixed(3) : '') : ' \u00b7 no patch');
    var opts = q[4] ? {radius: 5, color: '#222', weight: 0.6, fillColor: c, fillOpacity: 0.9}
                    : {radius: 3, color: c, weight: 1.2, fill: false, dashArray: '2,2'};
    opts.sid = q[2];
    opts.prob = q[3];
    var mk = L.circleMarker([q[0], q[1]], opts).bindTooltip(tip);
    mk.bindPopup((function (row) { return function () { return popup(row); }; })(q), {autoPan: false});
    mk.addTo(g);
  }
  return g;
})({{ this.data_js }});
"""
    )


def points_layer(
    points: pd.DataFrame,
    colour_by: str,
    store_name: str | None,
    threshold: float | None = None,
    fetch_hints: Mapping[str, str] | None = None,
    name: str = "Labelled points",
) -> Any:
    """The points as canvas circle markers built in the browser from compact inline data.

    Each marker's tooltip reads ``<sample_id> · p 0.873`` (or ``· no patch``): streamlit-folium returns the
    clicked marker's tooltip text, and its first word maps the click back to a patch. The popup, built by the
    browser when the marker is clicked, shows the probability, the decision at the run's threshold and the
    true label, or for a point without a patch how to get one; no Python round trip. Points without a patch
    are hollow rings. Why not folium markers or GeoJSON: they cost 0.2-3 s of Python rendering on every
    rerun; the markers must exist when the map script ends (st_folium binds its click handler then)."""
    payload = points_payload(points, colour_by, store_name, fetch_hints)
    payload["threshold"] = None if threshold is None else float(threshold)
    layer = _ProbabilityPoints(name, overlay=True, show=True, data_js=json.dumps(payload, separators=(",", ":")))
    layer.sample_ids = [r[2] for r in payload["p"]]
    layer.payload = payload
    return layer


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


class _PlainBackground(_ScriptLayer):
    kind = "PlainBackground"
    script = "var {{ this.get_name() }} = L.layerGroup();"


def basemap_layers(online_default: bool) -> list[Any]:
    """The plain background and leafmap's online basemaps as base layers (radio buttons). Fresh TileLayer
    objects: leafmap's catalogue holds shared instances, and a layer belongs to one map."""
    import folium
    import leafmap.foliumap as lf

    plain = _PlainBackground(PLAIN_NAME, overlay=False, show=not online_default)
    layers: list[Any] = [plain]
    for i, (key, label) in enumerate(BASEMAPS):
        src = lf.basemaps[key]
        layers.append(
            folium.TileLayer(
                tiles=src.tiles,
                attr=src.options.get("attribution") or label,
                name=label,
                overlay=False,
                show=online_default and i == 0,
                max_zoom=19,
                max_native_zoom=18,
            )
        )
    return layers


class _BasemapFallback(_Script):
    kind = "BasemapFallback"
    script = """
(function (map, plain, bases) {
  var note = L.control({position: 'bottomleft'});
  note.onAdd = function () {
    var div = L.DomUtil.create('div', 'asgm-offline-note');
    div.style.cssText = 'background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif;border-radius:3px';
    div.innerHTML = 'Basemap tiles cannot load here (offline?): plain background.';
    return div;
  };
  bases.forEach(function (b) {
    b.on('tileerror', function () {
      if (!map.hasLayer(b)) { return; }
      map.removeLayer(b);
      if (!map.hasLayer(plain)) { plain.addTo(map); }
      if (!note._map) { note.addTo(map); }
      window.asgmBasemapFallback = true;
    });
    b.on('tileload', function () { if (note._map) { note.remove(); } });
  });
})({{ this._parent.get_name() }}, {{ this.plain.get_name() }}, [{% for b in this.online %}{{ b.get_name() }}{% if not loop.last %}, {% endif %}{% endfor %}]);
"""  # noqa: E501


def basemap_fallback(plain: Any, online: Sequence[Any]) -> Any:
    """Browser-side: when tiles of the shown online basemap fail to load (offline), switch to the plain
    background and say so on the map; the user can pick a basemap again in the layer control."""
    return _BasemapFallback(plain=plain, online=list(online))


class _PatchPanes(_Script):
    kind = "PatchPanes"
    script = """
(function (map) {
  [[{{ this.left|tojson }}, 350], [{{ this.right|tojson }}, 351]].forEach(function (p) {
    if (!map.getPane(p[0])) { map.createPane(p[0]).style.zIndex = p[1]; }
  });
})({{ this._parent.get_name() }});
"""


def patch_panes() -> Any:
    """Map panes for the clicked patch: above the basemap, below the points (which stay clickable)."""
    return _PatchPanes(left=PATCH_PANE, right=PATCH_PANE_RIGHT)


class _MapLegend(_Script):
    kind = "MapLegend"
    script = """
(function (map) {
  var c = L.control({position: 'bottomright'});
  c.onAdd = function () {
    var div = L.DomUtil.create('div', 'asgm-legend');
    div.style.cssText = 'background:rgba(255,255,255,.9);padding:5px 8px;font:12px sans-serif;border-radius:4px;line-height:1.5';
    div.innerHTML = {{ this.html|tojson }};
    return div;
  };
  c.addTo(map);
})({{ this._parent.get_name() }});
"""  # noqa: E501


def legend_control(
    colour_by: str, threshold: float | None = None, title: str = "Probability of mining", extra_html: str | None = None
) -> Any:
    """The legend as a Leaflet control (bottom right): the colour bar with the run's threshold for
    probability colouring, colour swatches for label/outcome, and the ring of points without a patch
    (``extra_html`` in its place when given: a map without points)."""
    ring = (
        f"<div><span style='display:inline-block;width:9px;height:9px;border:1.5px dashed {NO_PATCH_COLOUR};"
        "border-radius:50%;margin-right:4px'></span>no patch in the store (click: how to get one)</div>"
    )
    if colour_by == "probability":
        grad = ", ".join(f"{c} {p * 100:.0f}%" for p, c in PROB_STOPS)
        tick = (
            ""
            if threshold is None
            else f"<div class='asgm-threshold' style='position:absolute;left:{threshold * 100:.1f}%;top:-2px;height:16px;"  # noqa: E501
            f"border-left:2px solid #000' title='decision threshold {threshold:.3f}'></div>"
        )
        body = (
            f"<b>{title}</b><div class='asgm-colourbar' style='position:relative;width:180px;height:12px;"
            f"margin:3px 0;background:linear-gradient(to right, {grad});border:1px solid #777'>{tick}</div>"
            "<div style='display:flex;justify-content:space-between;width:182px'><span>0</span><span>0.5</span>"
            "<span>1</span></div>"
            + ("" if threshold is None else f"<div>black tick: decision threshold {threshold:.3f}</div>")
        )
    elif colour_by == "outcome":
        items = [
            ("TP", "mining, found"),
            ("TN", "not mining, rejected"),
            ("FP", "false alarm"),
            ("FN", "missed mining"),
            ("", "not in the run's val/test"),
        ]
        body = "<b>Outcome of the run</b>" + "".join(_swatch(OUTCOME_COLOURS[k], v) for k, v in items)
    else:
        body = (
            "<b>True label</b>" + _swatch(LABEL_COLOURS[1], "mining (1)") + _swatch(LABEL_COLOURS[0], "not mining (0)")
        )
    html = body + (ring if extra_html is None else extra_html)
    return _MapLegend(html=html)


def _swatch(colour: str, text: str) -> str:
    return (
        f"<div><span style='display:inline-block;width:10px;height:10px;background:{colour};border-radius:50%;"
        f"margin-right:4px'></span>{text}</div>"
    )


def swatch_legend(title: str, colours: Mapping[str, str], extra_html: str = "") -> Any:
    """A legend control of colour swatches (``colours``: label -> colour) under ``title``."""
    return _MapLegend(html=f"<b>{title}</b>" + "".join(_swatch(c, k) for k, c in colours.items()) + extra_html)


def html_legend(html: str) -> Any:
    """A legend control (bottom right) holding ``html``."""
    return _MapLegend(html=html)


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
