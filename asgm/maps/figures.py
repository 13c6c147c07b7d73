"""Pictures of the data and the runs: patch composites, OSM and Grad-CAM overlays, folium layers, plotly figures.

Pure functions (numpy / folium / plotly in, images / maps / figures out) so they can be tested without a
browser; the pages only place what these return. No streamlit and no TensorFlow here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from asgm.config import OSM_LAYERS

#: One colour per OSM layer (RGB 0-255), used for the overlays and their legends alike.
OSM_COLOURS: dict[str, tuple[int, int, int]] = {
    "highway": (255, 215, 0),
    "waterway": (30, 144, 255),
    "building": (255, 64, 160),
    "landuse": (50, 205, 50),
    "aeroway": (255, 255, 255),
}
LABEL_COLOURS = {1: "#d7301f", 0: "#2b8cbe"}
#: Colours of prediction outcomes on the map (true/false positive/negative).
OUTCOME_COLOURS = {"TP": "#d7301f", "TN": "#2b8cbe", "FP": "#ff7f00", "FN": "#984ea3", "": "#7f7f7f"}
#: Display stretch of the study: DN / 3000 clipped to [0, 1].
DISPLAY_DN = 3000.0
FALSE_COLOUR_BANDS = ("B12", "B8", "B4")


# -- patch images --------------------------------------------------------------------------------
def composite(data: np.ndarray, bands: Sequence[str], use: Sequence[str], scale: float = DISPLAY_DN) -> np.ndarray | None:
    """(H, W, 3) float image in [0, 1] of the bands ``use`` from a (bands, H, W) DN array, or None
    when the patch lacks one of them (e.g. false colour on the RGB-only demo pack)."""
    if not all(b in bands for b in use):
        return None
    idx = [list(bands).index(b) for b in use]
    return np.clip(data[idx].transpose(1, 2, 0).astype(np.float32) / scale, 0.0, 1.0)


def true_colour(data: np.ndarray, bands: Sequence[str]) -> np.ndarray | None:
    """B4-B3-B2 composite."""
    return composite(data, bands, ("B4", "B3", "B2"))


def false_colour(data: np.ndarray, bands: Sequence[str]) -> np.ndarray | None:
    """B12-B8-B4 composite (bare soil and water stand out); None without those bands."""
    # SWIR is brighter than visible light, so stretch it less.
    return composite(data, bands, FALSE_COLOUR_BANDS, scale=5000.0)


def overlay_osm(img: np.ndarray, masks: np.ndarray | None, layers: Sequence[str], visible: Iterable[str],
                alpha: float = 0.65) -> np.ndarray:
    """Blend the visible OSM masks (layers, H, W) onto an (H, W, 3) image, each in its layer colour."""
    out = img.astype(np.float32).copy()
    if masks is None:
        return out
    visible = set(visible)
    for i, layer in enumerate(layers):
        if layer not in visible or i >= masks.shape[0]:
            continue
        m = masks[i] > 0
        colour = np.array(OSM_COLOURS.get(layer, (255, 255, 255)), dtype=np.float32) / 255.0
        out[m] = (1 - alpha) * out[m] + alpha * colour
    return out


def overlay_heatmap(img: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a (H, W) map in [0, 1] (Grad-CAM) onto an image with a black-red-yellow ramp."""
    h = np.clip(np.nan_to_num(heat.astype(np.float32)), 0, 1)
    if h.shape != img.shape[:2]:  # Grad-CAM comes at the last conv layer's resolution
        ys = (np.arange(img.shape[0]) * h.shape[0] / img.shape[0]).astype(int)
        xs = (np.arange(img.shape[1]) * h.shape[1] / img.shape[1]).astype(int)
        h = h[ys][:, xs]
    ramp = np.stack([np.clip(h * 2, 0, 1), np.clip(h * 2 - 1, 0, 1), np.zeros_like(h)], axis=-1)
    a = alpha * h[..., None]
    return np.clip((1 - a) * img + a * ramp, 0, 1)


def mark_centre(img: np.ndarray) -> np.ndarray:
    """Draw a small cross on the centre pixel (the labelled point) so users see what was labelled."""
    out = img.copy()
    n, m = out.shape[:2]
    r, c = n // 2, m // 2
    for d in (-2, -1, 1, 2):
        for rr, cc in ((r + d, c), (r, c + d)):
            if 0 <= rr < n and 0 <= cc < m:
                out[rr, cc] = (1.0, 1.0, 1.0)
    return out


