"""Small SYNTHETIC finished region scans written with the scan's own writers (no model, no imagery): a 6 x 6 window
grid near Bolívar (Venezuela) whose windows listed as ``mines`` score 0.9, the others 0.1, one scan per year, so
a series of scans has known detections, windows and years."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from shapely.geometry import box, mapping

from asgm import atomic
from asgm.scan import outputs as scan_outputs
from asgm.scan import windows

#: 6 x 6 windows of 48 px every 24 px (240 m cells) in UTM 20N, around lon -61.82, lat 6.40.
GRID = windows.ScanGrid(epsg=32620, x0=587_000.0, y0=708_000.0, window=48, stride=24, ny=6, nx=6, tile_windows=8)


def cell_centre(i: int, j: int) -> tuple[float, float]:
    """(lon, lat) of the centre of cell (i, j) of ``GRID``."""
    from pyproj import Transformer

    t = GRID.cell_transform
    x, y = t.c + (j + 0.5) * t.a, t.f + (i + 0.5) * t.e
    return Transformer.from_crs(f"EPSG:{GRID.epsg}", "EPSG:4326", always_xy=True).transform(x, y)


def write_scan(root: Path, name: str, year: int, mines: list[tuple[int, int]]) -> Path:
    """A finished SYNTHETIC scan ``root/name`` of ``year`` detecting the windows ``mines``."""
    prob = np.full((GRID.ny, GRID.nx), 0.1, np.float32)
    for i, j in mines:
        prob[i, j] = 0.9
    det, conf = scan_outputs.dual_threshold(prob, 0.5, 0.3)
    gdf = scan_outputs.polygons(det, prob, conf, GRID.cell_transform, GRID.epsg)
    folder = root / name
    scan_outputs.write_geojson(folder / "detections.geojson", gdf, {"synthetic": True})
    np.savez(folder / "cells.npz", prob=prob, detected=det, confirmed=conf)
    w, n = cell_centre(0, 0)
    e, s = cell_centre(GRID.ny - 1, GRID.nx - 1)
    atomic.write_json(
        folder / "scan.json",
        {
            "identity": {
                "aoi": mapping(box(w, s, e, n)),
                "year": year,
                "run_id": "synthetic-run",
                "source": {"kind": "mosaic", "path": "synthetic.tif"},
                "grid": asdict(GRID),
            },
            "synthetic": True,
        },
    )
    atomic.write_json(
        folder / "summary.json",
        {
            "detections": len(gdf),
            "detected_area_ha": float(gdf["area_ha"].sum()) if len(gdf) else 0.0,
            "synthetic": True,
        },
    )
    return folder
