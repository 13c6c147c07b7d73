"""What the table leaves as: CSV (rounded), the boundaries with their totals as GeoJSON, and as KML for
Google Earth. Bytes for downloads; ``write`` puts them in a file atomically."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from asgm import atomic
from asgm.places.boundaries import Boundaries
from asgm.places.detections import Detections
from asgm.places.stats import PlaceStats

DECIMALS = 3


def table_csv(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV, areas rounded to 3 decimals (1/1000 ha = 10 m²)."""
    return table.round(DECIMALS).to_csv(index=False).encode("utf-8")


def with_totals(
    stats: PlaceStats, bnd: Boundaries, periods: str | None = None, simplify_m: float | None = None
) -> gpd.GeoDataFrame:
    """The boundaries with their totals over ``periods`` (one row each, ranked as ``PlaceStats.totals``);
    ``simplify_m`` simplifies outlines for display (tolerance in metres, approximate)."""
    totals = stats.totals(periods).round(DECIMALS)
    geom = bnd.gdf.set_index("boundary_id").geometry
    if simplify_m:
        geom = geom.simplify(simplify_m / 111_000, preserve_topology=True)
    gdf = gpd.GeoDataFrame(totals, geometry=geom.reindex(totals["boundary_id"]).to_numpy(), crs="EPSG:4326")
    chosen = stats.rows(periods)["period"].unique()
    gdf["periods"] = f"{chosen[0]}..{chosen[-1]}" if len(chosen) > 1 else chosen[0]
    return gdf


def geojson_bytes(gdf: gpd.GeoDataFrame, stats: PlaceStats) -> bytes:
    """RFC 7946 GeoJSON with what the numbers mean and their credits as a foreign member ``asgm``."""
    fc = json.loads(gdf.to_json(drop_id=True, na="null"))
    fc["asgm"] = {
        "detections": stats.detections,
        "boundaries": stats.boundaries,
        "notes": stats.notes,
        "credits": stats.credits,
        "synthetic": stats.synthetic,
    }
    return (json.dumps(fc) + "\n").encode("utf-8")


def kml_bytes(gdf: gpd.GeoDataFrame, stats: PlaceStats) -> bytes:
    """KML (Google Earth): each place named, its totals in the description and as extended data."""
    out = gdf.copy()
    mined = "mined {m} ha new, {c} ha cumulative; " if stats.has_mined else ""
    out["Description"] = [
        (
            mined.format(m=r["new_mined_ha"], c=r["cumulative_mined_ha"])
            + f"detected footprint {r['new_footprint_ha']} ha new, {r['cumulative_footprint_ha']} ha cumulative; "
            f"{r['n_detections']} detections; periods {r['periods']}. " + " ".join(stats.credits)
        )
        for _, r in out.iterrows()
    ]
    out = out.rename(columns={"name": "Name"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "places.kml"
        out.to_file(path, driver="KML")
        return path.read_bytes()


def display_geojson(det: Detections, period: str) -> str:
    """Compact GeoJSON of the detections of one period for a map: simplified (~30 m), coordinates rounded to
    ~10 m, properties ``period``, ``mined_ha``, ``footprint_ha`` (equal-area) and, for scans, ``scan``. Written
    with GEOS's own GeoJSON writer: ``GeoDataFrame.to_json`` takes ~10x longer on AMW's layers."""
    import numpy as np
    import shapely

    from asgm.places.vectors import EQUAL_AREA_CRS

    g = det.gdf[det.gdf["period"] == period]
    footprint = (g.geometry.to_crs(EQUAL_AREA_CRS).area / 1e4).to_numpy()
    geoms = shapely.set_precision(shapely.simplify(g.geometry.to_numpy(), 0.0003, preserve_topology=True), 1e-4)
    texts = shapely.to_geojson(geoms)
    mined = g["mined_ha"].to_numpy(dtype=float)
    label = json.dumps(period)
    # a scan's detection names its scan (the popup says where it comes from)
    scans = [f',"scan":{json.dumps(str(n))}' for n in g["scan"]] if "scan" in g else [""] * len(g)
    feats = [
        f'{{"type":"Feature","properties":{{"period":{label},"mined_ha":'
        f'{"null" if np.isnan(m) else round(float(m), 2)},"footprint_ha":{round(float(a), 1)}{sc}}},"geometry":{t}}}'
        for m, a, sc, t in zip(mined, footprint, scans, texts, strict=True)
    ]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


def write(path: str | Path, data: bytes) -> None:
    atomic.write_bytes(path, data)
