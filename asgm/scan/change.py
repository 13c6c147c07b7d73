"""Change over time: new / gone / persistent detections between two finished scans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from asgm import atomic
from asgm.grid import RESOLUTION_M
from asgm.scan.area import ScanError
from asgm.scan.outputs import polygons, write_geojson
from asgm.scan.windows import ScanGrid


# -- change over time ----------------------------------------------------------------------------
def diff_scans(a: str | Path, b: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """New / gone / persistent detections between two finished scans of the same area and grid (years
    ``a`` -> ``b``), with areas in ha; cells not scanned in one of the years count as ``unknown``.
    With ``out``, writes ``change.geojson`` and ``change.json`` there."""
    import pandas as pd

    from asgm.scan.area import check_out_folder

    if out is not None:
        check_out_folder(out)
    scans = []
    for d in (Path(a), Path(b)):
        try:
            ident = json.loads((d / "scan.json").read_text(encoding="utf-8"))["identity"]
            with np.load(d / "cells.npz", allow_pickle=False) as z:
                cells = {k: z[k] for k in ("prob", "detected")}
        except (OSError, ValueError, KeyError) as exc:
            raise ScanError(
                f"{d} is not a finished scan ({type(exc).__name__}: {exc}); run `asgm scan run` into it first"
            ) from None
        scans.append((ident, cells))
    (ia, ca), (ib, cb) = scans
    if ia["grid"] != ib["grid"]:
        raise ScanError(
            "the two scans use different grids (area, window or stride); scan both years with the same area and run"
        )
    if ia.get("run_id") != ib.get("run_id"):
        # Another model's differences are not change on the ground (issue 22: they read as new mining).
        raise ScanError(
            f"the two scans were made by different runs ({ia.get('run_id')} and {ib.get('run_id')}): "
            "their difference is the models', not change on the ground; scan both years with the same run"
        )
    grid = ScanGrid(**ia["grid"])
    both = np.isfinite(ca["prob"]) & np.isfinite(cb["prob"])
    da, db = ca["detected"], cb["detected"]
    classes = {
        "new": (db & ~da & both, cb["prob"]),
        "gone": (da & ~db & both, ca["prob"]),
        "persistent": (da & db, np.fmax(ca["prob"], cb["prob"])),
        "unknown": ((da | db) & ~both, np.fmax(ca["prob"], cb["prob"])),
    }
    frames, areas = [], {}
    cell_ha = (grid.stride * RESOLUTION_M) ** 2 / 1e4
    for name, (mask, prob) in classes.items():
        gdf = polygons(mask, prob, None, grid.cell_transform, grid.epsg).drop(columns=["confirmed_windows"])
        gdf.insert(1, "change", name)
        frames.append(gdf)
        areas[f"{name}_ha"] = round(float(mask.sum()) * cell_ha, 3)
        areas[f"{name}_count"] = len(gdf)
    import geopandas as gpd

    allg = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    synthetic = bool(ia["source"].get("synthetic") or ib["source"].get("synthetic"))
    report: dict[str, Any] = {
        "a": str(a),
        "b": str(b),
        "year_a": ia["year"],
        "year_b": ib["year"],
        **areas,
        "synthetic": synthetic,
    }
    if out is not None:
        out = Path(out)
        write_geojson(
            out / "change.geojson", allg, {"year_a": ia["year"], "year_b": ib["year"], "synthetic": synthetic}
        )
        atomic.write_json(out / "change.json", report)
        report["files"] = {"change": str(out / "change.geojson"), "report": str(out / "change.json")}
    return report
