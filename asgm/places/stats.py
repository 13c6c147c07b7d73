"""Detections x boundaries -> the tidy table of mined area and detected footprint area per place and period.

The rule (Amazon Mining Watch's): each detection polygon counts in a boundary with the share of its area that
lies inside it, areas in an equal-area projection. ``new_mined_ha`` = sum of share x the detection's mined area
(AMW's SAM2-refined ``Mined area (ha)``); ``new_footprint_ha`` = the detection polygons' area inside the
boundary; ``cumulative_*`` = running sums over the periods in order; ``n_detections`` = detections of the period
that reach into the boundary. The table is cached (parquet, keyed by the inputs' sha256) so asking again for
the same inputs reads it back.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from asgm import atomic
from asgm.config import cache_dir
from asgm.places import periods as P
from asgm.places.boundaries import Boundaries, BoundarySource
from asgm.places.detections import Detections, DetectionSource
from asgm.places.vectors import EQUAL_AREA_CRS, PlaceInputError, swapped_overlaps

#: Bump when the table's meaning or columns change: old cache entries are then ignored.
CACHE_VERSION = 1
TABLE_COLUMNS = [
    "boundary_id",
    "name",
    "country",
    "type",
    "status",
    "period",
    "new_mined_ha",
    "cumulative_mined_ha",
    "new_footprint_ha",
    "cumulative_footprint_ha",
    "n_detections",
    "boundary_area_ha",
    "cumulative_mined_pct_of_area",
    "cumulative_footprint_pct_of_area",
]
MEASURES = {
    "mined": "mined area: AMW's SAM2-refined 'Mined area (ha)' of each detection, apportioned by the share of "
    "its polygon inside the boundary",
    "footprint": "detected footprint area: the detection polygons' area inside the boundary",
}


@dataclass
class PlaceStats:
    """The table for every period, and what a reader must know about it."""

    table: pd.DataFrame
    detections: str
    boundaries: str
    has_mined: bool
    synthetic: bool
    credits: list[str]
    notes: list[str] = field(default_factory=list)
    cached: bool = False
    seconds: float = 0.0

    @property
    def periods(self) -> list[str]:
        return P.ordered(self.table["period"])

    def rows(self, periods: str | None = None) -> pd.DataFrame:
        """The table's rows of the periods ``periods`` names (``2018..2025Q3``, ``2024,2025Q2``; None = all)."""
        chosen = P.select(periods, self.periods)
        return self.table[self.table["period"].isin(chosen)].reset_index(drop=True)

    def totals(self, periods: str | None = None) -> pd.DataFrame:
        """One row per boundary over the chosen periods: new areas summed, cumulative at the last period,
        ranked by mined area (footprint where there is none)."""
        rows = self.rows(periods)
        last = rows["period"].map(P.sort_key) == max(rows["period"].map(P.sort_key))
        keys = ["boundary_id", "name", "country", "type", "status"]
        new = rows.groupby("boundary_id", sort=False)[["new_mined_ha", "new_footprint_ha", "n_detections"]].sum(
            min_count=1
        )
        cum = rows[last].set_index("boundary_id")[
            keys[1:]
            + [
                "cumulative_mined_ha",
                "cumulative_footprint_ha",
                "boundary_area_ha",
                "cumulative_mined_pct_of_area",
                "cumulative_footprint_pct_of_area",
            ]
        ]
        out = cum.join(new).reset_index()
        rank = "new_mined_ha" if self.has_mined else "new_footprint_ha"
        out = out.sort_values([rank, "cumulative_footprint_ha"], ascending=False, kind="stable")
        return out[keys + TABLE_COLUMNS[TABLE_COLUMNS.index("new_mined_ha") :]].reset_index(drop=True)

    def summary(self, periods: str | None = None) -> dict[str, Any]:
        """What ``asgm stats --json`` prints."""
        rows = self.rows(periods)
        by_period = rows.groupby("period", sort=False)[["new_mined_ha", "new_footprint_ha", "n_detections"]].sum(
            min_count=1
        )
        return {
            "detections": self.detections,
            "boundaries": self.boundaries,
            "places": int(rows["boundary_id"].nunique()),
            "periods": P.ordered(rows["period"]),
            "places_with_mining": int((rows.groupby("boundary_id")["n_detections"].sum() > 0).sum()),
            "by_period": {
                p: {k: (None if pd.isna(v) else round(float(v), 3)) for k, v in r.items()}
                for p, r in by_period.iterrows()
            },
            "measures": MEASURES if self.has_mined else {"footprint": MEASURES["footprint"]},
            "equal_area_crs": EQUAL_AREA_CRS,
            "synthetic": self.synthetic,
            "notes": self.notes,
            "credits": self.credits,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


def apportion(det: Detections, bnd: Boundaries) -> tuple[pd.DataFrame, list[str]]:
    """The full table (every boundary x every period of ``det``) and notes; raises ``PlaceInputError`` for
    boundaries that look like (lat, lon) files."""
    periods = det.periods
    dgeom = det.gdf.geometry.to_crs(EQUAL_AREA_CRS).to_numpy()
    bgeom = bnd.gdf.geometry.to_crs(EQUAL_AREA_CRS).to_numpy()
    darea = shapely.area(dgeom)
    tree = shapely.STRtree(dgeom)
    bi, di = tree.query(bgeom, predicate="intersects")
    inter = np.zeros(len(bi))
    if len(bi):
        shapely.prepare(bgeom)
        inside = shapely.contains_properly(bgeom[bi], dgeom[di])
        inter[inside] = darea[di[inside]]
        cross = ~inside
        # Only detections crossing an edge need a real intersection (a few % of pairs): fast on 2 cores.
        inter[cross] = shapely.area(shapely.intersection(dgeom[di[cross]], bgeom[bi[cross]]))
        shapely.destroy_prepared(bgeom)
    share = np.divide(inter, darea[di], out=np.zeros(len(bi)), where=darea[di] > 0)
    pairs = pd.DataFrame(
        {
            "boundary_id": bnd.gdf["boundary_id"].to_numpy()[bi],
            "period": det.gdf["period"].to_numpy()[di],
            "new_mined_ha": det.gdf["mined_ha"].to_numpy(dtype=float)[di] * share,
            "new_footprint_ha": inter / 1e4,
            "n_detections": (inter > 0).astype(int),
        }
    )
    summed = pairs.groupby(["boundary_id", "period"])[["new_mined_ha", "new_footprint_ha", "n_detections"]].sum()
    full = pd.MultiIndex.from_product([bnd.gdf["boundary_id"].to_numpy(), periods], names=["boundary_id", "period"])
    table = summed.reindex(full, fill_value=0).reset_index()
    table["n_detections"] = table["n_detections"].astype(int)
    if not det.has_mined:
        table["new_mined_ha"] = np.nan
    table["cumulative_mined_ha"] = table.groupby("boundary_id", sort=False)["new_mined_ha"].cumsum()
    table["cumulative_footprint_ha"] = table.groupby("boundary_id", sort=False)["new_footprint_ha"].cumsum()
    attrs = pd.DataFrame(bnd.gdf.drop(columns=bnd.gdf.geometry.name))
    attrs["boundary_area_ha"] = shapely.area(bgeom) / 1e4
    table = table.merge(
        attrs[["boundary_id", "name", "country", "type", "status", "boundary_area_ha"]], on="boundary_id", how="left"
    )
    table["cumulative_mined_pct_of_area"] = 100 * table["cumulative_mined_ha"] / table["boundary_area_ha"]
    table["cumulative_footprint_pct_of_area"] = 100 * table["cumulative_footprint_ha"] / table["boundary_area_ha"]
    notes = []
    if not (inter > 0).any():
        if len(det.gdf) and swapped_overlaps(bnd.gdf, tuple(det.gdf.total_bounds)):
            raise PlaceInputError(
                f"{bnd.description}: no boundary meets a detection, but with latitude and longitude "
                "swapped they would: save the file's coordinates in (longitude, latitude) order"
            )
        notes.append(
            f"none of the {len(bnd.gdf)} boundaries meets a detection of {det.description}: the table is all zeros"
        )
    return table[TABLE_COLUMNS], notes


def _cache_key(dsrc: DetectionSource, bsrc: BoundarySource) -> str:
    return hashlib.sha256(f"v{CACHE_VERSION}\0{dsrc.key()}\0{bsrc.key()}".encode()).hexdigest()


def cache_folder() -> Path:
    """Where tables are cached (``<data>/cache/places``)."""
    return cache_dir() / "places"


def place_stats(dsrc: DetectionSource, bsrc: BoundarySource, use_cache: bool = True) -> PlaceStats:
    """The table of ``dsrc`` x ``bsrc``: read back from the cache when the same inputs were counted before,
    else computed and cached. Bad inputs raise ``PlaceInputError`` before anything is written."""
    t0 = time.perf_counter()
    key = _cache_key(dsrc, bsrc)
    table_path, meta_path = cache_folder() / f"{key}.parquet", cache_folder() / f"{key}.json"
    if use_cache and table_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            table = pd.read_parquet(table_path)
            if list(table.columns) == TABLE_COLUMNS and isinstance(meta, dict):
                return PlaceStats(table, cached=True, seconds=time.perf_counter() - t0, **meta)
        except (OSError, ValueError, TypeError):  # a damaged cache entry is computed again
            pass
    bnd = bsrc.load()  # boundaries first: a bad upload fails before the detections are read
    det = dsrc.load()
    table, notes = apportion(det, bnd)
    meta = {
        "detections": det.description,
        "boundaries": bnd.description,
        "has_mined": det.has_mined,
        "synthetic": det.synthetic,
        "credits": list(dict.fromkeys([det.credits, bnd.credits])),
        "notes": det.notes + bnd.notes + notes,
    }
    with atomic.atomic_path(table_path, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    atomic.write_json(meta_path, meta)
    return PlaceStats(table, seconds=time.perf_counter() - t0, **meta)
