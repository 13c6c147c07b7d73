"""Pictures of patches: composites, OSM and Grad-CAM overlays, PNGs, and the colours shared by the maps.

Pure functions (numpy in, images out), testable without a browser. No streamlit and no TensorFlow here.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

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
def composite(
    data: np.ndarray, bands: Sequence[str], use: Sequence[str], scale: float = DISPLAY_DN
) -> np.ndarray | None:
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


def overlay_osm(
    img: np.ndarray, masks: np.ndarray | None, layers: Sequence[str], visible: Iterable[str], alpha: float = 0.65
) -> np.ndarray:
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
        for x in layers
        if x in OSM_COLOURS
    ]
    return " &nbsp; ".join(items)


def point_colour(row: Mapping[str, Any], colour_by: str) -> str:
    """Marker colour of one point: by true label, or by outcome of the selected run."""
    if colour_by == "outcome":
        return OUTCOME_COLOURS.get(str(row.get("outcome") or ""), OUTCOME_COLOURS[""])
    return LABEL_COLOURS.get(int(row["label"]), "#7f7f7f")


def reference_geojson(gdf: Any) -> str:
    """Compact GeoJSON of a reference layer: polygons simplified (~30 m, invisible at the map's zooms),
    coordinates rounded to ~1 m; about a third of the upstream bytes."""
    import shapely

    g = gdf[["geometry"]].to_crs("EPSG:4326")
    if g.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        g = g.assign(geometry=g.geometry.simplify(0.0003, preserve_topology=True))
    g = g.assign(geometry=shapely.set_precision(g.geometry.values, 1e-5))
    return g.to_json(drop_id=True)
