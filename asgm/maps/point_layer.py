"""The Map's labelled points: the probability colour ramp (the same rule in Python and in the browser), the compact
per-point data and the one canvas layer the browser draws from it, with tooltips and popups."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd
from folium.elements import ElementAddToElement

from asgm.data.labels import LABELS
from asgm.maps.elements import _ScriptLayer, _Text
from asgm.maps.images import (
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
COLOUR_MODES = ("probability", "label", "outcome")
#: A mark from the popup reaches the page as streamlit-folium's ``last_object_clicked_popup``:
#: ``"asgm-mark|<sample_id>|<label>|<time ms>"`` (the time makes a repeated click a new value).
MARK_PREFIX = "asgm-mark"


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
        "marks": [[label, label.replace("_", " ").capitalize()] for label in LABELS],
    }


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
  // streamlit-folium sends its returned values on a map move; the mark rides in last_object_clicked_popup.
  window.asgmMark = function (button) {
    var gd = window.__GLOBAL_DATA__, m = window.map || map_div;
    if (!gd) return;
    var sid = button.closest('.asgm-popup').getAttribute('data-sid'), label = button.getAttribute('data-label');
    gd.last_object_clicked_popup = '"""
        + MARK_PREFIX
        + """|' + sid + '|' + label + '|' + Date.now();
    m.fire('moveend');
    m.closePopup();
  };
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
    if (q[4] && d.marks.length) {
      html += '<div class="asgm-marks">Mark: ';
      for (var k = 0; k < d.marks.length; k++) {
        html += '<button type="button" class="asgm-mark" data-label="' + d.marks[k][0] +
                '" onclick="asgmMark(this)">' + d.marks[k][1] + '</button> ';
      }
      html += '</div>';
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
    true label, or for a point without a patch how to get one; no Python round trip. A point with a patch also
    gets mining / not mining / unsure buttons: a click sends ``MARK_PREFIX|sid|label|time`` back through
    streamlit-folium, and the page writes it (``asgm.app.map_panel.take_click``). Points without a patch
    are hollow rings. Why not folium markers or GeoJSON: they cost 0.2-3 s of Python rendering on every
    rerun; the markers must exist when the map script ends (st_folium binds its click handler then)."""
    payload = points_payload(points, colour_by, store_name, fetch_hints)
    payload["threshold"] = None if threshold is None else float(threshold)
    layer = _ProbabilityPoints(name, overlay=True, show=True, data_js=json.dumps(payload, separators=(",", ":")))
    layer.sample_ids = [r[2] for r in payload["p"]]
    layer.payload = payload
    return layer
