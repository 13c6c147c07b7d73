"""Finished region scans as the app shows them: the list of scans in ``<data>/scans``, a scan's detections
as a table (area, probability, centroid, the window to open) with CSV / GeoJSON exports, the pixels of one
scan window re-read from the scan's composite (for the Patch viewer), and the change between two scans.

Files only (plus the composite's own reader for a window); no Streamlit. Folders starting with ``_`` or
``.`` under ``<data>/scans`` are not scans (``_changes`` holds ``diff_scans`` outputs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from asgm.grid import PatchGrid, centre_lonlat
from asgm.scan import area as scan_area
from asgm.scan import change as scan_change
from asgm.scan import windows as scan_windows
from asgm.scan.request import scans_dir

TABLE_COLUMNS = ["id", "area_ha", "max_prob", "mean_prob", "windows", "centroid_lon", "centroid_lat", "window"]
SYNTHETIC_LABEL = "SYNTHETIC imagery (not a real place)"


class ScanResultError(scan_area.ScanError):
    """A scan that cannot be shown (unfinished, damaged, unknown); the message says what to do."""


@dataclass
class ScanEntry:
    """One folder of ``scans_dir()``: finished (``summary.json`` written) or not (running, failed, cancelled)."""

    name: str
    folder: Path
    finished: bool
    year: int | None
    run_id: str | None
    source: str
    synthetic: bool
    detections: int | None
    detected_area_ha: float | None
    grid: dict[str, Any] | None

    @property
    def version(self) -> float:
        """Changes when the scan is finished again (for caches)."""
        return _mtime(self.folder / "summary.json")

    @property
    def label(self) -> str:
        what = f"{self.detections} detection(s), {self.detected_area_ha:.1f} ha" if self.finished else "not finished"
        syn = " · SYNTHETIC" if self.synthetic else ""
        return f"{self.name} · {self.year or '?'} · run {self.run_id or '?'} · {self.source}{syn} · {what}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _source_kind(source: dict[str, Any] | None, request: dict[str, Any] | None) -> str:
    if request and request.get("source") in ("stac", "gee", "synthetic"):
        return str(request["source"])
    return str((source or {}).get("kind") or (request or {}).get("source") or "?")


def list_scans(root: Path | None = None) -> list[ScanEntry]:
    """Every scan folder, newest first; a damaged one is listed as not finished, never raises."""
    root = Path(root or scans_dir())
    if not root.is_dir():
        return []
    out = []
    for folder in (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        manifest = _read_json(folder / "scan.json") or {}
        ident = manifest.get("identity") or {}
        request = _read_json(folder / "request.json")
        summary = _read_json(folder / "summary.json")
        finished = (
            summary is not None and (folder / "detections.geojson").is_file() and (folder / "cells.npz").is_file()
        )
        year = ident.get("year") or (request or {}).get("year")
        out.append(
            ScanEntry(
                name=folder.name,
                folder=folder,
                finished=finished,
                year=int(year) if year else None,
                run_id=ident.get("run_id") or (request or {}).get("run_id"),
                source=_source_kind(ident.get("source"), request),
                synthetic=bool(manifest.get("synthetic") or (request or {}).get("source") == "synthetic"),
                detections=summary.get("detections") if summary else None,
                detected_area_ha=summary.get("detected_area_ha") if summary else None,
                grid=ident.get("grid"),
            )
        )
    return sorted(out, key=lambda e: (e.folder.stat().st_mtime, e.name), reverse=True)


@dataclass
class FinishedScan:
    """A finished scan's manifest, summary, detections (EPSG:4326) and AOI."""

    name: str
    folder: Path
    identity: dict[str, Any]
    summary: dict[str, Any]
    detections: Any  # GeoDataFrame
    aoi: Any  # shapely geometry, lon/lat

    @property
    def synthetic(self) -> bool:
        return bool(self.summary.get("synthetic"))

    @property
    def version(self) -> float:
        """Changes when the scan is finished again (for caches)."""
        return _mtime(self.folder / "summary.json")

    @property
    def grid(self) -> scan_windows.ScanGrid:
        return scan_windows.ScanGrid(**self.identity["grid"])

    @property
    def thresholds(self) -> dict[str, Any]:
        return dict(self.summary.get("thresholds") or {})


