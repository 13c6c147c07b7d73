"""What a scan writes: the dual threshold, detection polygons, GeoJSON and the probability COG."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from asgm import atomic
from asgm.model.spatial_prior import PriorDecision, SpatialPrior, apply_prior
from asgm.scan.tiles import TileResult
from asgm.scan.windows import ScanGrid


# -- outputs -------------------------------------------------------------------------------------
def dual_threshold(prob: np.ndarray, high: float, low: float) -> tuple[np.ndarray, np.ndarray]:
    """(detected, confirmed) masks: >= high, plus >= low windows touching a >= high window."""
    from scipy import ndimage

    p = np.nan_to_num(prob, nan=-1.0)
    confirmed = p >= high
    near = ndimage.binary_dilation(confirmed, structure=np.ones((3, 3), bool))
    return confirmed | (near & (p >= low)), confirmed


def window_prior(prob: np.ndarray, grid: ScanGrid, prior: SpatialPrior) -> PriorDecision:
    """The spatial prior on the window grid: each window at its cell's centre (UTM metres); NaN windows
    (not scanned) are neither candidates nor neighbours. Arrays come back flat, row-major."""
    i, j = np.indices(prob.shape)
    t = grid.cell_transform
    xy = np.column_stack([t.c + (j.ravel() + 0.5) * t.a, t.f + (i.ravel() + 0.5) * t.e])
    return apply_prior(xy, prob.ravel(), prior)


def polygons(mask: np.ndarray, prob: np.ndarray, confirmed: np.ndarray | None, transform: Affine, epsg: int) -> Any:
    """Dissolved polygons of 8-connected ``mask`` cells with area (ha), max/mean probability and counts (EPSG:4326)."""
    import geopandas as gpd
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import shape
    from shapely.ops import unary_union

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    cols = ["id", "area_ha", "max_prob", "mean_prob", "windows", "confirmed_windows", "centroid_lon", "centroid_lat"]
    if n == 0:
        return gpd.GeoDataFrame(columns=[*cols, "geometry"], geometry="geometry", crs="EPSG:4326")
    parts: dict[int, list[Any]] = {}
    for geom, value in shapes(labels.astype(np.int32), mask=mask, transform=transform, connectivity=8):
        parts.setdefault(int(value), []).append(shape(geom))
    idx = np.arange(1, n + 1)
    p = np.nan_to_num(prob, nan=0.0)
    geoms = [unary_union(parts[i]) for i in idx]
    conf = np.zeros(n) if confirmed is None else ndimage.sum(confirmed, labels, idx)
    gdf = gpd.GeoDataFrame(
        {
            "area_ha": [round(g.area / 1e4, 4) for g in geoms],
            "max_prob": np.round(ndimage.maximum(p, labels, idx), 4),
            "mean_prob": np.round(ndimage.mean(p, labels, idx), 4),
            "windows": np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(int),
            "confirmed_windows": np.asarray(conf).astype(int),
        },
        geometry=geoms,
        crs=f"EPSG:{epsg}",
    ).to_crs("EPSG:4326")
    cent = gdf.geometry.to_crs(f"EPSG:{epsg}").centroid.to_crs("EPSG:4326")
    gdf["centroid_lon"], gdf["centroid_lat"] = cent.x.round(6), cent.y.round(6)
    gdf = gdf.sort_values(["max_prob", "area_ha"], ascending=False).reset_index(drop=True)
    gdf.insert(0, "id", [f"det-{k + 1:04d}" for k in range(len(gdf))])
    return gdf


def write_geojson(path: Path, gdf: Any, members: dict[str, Any]) -> None:
    """RFC 7946 GeoJSON (lon/lat) with the scan's settings as a foreign member ``asgm``."""
    fc = json.loads(gdf.to_json(drop_id=True)) if len(gdf) else {"type": "FeatureCollection", "features": []}
    fc["asgm"] = members
    atomic.write_text(path, json.dumps(fc) + "\n")


