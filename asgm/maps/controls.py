"""The map's furniture: the plain offline background, leafmap's online basemaps and the automatic fallback to the
plain one offline, the panes of the clicked patch, and the legends (the probability bar, colour swatches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asgm.maps.elements import _Script, _ScriptLayer
from asgm.maps.images import LABEL_COLOURS, OUTCOME_COLOURS
from asgm.maps.point_layer import NO_PATCH_COLOUR, PROB_STOPS

#: leafmap basemap keys offered online, with their names in the layer control.
BASEMAPS: tuple[tuple[str, str], ...] = (
    ("SATELLITE", "Satellite (Esri World Imagery)"),
    ("OpenStreetMap", "OpenStreetMap"),
    ("OpenTopoMap", "Topographic (OpenTopoMap)"),
)
PLAIN_NAME = "Plain background (offline)"
#: Map pane of the clicked patch: above the basemap (200), below points and polygons (400).
PATCH_PANE, PATCH_PANE_RIGHT = "asgmPatch", "asgmPatchRight"


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