def to_png(img: np.ndarray, size: int = 240) -> bytes:
    """PNG bytes of an (H, W, 3) image in [0, 1], enlarged with nearest neighbour (pixels stay pixels)."""
    from PIL import Image

    arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    pil = Image.fromarray(arr).resize((size, size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def legend_html(layers: Sequence[str]) -> str:
    """Small HTML legend of OSM overlay colours."""
    items = [
        f"<span style='display:inline-block;width:10px;height:10px;background:rgb{OSM_COLOURS[x]};"
        f"border:1px solid #555;margin-right:3px'></span>{x}"
        for x in layers if x in OSM_COLOURS
    ]
    return " &nbsp; ".join(items)


# -- folium maps ---------------------------------------------------------------------------------
def base_map(center: tuple[float, float] = (6.8, -63.0), zoom: int = 7, tiles: bool = False,
             js: Sequence[tuple[str, str]] | None = None, css: Sequence[tuple[str, str]] | None = None):
    """A folium map with canvas rendering; offline-safe by default (no tile layer, plain background).

    ``js`` / ``css`` replace folium's CDN assets (Leaflet, jQuery) with locally served copies.
    """
    import folium

    m = folium.Map(location=list(center), zoom_start=zoom, tiles=None, prefer_canvas=True, control_scale=True)
    if js is not None:
        m.default_js = list(js)
    if css is not None:
        m.default_css = list(css)
    if tiles:
        folium.TileLayer(
            tiles="https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
            attr="Esri World Imagery", name="Satellite (online)",
        ).add_to(m)
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap (online)", show=False).add_to(m)
    return m


def point_colour(row: Mapping[str, Any], colour_by: str) -> str:
    """Marker colour of one point: by true label, or by outcome of the selected run."""
    if colour_by == "outcome":
        return OUTCOME_COLOURS.get(str(row.get("outcome") or ""), OUTCOME_COLOURS[""])
    return LABEL_COLOURS.get(int(row["label"]), "#7f7f7f")


def _macro_element():
    from branca.element import MacroElement

    return MacroElement


def points_compact(points: pd.DataFrame, colour_by: str = "label") -> dict[str, Any]:
    """The points as compact arrays for the map: a colour table and one [lat, lon, sample_id, colour index,
    has_patch] row per point (a third of the bytes of GeoJSON, which matters because st_folium re-renders and
    re-parses the map script on every rerun). Points with a patch come last, so they are drawn on top."""
    if "has_patch" in points:
        points = points.sort_values("has_patch", kind="stable")
    colours: list[str] = []
    rows = []
    for row in points.to_dict("records"):
        c = point_colour(row, colour_by)
        if c not in colours:
            colours.append(c)
        rows.append([round(float(row["lat"]), 5), round(float(row["lon"]), 5), str(row["sample_id"]),
                     colours.index(c), int(bool(row.get("has_patch")))])
    return {"c": colours, "p": rows}


def points_layer(points: pd.DataFrame, colour_by: str = "label", name: str = "Labelled points"):
    """All points as canvas-rendered Leaflet circle markers built in the browser from compact inline data,
    each with its sample id as tooltip.

    Why not thousands of folium CircleMarkers or a folium.GeoJson: both cost 0.2-3 s of Python rendering
    on *every* rerun (st_folium re-renders the map each time), which would dominate a click. The tooltip is
    exactly the sample id, bound to each marker, because st_folium returns the clicked marker's tooltip text
    and that is how a click is mapped back to a patch. Markers must exist when the map script finishes:
    st_folium binds its click handler to the layers present at that moment."""
    from jinja2 import Template

    class CanvasPoints(_macro_element()):  # type: ignore[misc]  # folium's MacroElement, imported lazily
        _template = Template("""
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = (function (d) {
  var g = L.featureGroup();
  for (var i = 0; i < d.p.length; i++) {
    var q = d.p[i], c = d.c[q[3]];
    L.circleMarker([q[0], q[1]], {radius: q[4] ? 5 : 3, color: c, fillColor: c, fillOpacity: q[4] ? 0.85 : 0.4,
                                  weight: 1}).bindTooltip(q[2]).addTo(g);
  }
  return g;
})({{ this.data_js }}).addTo({{ this._parent.get_name() }});
{% endmacro %}
""")

        def __init__(self, data: dict[str, Any], name: str):
            super().__init__()
            self._name = "CanvasPoints"
            self.data_js = json.dumps(data, separators=(",", ":"))
            self.sample_ids = [r[2] for r in data["p"]]
            self.layer_name = name

    return CanvasPoints(points_compact(points, colour_by), name)


def remote_geojson_layer(url: str, colour: str, point_radius: int = 2, fill_opacity: float = 0.25):
    """A reference layer (polygons or points) fetched by the browser from a static URL, so its ~0.5 MB
    never pass through Python on a rerun. Not clickable (it is added after the click handlers are bound)."""
    from jinja2 import Template

    class RemoteGeoJson(_macro_element()):  # type: ignore[misc]  # folium's MacroElement, imported lazily
        _template = Template("""
{% macro script(this, kwargs) %}
fetch({{ this.url|tojson }}).then(function (r) { return r.json(); }).then(function (d) {
  L.geoJSON(d, {
    interactive: false,
    style: function () { return {color: {{ this.colour|tojson }}, weight: 1, fillColor: {{ this.colour|tojson }}, fillOpacity: {{ this.fill_opacity }}}; },
    pointToLayer: function (f, latlng) {
      return L.circleMarker(latlng, {radius: {{ this.radius }}, color: {{ this.colour|tojson }}, fillOpacity: 0.7, weight: 1, interactive: false});
    }
  }).addTo({{ this._parent.get_name() }});
}).catch(function (e) { console.warn("reference layer unavailable: " + {{ this.url|tojson }}, e); });
{% endmacro %}
""")

        def __init__(self, url: str, colour: str, radius: int, fill_opacity: float):
            super().__init__()
            self._name = "RemoteGeoJson"
            self.url, self.colour, self.radius, self.fill_opacity = url, colour, int(radius), float(fill_opacity)

    return RemoteGeoJson(url, colour, point_radius, fill_opacity)


def reference_geojson(gdf) -> str:
    """Compact GeoJSON of a reference layer: polygons simplified (~30 m, invisible at the map's zooms),
    coordinates rounded to ~1 m; about a third of the upstream bytes."""
    import shapely

    g = gdf[["geometry"]].to_crs("EPSG:4326")
    if g.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        g = g.assign(geometry=g.geometry.simplify(0.0003, preserve_topology=True))
    g = g.assign(geometry=shapely.set_precision(g.geometry.values, 1e-5))
    return g.to_json(drop_id=True)


def map_legend(colour_by: str) -> str:
    """Markdown legend for the point colours."""
    if colour_by == "outcome":
        items = [("TP", "mining, found"), ("TN", "not mining, rejected"), ("FP", "false alarm"),
                 ("FN", "missed mining"), ("", "not in the run's test/val splits")]
        return " · ".join(f":{_md_colour(OUTCOME_COLOURS[k])}[●] {v}" for k, v in items)
    return f":{_md_colour(LABEL_COLOURS[1])}[●] mining (label 1) · :{_md_colour(LABEL_COLOURS[0])}[●] not mining (label 0)"


def _md_colour(hex_colour: str) -> str:
    # Streamlit markdown knows only named colours; map ours to the closest.
    return {"#d7301f": "red", "#2b8cbe": "blue", "#ff7f00": "orange", "#984ea3": "violet"}.get(hex_colour, "gray")


# -- run tables and figures ----------------------------------------------------------------------
TABLE_COLUMNS = ["F1 [95% CI]", "PR-AUC", "FP", "FN", "Precision", "Recall"]


def _ci_text(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None or pd.isna(value):
        return ""
    if ci and len(ci) == 2 and all(c is not None for c in ci):
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def runs_table(runs: Sequence[Any]) -> pd.DataFrame:
    """One row per completed run: the study's Table 1 columns plus the config toggles.

    ``runs`` are ``asgm.runs.RunInfo`` objects (anything with run_id, config, status, metrics)."""
    rows = []
    for r in runs:
        m = r.metrics or {}
        c = r.config
        ci = m.get("f1_ci_patch") or m.get("f1_ci_cluster")
        rows.append({
            # the store right after the name, so "(synthetic)" is seen without scrolling
            "run": r.run_id, "name": c.name, "store": c.store, "source": "this project", "status": r.status,
            "OSM": "Yes" if c.osm_layers else "No", "OSM layers": ",".join(c.osm_layers),
            "Patch": c.patch_size, "Neg Type": c.negatives.capitalize(), "Class Weight": "Yes" if c.class_weight else "No",
            "bands": ",".join(c.bands), "epochs": c.epochs, "seed": c.seed,
            "F1": m.get("f1"), "F1 lo": ci[0] if ci else None, "F1 hi": ci[1] if ci else None,
            "F1 [95% CI]": _ci_text(m.get("f1"), ci), "PR-AUC": m.get("pr_auc"), "FP": m.get("fp"), "FN": m.get("fn"),
            "Precision": m.get("precision"), "Recall": m.get("recall"), "threshold": m.get("threshold"),
        })
    return pd.DataFrame(rows)


def published_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The study's Table 1 rows in the same columns as ``runs_table`` (marked source = 'published')."""
    out = []

    def pick(r: Mapping[str, Any], *keys: str) -> Any:
        return next((r[k] for k in keys if k in r), None)  # tolerate key spellings

    for r in rows:
        get = lambda *keys, r=r: pick(r, *keys)  # noqa: E731
        ci = get("f1_ci", "F1 CI", "f1_ci_patch")
        f1 = get("f1", "F1")
        osm = get("osm", "OSM")
        out.append({
            "run": f"paper Exp {get('exp', 'Exp', 'experiment')}", "name": "Dissing & Kalo, Table 1", "source": "published",
            "status": "published", "OSM": "Yes" if osm in (True, "Yes", "yes") else "No", "OSM layers": "",
            "Patch": get("patch", "Patch", "patch_size"), "Neg Type": str(get("negatives", "Neg Type", "neg_type") or "").capitalize(),
            "Class Weight": "Yes" if get("class_weight", "Class Weight") in (True, "Yes", "yes") else "No",
            "F1": f1, "F1 lo": ci[0] if ci else None, "F1 hi": ci[1] if ci else None, "F1 [95% CI]": _ci_text(f1, ci),
            "PR-AUC": get("pr_auc", "PR-AUC"), "FP": get("fp", "FP"), "FN": get("fn", "FN"),
            "Precision": get("precision", "Precision"), "Recall": get("recall", "Recall"),
        })
    return pd.DataFrame(out)


def f1_ci_figure(table: pd.DataFrame):
    """F1 per run with its 95 % CI as error bars (published rows in grey)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    t = table.dropna(subset=["F1"])
    for source, colour in (("this project", "#d7301f"), ("published", "#7f7f7f")):
        s = t[t["source"] == source]
        if s.empty:
            continue
        fig.add_trace(go.Scatter(
            x=s["run"], y=s["F1"], mode="markers", name=source, marker=dict(size=10, color=colour),
            error_y=dict(type="data", symmetric=False, array=(s["F1 hi"] - s["F1"]).fillna(0),
                         arrayminus=(s["F1"] - s["F1 lo"]).fillna(0)),
        ))
    fig.update_layout(yaxis=dict(title="F1 (95 % CI)", range=[0, 1.05]), xaxis_title="run", height=360,
                      margin=dict(l=40, r=10, t=30, b=80))
    return fig


def pr_curves_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]):
    """Precision-recall curves overlaid, one per run (``{run_id: {"precision": [...], "recall": [...]}}``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for run_id, c in curves.items():
        if c and c.get("precision") and c.get("recall"):
            fig.add_trace(go.Scatter(x=list(c["recall"]), y=list(c["precision"]), mode="lines", name=run_id))
    fig.update_layout(xaxis=dict(title="recall", range=[0, 1.02]), yaxis=dict(title="precision", range=[0, 1.02]),
                      height=360, margin=dict(l=40, r=10, t=30, b=40))
    return fig


def reliability_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]):
    """Reliability diagram: observed share of mining against mean predicted probability per bin, one line per
    run (``{run_id: metrics["reliability"]}``), marker size by bin count, the diagonal = perfectly calibrated."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line=dict(dash="dot", color="#888")))
    for run_id, c in curves.items():
        if c and c.get("mean_prob") and c.get("frac_pos"):
            counts = list(c.get("count") or [1] * len(c["mean_prob"]))
            top = max(counts) or 1
            fig.add_trace(go.Scatter(x=list(c["mean_prob"]), y=list(c["frac_pos"]), mode="lines+markers", name=run_id,
                                     marker=dict(size=[6 + 14 * n / top for n in counts]),
                                     customdata=counts, hovertemplate="predicted %{x:.2f} · observed %{y:.2f}"
                                                                      " · %{customdata} chips<extra></extra>"))
    fig.update_layout(xaxis=dict(title="mean predicted probability of mining", range=[0, 1.02]),
                      yaxis=dict(title="observed share of mining", range=[0, 1.02]), height=360,
                      margin=dict(l=40, r=10, t=30, b=40))
    return fig


def confusion_figure(metrics: Mapping[str, Any], title: str = ""):
    """2 x 2 confusion matrix (rows = true, columns = predicted) as an annotated heatmap."""
    import plotly.graph_objects as go

    tn, fp, fn, tp = (int(metrics.get(k) or 0) for k in ("tn", "fp", "fn", "tp"))
    z = [[tn, fp], [fn, tp]]
    fig = go.Figure(go.Heatmap(z=z, x=["pred 0", "pred 1"], y=["true 0", "true 1"], colorscale="Blues",
                               showscale=False, text=z, texttemplate="%{text}"))
    fig.update_layout(title=title, height=230, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(autorange="reversed"))
    return fig


def ablation_figure(ablation: pd.DataFrame):
    """The study's Fig. 3: F1, precision and recall of each 'without layer X' run relative to the full
    model (difference, so 0 = as good as the full model)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for metric, colour in (("f1", "#d7301f"), ("precision", "#2b8cbe"), ("recall", "#4daf4a")):
        fig.add_trace(go.Bar(x=ablation["removed"], y=ablation[f"delta_{metric}"], name=metric, marker_color=colour))
    fig.update_layout(barmode="group", yaxis_title="change vs full OSM model", xaxis_title="OSM layer removed",
                      height=340, margin=dict(l=40, r=10, t=30, b=40))
    return fig


def ablation_table(table: pd.DataFrame, configs: Mapping[str, Any]) -> pd.DataFrame:
    """Pair each completed run that uses all OSM layers but one with the full-OSM run of otherwise equal
    config; empty when no such pairs exist. ``configs`` maps run_id -> ExperimentConfig."""
    rows = []
    done = table[table["source"] == "this project"].dropna(subset=["F1"])
    full_ids = [r for r in done["run"] if set(configs[r].osm_layers) == set(OSM_LAYERS)]
    for full in full_ids:
        base = configs[full].model_dump(exclude={"name", "osm_layers"})
        frow = done[done["run"] == full].iloc[0]
        for rid in done["run"]:
            c = configs[rid]
            missing = set(OSM_LAYERS) - set(c.osm_layers)
            if len(missing) != 1 or c.model_dump(exclude={"name", "osm_layers"}) != base:
                continue
            r = done[done["run"] == rid].iloc[0]
            rows.append({"full_run": full, "run": rid, "removed": missing.pop(),
                         **{f"delta_{k}": float(r[col]) - float(frow[col])
                            for k, col in (("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"))}})
    return pd.DataFrame(rows, columns=["full_run", "run", "removed", "delta_f1", "delta_precision", "delta_recall"])


def predictions_geojson(pred: pd.DataFrame, only_split: str | None = "test") -> str:
    """A run's predictions as a GeoJSON FeatureCollection of points (EPSG:4326)."""
    df = pred if only_split is None else pred[pred["split"] == only_split]
    feats = []
    for r in df.to_dict("records"):
        props = {k: (None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v))
                 for k, v in r.items() if k not in ("lon", "lat")}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(r["lon"]), float(r["lat"])]},
                      "properties": props})
    return json.dumps({"type": "FeatureCollection", "features": feats})


def probability_bar(prob: float, threshold: float):
    """A one-bar plotly gauge of a probability with the decision threshold marked."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=prob, number={"valueformat": ".3f"},
        gauge={"axis": {"range": [0, 1]}, "bar": {"color": "#d7301f" if prob >= threshold else "#2b8cbe"},
               "threshold": {"line": {"color": "black", "width": 3}, "value": threshold}},
    ))
    fig.update_layout(height=180, margin=dict(l=20, r=20, t=10, b=10))
    return fig
