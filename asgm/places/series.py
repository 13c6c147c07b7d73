"""Detections as a time series for the Map's period slider: Amazon Mining Watch's yearly layers, or the user's own
finished scans of several years (a year's new footprint = what its scans detect outside every earlier year's
detections, ``detections.scan_detections``); which periods a view draws ("cumulative up to" / "new in"); the
detection under a clicked point; the store patch whose footprint covers a point. No Streamlit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from asgm import registry
from asgm.places import periods as P
from asgm.places.detections import SYNTHETIC_NOTE, Detections, DetectionSource, scan_folders
from asgm.places.vectors import EQUAL_AREA_CRS, PlaceInputError

VIEWS = ("cumulative", "new")
#: How far (degrees, ~30 m) a click may fall outside a polygon and still hit it: the map draws polygons
#: simplified by about that much (``export.display_geojson``).
CLICK_TOLERANCE_DEG = 0.0003


@dataclass(frozen=True)
class Series:
    """A detection source whose periods the Map's slider steps through."""

    source: DetectionSource
    periods: tuple[str, ...]
    title: str
    credit: str
    synthetic: bool = False

    @property
    def kind(self) -> str:
        return self.source.kind


def amw_series() -> Series:
    """AMW's nine published layers, 2018 (all mining detected up to 2018) to 2025 Q3 (periods from the registry:
    nothing is read)."""
    return Series(
        DetectionSource("amw"),
        tuple(P.label(c) for c in registry.AMW_PERIODS),
        "AMW detections",
        "Earth Genome, Amazon Mining Watch, CC BY 4.0",
    )


def scan_series(root: Path) -> Series | None:
    """The finished scans under ``root`` (``asgm scan run`` outputs) as a series by scan year, or None when there
    is none. Reads the manifests only; a damaged manifest is skipped (the Places page names it)."""
    try:
        folders = scan_folders(root)
    except PlaceInputError:
        return None
    years, synthetic = set(), False
    for folder in folders:
        try:
            manifest = json.loads((folder / "scan.json").read_text(encoding="utf-8"))
            years.add(str(int(manifest["identity"]["year"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        synthetic |= bool(manifest.get("synthetic"))
    if not years:
        return None
    return Series(
        DetectionSource("scans", root),
        tuple(P.ordered(years)),
        "Your scans' detections" + (" (SYNTHETIC)" if synthetic else ""),
        SYNTHETIC_NOTE if synthetic else "this project's scans of Copernicus Sentinel-2 data",
        synthetic,
    )


def view_periods(periods: tuple[str, ...] | list[str], view: str, period: str) -> list[str]:
    """The periods a view draws: ``cumulative`` = every period up to ``period``; ``new`` = ``period`` alone."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if period not in periods:
        raise P.PeriodError(f"period {period} is not one of {', '.join(periods)}")
    return list(periods[: list(periods).index(period) + 1]) if view == "cumulative" else [period]


def colour_index(periods: tuple[str, ...] | list[str], period: str, n_colours: int) -> int:
    """The colour of ``period`` among ``n_colours`` (a sequential palette, early = first): spread over the whole
    palette whatever the number of periods, the same in every view."""
    i, n = list(periods).index(period), len(periods)
    return 0 if n == 1 else round(i * (n_colours - 1) / (n - 1))


@dataclass(frozen=True)
class DetectionHit:
    """The detection under a click: its period, areas (mined area None where the source has none), for a
    scan's detection its scan, for an AMW detection its layer (registry key) and feature (row in that file), and
    a point inside it (lon, lat) for a review."""

    period: str
    mined_ha: float | None
    footprint_ha: float
    scan: str | None
    layer: str | None = None
    feature: int | None = None
    inside: tuple[float, float] | None = None


class DetectionFinder:
    """The detections of a series, indexed once for clicks."""

    def __init__(self, det: Detections):
        self.gdf = det.gdf
        self._geoms = det.gdf.geometry.to_numpy()
        self._tree = shapely.STRtree(self._geoms)
        self._recency = np.array([y * 10 + q for y, q in det.gdf["period"].map(P.sort_key)], dtype=float)

    def at(self, lon: float, lat: float, periods: list[str]) -> DetectionHit | None:
        """The detection of ``periods`` at (lon, lat): one containing the point, else the nearest within
        ``CLICK_TOLERANCE_DEG``; of several, the most recent period's."""
        pt = shapely.Point(lon, lat)
        idx = self._tree.query(pt, predicate="dwithin", distance=CLICK_TOLERANCE_DEG)
        idx = idx[np.isin(self.gdf["period"].to_numpy()[idx], periods)]
        if not len(idx):
            return None
        dist = shapely.distance(self._geoms[idx], pt)
        # nearest first (0 = inside), then the most recent period
        best = int(idx[np.lexsort((-self._recency[idx], dist))[0]])
        row = self.gdf.iloc[best]
        area = float(gpd.GeoSeries([row.geometry], crs="EPSG:4326").to_crs(EQUAL_AREA_CRS).area.iloc[0]) / 1e4
        mined = float(row["mined_ha"])
        scan = row["scan"] if "scan" in self.gdf.columns else None
        layer = str(row["layer"]) if "layer" in self.gdf.columns else None
        feature = int(row["feature"]) if "feature" in self.gdf.columns else None
        inside = row.geometry.representative_point()
        return DetectionHit(
            str(row["period"]),
            None if np.isnan(mined) else mined,
            area,
            scan,
            layer,
            feature,
            (round(float(inside.x), 6), round(float(inside.y), 6)),
        )


def store_patch_at(index: pd.DataFrame, lon: float, lat: float) -> str | None:
    """The sample id of the store patch (``PatchStore.index`` rows) whose footprint holds (lon, lat): a ``size`` px
    square on its 10 m UTM grid, centred on its point (``asgm.grid.patch_grid``); the nearest centre when several
    do; None when none does."""
    from pyproj import Transformer

    from asgm.grid import RESOLUTION_M, patch_grid

    if index is None or not len(index):
        return None
    # a patch reaches at most size * 10 m / 2 from its point (~0.02° for 384 px): a cheap first cut
    reach = index["size"].astype(float) * RESOLUTION_M / 2 / 111_000 * 1.5
    near = index[
        ((index["lat"] - lat).abs() <= reach)
        & ((index["lon"] - lon).abs() <= reach / max(0.2, float(np.cos(np.radians(lat)))))
    ]
    best: tuple[float, str] | None = None
    for row in near.itertuples(index=False):
        grid = patch_grid(float(row.lon), float(row.lat), int(row.size), epsg=int(row.epsg))
        x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
        w, s, e, n = grid.bounds
        if w <= x <= e and s <= y <= n:
            cx, cy = (w + e) / 2, (s + n) / 2
            d = float(np.hypot(x - cx, y - cy))
            if best is None or d < best[0]:
                best = (d, str(row.sample_id))
    return None if best is None else best[1]