def scan_folder(name: str, root: Path | None = None) -> Path:
    """The folder of scan ``name`` (``ScanResultError`` for a name that is not a plain folder name)."""
    if not name or "/" in name or "\\" in name or name.startswith((".", "_")):
        raise ScanResultError(f"{name!r} is not a scan name; pick a scan from the list")
    return Path(root or scans_dir()) / name


def open_scan(name: str, root: Path | None = None) -> FinishedScan:
    """A finished scan by name (``ScanResultError`` when it is unknown, unfinished or damaged)."""
    import geopandas as gpd
    from shapely.geometry import shape

    folder = scan_folder(name, root)
    if not folder.is_dir():
        raise ScanResultError(f"no scan named {name!r} in {folder.parent}; pick one from the list")
    manifest, summary = _read_json(folder / "scan.json"), _read_json(folder / "summary.json")
    if not manifest or "identity" not in manifest or summary is None:
        raise ScanResultError(
            f"scan {name!r} is not finished (no summary.json); wait for its job, or start it again to resume"
        )
    try:
        det = gpd.read_file(folder / "detections.geojson")
        aoi = shape(manifest["identity"]["aoi"])
    except Exception as exc:  # pyogrio/shapely raise many types for a damaged file
        raise ScanResultError(
            f"scan {name!r} has unreadable outputs ({type(exc).__name__}: {exc}); run it again with overwrite"
        ) from None
    if det.crs is None:
        det = det.set_crs("EPSG:4326")
    return FinishedScan(name, folder, manifest["identity"], summary, det, aoi)