def write_cog(path: Path, arr: np.ndarray, transform: Affine, epsg: int, tags: dict[str, str]) -> None:
    """A float32 single-band COG (NaN = no data), written atomically."""
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=arr.shape[1],
            height=arr.shape[0],
            count=1,
            dtype="float32",
            crs=f"EPSG:{epsg}",
            transform=transform,
            nodata=float("nan"),
        ) as dst:
            dst.write(arr.astype(np.float32), 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, "probability of mining")
        with mem.open() as src, atomic.atomic_path(path, suffix=".tif") as tmp:
            rio_copy(src, str(tmp), driver="COG", compress="DEFLATE", blocksize=256)


def finalize(
    out: Path,
    grid: ScanGrid,
    results: dict[tuple[int, int], TileResult],
    thr: dict[str, Any],
    synthetic: bool,
    prior: SpatialPrior | None = None,
) -> dict[str, Any]:
    """Assemble the tiles, decide each window (the dual threshold, or the spatial ``prior``: then
    "confirmed" windows are those that clear t_iso) and write probability.tif, cells.npz, detections.geojson."""
    prob = np.full((grid.ny, grid.nx), np.nan, dtype=np.float32)
    for (ti, tj), r in results.items():
        rs, cs = grid.tile_slices(ti, tj)
        prob[rs, cs] = r.prob
    isolated = np.zeros(prob.shape, bool)
    prior_counts: dict[str, Any] = {}
    if prior is None:
        detected, confirmed = dual_threshold(prob, thr["high"], thr["low"])
    else:
        d = window_prior(prob, grid, prior)
        detected, isolated = d.decision.reshape(prob.shape).astype(bool), d.isolated.reshape(prob.shape)
        confirmed = detected & (np.nan_to_num(prob, nan=-1.0) >= prior.t_iso)
        prior_counts = {"spatial_prior": {**prior.describe(), **d.counts()}}
    gdf = polygons(detected, prob, confirmed, grid.cell_transform, grid.epsg)
    label = "SYNTHETIC imagery (not a real place)" if synthetic else ""
    tags = {
        "high_threshold": str(thr["high"]),
        "low_threshold": str(thr["low"]),
        "window_px": str(grid.window),
        "stride_px": str(grid.stride),
        "synthetic": str(synthetic).lower(),
        "note": label,
    }
    write_cog(out / "probability.tif", prob, grid.cell_transform, grid.epsg, tags)
    buf = io.BytesIO()
    np.savez_compressed(buf, prob=prob, detected=detected, confirmed=confirmed, isolated=isolated)
    atomic.write_bytes(out / "cells.npz", buf.getvalue())
    write_geojson(
        out / "detections.geojson",
        gdf,
        {"thresholds": thr, "synthetic": synthetic, "note": label, "window_px": grid.window, "stride_px": grid.stride},
    )
    counts = {
        k: sum(getattr(r, k) for r in results.values())
        for k in ("windows_aoi", "windows_scored", "windows_masked", "pixels_aoi", "pixels_masked")
    }
    return {
        "synthetic": synthetic,
        "thresholds": thr,
        **prior_counts,
        "grid": {
            "epsg": grid.epsg,
            "window_px": grid.window,
            "stride_px": grid.stride,
            "windows_x": grid.nx,
            "windows_y": grid.ny,
            "tile_windows": grid.tile_windows,
        },
        **counts,
        "masked_pixel_fraction": round(counts["pixels_masked"] / counts["pixels_aoi"], 6)
        if counts["pixels_aoi"]
        else None,
        "detections": len(gdf),
        "detected_area_ha": round(float(gdf["area_ha"].sum()), 3) if len(gdf) else 0.0,
        "files": {
            k: str(out / f)
            for k, f in (
                ("probability", "probability.tif"),
                ("detections", "detections.geojson"),
                ("cells", "cells.npz"),
                ("summary", "summary.json"),
            )
        },
    }