def _cells(folder: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(folder / "cells.npz", allow_pickle=False) as z:
            return {k: z[k] for k in ("prob", "detected")}
    except (OSError, ValueError, KeyError) as exc:
        raise ScanResultError(
            f"{folder / 'cells.npz'} is unreadable ({type(exc).__name__}); run the scan again"
        ) from None


def detection_windows(s: FinishedScan) -> list[tuple[int, int] | None]:
    """For each detection (in ``s.detections`` order), the window (row i, column j) of its highest
    probability: the window to open in the Patch viewer."""
    from rasterio.features import rasterize

    grid, det = s.grid, s.detections
    if not len(det):
        return []
    cells = _cells(s.folder)
    utm = det.to_crs(f"EPSG:{grid.epsg}")
    # Detection edges follow cell edges, so a cell belongs to the polygon its centre falls in.
    labels = rasterize(
        [(g, k + 1) for k, g in enumerate(utm.geometry)],
        out_shape=(grid.ny, grid.nx),
        transform=grid.cell_transform,
        fill=0,
        dtype="int32",
    )
    prob = np.nan_to_num(cells["prob"], nan=-1.0)
    out: list[tuple[int, int] | None] = []
    for k in range(len(det)):
        ii, jj = np.nonzero(labels == k + 1)
        if not len(ii):
            out.append(None)
            continue
        best = int(np.argmax(prob[ii, jj]))
        out.append((int(ii[best]), int(jj[best])))
    return out


def detections_table(s: FinishedScan) -> pd.DataFrame:
    """One row per detection: id, area (ha), max / mean probability, windows, centroid lon/lat, and the
    window ``"i,j"`` of its highest probability."""
    det = s.detections
    if not len(det):
        return pd.DataFrame(columns=TABLE_COLUMNS)
    table = pd.DataFrame(det.drop(columns="geometry"))
    table["window"] = [f"{w[0]},{w[1]}" if w else "" for w in detection_windows(s)]
    return table[TABLE_COLUMNS].reset_index(drop=True)


def table_csv(table: pd.DataFrame, synthetic: bool) -> bytes:
    """The table as CSV (UTF-8); a SYNTHETIC scan's file says so in a first comment line."""
    head = f"# {SYNTHETIC_LABEL}\n" if synthetic else ""
    return (head + table.to_csv(index=False)).encode("utf-8")


def detections_geojson(s: FinishedScan) -> bytes:
    """The scan's ``detections.geojson`` as written (RFC 7946, with the thresholds and SYNTHETIC note in ``asgm``)."""
    return (s.folder / "detections.geojson").read_bytes()


# -- one window, for the Patch viewer ------------------------------------------------------------------
def parse_window(text: str) -> tuple[int, int]:
    """``"i,j"`` -> (i, j) (``ScanResultError`` otherwise)."""
    try:
        i, j = (int(v) for v in str(text).split(","))
    except ValueError:
        raise ScanResultError(f"window {text!r} is not 'row,column' (two whole numbers)") from None
    return i, j


def window_grid(s: FinishedScan, i: int, j: int) -> PatchGrid:
    """The pixel grid of scan window (i, j) (``ScanResultError`` outside the scan)."""
    g = s.grid
    if not (0 <= i < g.ny and 0 <= j < g.nx):
        raise ScanResultError(f"window {i},{j} is outside scan {s.name!r} ({g.ny} x {g.nx} windows)")
    return g.window_grid(i, j)


def composite_of(s: FinishedScan) -> Any:
    """The scan's composite re-opened from its manifest: the mosaic file, STAC (same catalogue and
    collection) or Earth Engine."""
    from asgm.sources.composite import GeeComposite, MosaicComposite, StacComposite

    src, year = s.identity["source"], int(s.identity["year"])
    kind = src.get("kind")
    if kind == "mosaic":
        return MosaicComposite.open(src["path"])
    if kind == "stac":
        return StacComposite(year, url=src.get("url"), collection=src.get("collection"))
    if kind == "gee":
        return GeeComposite(year)
    raise ScanResultError(f"scan {s.name!r} records an unknown source {kind!r}; run it again")


def window_patch(s: FinishedScan, i: int, j: int) -> Any:
    """Scan window (i, j) as an ``asgm.data.store.Patch`` (label -1: a scan window has no true label), its pixels
    read from the scan's composite, so the one inference path classifies it as it classifies store patches."""
    from asgm.data.store import Patch

    grid = window_grid(s, i, j)
    comp = composite_of(s)
    data = comp.read(grid)
    lon, lat = centre_lonlat(grid)  # the point of a window, as of a store patch: its centre pixel
    src = s.identity["source"]
    return Patch(
        sample_id=f"{s.name}:{i},{j}",
        label=-1,
        set="scan",
        lon=float(lon),
        lat=float(lat),
        grid=grid,
        data=data,
        bands=tuple(comp.bands),
        source="synthetic" if comp.synthetic else str(src.get("kind")),
        date_start=str(src.get("date_start") or ""),
        date_end=str(src.get("date_end") or ""),
        product_level=str(src.get("product_level") or comp.product_level or ""),
    )


def window_osm(patch: Any) -> tuple[tuple[np.ndarray, tuple[str, ...]] | None, str]:
    """OSM masks of a scan window (``patch``) from the newest OSM fetch cache covering it, rasterized as
    ``asgm osm rasterize`` does by default, and a note saying where they come from — or (None, why not)."""
    from rasterio.warp import transform_bounds
    from shapely.geometry import box

    from asgm.osm.fetch import find_cache_covering, read_vectors
    from asgm.osm.rasterize import RasterizeOptions, rasterize_grids

    footprint = box(*transform_bounds(patch.grid.crs, "EPSG:4326", *patch.grid.bounds))
    path = find_cache_covering(footprint)
    if path is None:
        return None, (
            "No OSM fetch cache covers this window, so no OSM overlays. Fetch OSM for the area with "
            f"`asgm osm fetch --bbox {' '.join(f'{v:.4f}' for v in footprint.bounds)}` (needs the network)."
        )
    options = RasterizeOptions()
    masks = next(iter(rasterize_grids(read_vectors(path), [patch.grid], options)))
    return (masks, options.layers), f"OSM overlays from the cache {path.parent.name} (© OpenStreetMap contributors)."


def window_probabilities(s: FinishedScan) -> np.ndarray:
    """The probability of every window of the scan, (rows, columns); NaN where a window was not scored."""
    return np.asarray(_cells(s.folder)["prob"], dtype=float)


def window_probability(s: FinishedScan, i: int, j: int) -> float | None:
    """The probability the scan recorded for window (i, j) (None when it was not scored)."""
    p = float(_cells(s.folder)["prob"][i, j])
    return None if np.isnan(p) else p


def window_at(grid: scan_windows.ScanGrid, prob: np.ndarray, lon: float, lat: float) -> tuple[int, int] | None:
    """The window (i, j) whose central cell holds (lon, lat): the window the scan scored for that place. None
    outside the grid or where no window was scored (``prob`` NaN: outside the area, or masked)."""
    import math

    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{grid.epsg}", always_xy=True).transform(lon, lat)
    t = grid.cell_transform
    j, i = math.floor((x - t.c) / t.a), math.floor((y - t.f) / t.e)
    if not (0 <= i < grid.ny and 0 <= j < grid.nx) or np.isnan(prob[i, j]):
        return None
    return i, j


def windows_covering(lon: float, lat: float, root: Path | None = None) -> list[tuple[str, int, int]]:
    """(scan name, i, j) of every finished scan with a scored window at (lon, lat), newest scan first: the
    windows a click on the map can open in the Patch viewer."""
    out = []
    for entry in list_scans(root):
        if not entry.finished or not entry.grid:
            continue
        try:
            grid = scan_windows.ScanGrid(**entry.grid)
            hit = window_at(grid, _cells(entry.folder)["prob"], lon, lat)
        except (ScanResultError, TypeError, ValueError):  # a damaged scan is listed as such on the Scan page
            continue
        if hit is not None:
            out.append((entry.name, *hit))
    return out


# -- change between two scans --------------------------------------------------------------------------
def comparable(a: ScanEntry, b: ScanEntry) -> bool:
    """Two different finished scans on the same grid (same area, window and stride) made by the same run (another
    model's differences are not change on the ground)."""
    return (
        a.name != b.name
        and a.finished
        and b.finished
        and a.grid is not None
        and a.grid == b.grid
        and a.run_id == b.run_id
    )


def change(a: str, b: str, root: Path | None = None) -> tuple[dict[str, Any], Any]:
    """``asgm.scan.change.diff_scans`` of scans ``a`` -> ``b`` (written under ``_changes/<a>__<b>``): the report
    and the change polygons (GeoDataFrame, a ``change`` column: new / gone / persistent / unknown)."""
    import geopandas as gpd

    root = Path(root or scans_dir())
    fa, fb = scan_folder(a, root), scan_folder(b, root)
    out = root / "_changes" / f"{a}__{b}"
    report = scan_change.diff_scans(fa, fb, out)
    gdf = gpd.read_file(out / "change.geojson")
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return report, gdf


def change_geojson(report: dict[str, Any]) -> bytes:
    """The ``change.geojson`` a ``change`` wrote (RFC 7946, a ``change`` property per polygon)."""
    return Path(report["files"]["change"]).read_bytes()


def change_table(report: dict[str, Any]) -> pd.DataFrame:
    """Areas (ha) and counts per change class."""
    return pd.DataFrame(
        [
            {"change": k, "area_ha": report[f"{k}_ha"], "polygons": report[f"{k}_count"]}
            for k in ("new", "gone", "persistent", "unknown")
        ]
    )
