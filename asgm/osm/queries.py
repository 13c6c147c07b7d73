"""What an OSM fetch asks for: a ``FetchQuery`` cut into parts (one Overpass request each) for a bounding
box, a polygon file, a named area or the footprints of a patch store."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from asgm.osm import OsmFetchError

if TYPE_CHECKING:
    from asgm.data.store import PatchStore


@dataclass
class FetchQuery:
    """What to fetch: the parts (one Overpass request each) and a JSON-able description."""

    kind: str  # bbox | polygon | area | store
    label: str
    parts: list[BaseGeometry]
    description: dict[str, Any] = field(default_factory=dict)
    default_date: str | None = None  # a store's imagery end date

    @property
    def area(self) -> BaseGeometry:
        """The union of the parts (what runway points are clipped to)."""
        return shapely.union_all(self.parts) if self.parts else shapely.Polygon()


def slug(text: str) -> str:
    """``text`` as a short file-name-safe label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "query"


def _grid_parts(area: BaseGeometry, cell_deg: float) -> list[BaseGeometry]:
    """Cut ``area`` (lon/lat) into cells of ``cell_deg``; each non-empty piece is one request.

    0.25° cells (~770 km² at these latitudes) stay under osmnx's 2,500 km² sub-division limit, so
    each cell is exactly one Overpass request and a resumed fetch loses at most one cell.
    """
    if cell_deg <= 0:
        raise OsmFetchError(f"cell size must be positive, got {cell_deg}")
    minx, miny, maxx, maxy = area.bounds
    parts = []
    prepared = prep(area)
    for x in np.arange(math.floor(minx / cell_deg) * cell_deg, maxx, cell_deg):
        for y in np.arange(math.floor(miny / cell_deg) * cell_deg, maxy, cell_deg):
            cell = box(round(x, 9), round(y, 9), round(x + cell_deg, 9), round(y + cell_deg, 9))
            if not prepared.intersects(cell):
                continue
            piece = cell if area.contains(cell) else area.intersection(cell)
            if piece.is_empty or piece.area == 0:
                continue
            if piece.geom_type == "GeometryCollection":
                piece = shapely.union_all([g for g in piece.geoms if g.geom_type in ("Polygon", "MultiPolygon")])
                if piece.is_empty:
                    continue
            parts.append(piece)
    return parts


def bbox_query(west: float, south: float, east: float, north: float, cell_deg: float = 0.25) -> FetchQuery:
    """A lon/lat bounding box."""
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise OsmFetchError(
            f"invalid bounding box west={west} south={south} east={east} north={north}: "
            "give WEST SOUTH EAST NORTH in degrees with west < east and south < north"
        )
    area = box(west, south, east, north)
    return FetchQuery(
        "bbox",
        f"bbox_{west:.3f}_{south:.3f}_{east:.3f}_{north:.3f}",
        _grid_parts(area, cell_deg),
        {"kind": "bbox", "bbox": [west, south, east, north], "cell_deg": cell_deg},
    )


def polygon_query(path: str | Path, cell_deg: float = 0.25) -> FetchQuery:
    """The union of the polygons of a vector file (GeoJSON, GeoPackage, shapefile...)."""
    path = Path(path)
    if not path.is_file():
        raise OsmFetchError(f"polygon file {path} not found")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise OsmFetchError(f"could not read polygon file {path} ({type(exc).__name__}: {exc})") from exc
    if gdf.crs is None:
        raise OsmFetchError(f"{path} has no CRS; save it with one (EPSG:4326 lon/lat is simplest)")
    from asgm.data.vector_checks import VectorDataError, check_lonlat

    try:
        check_lonlat(gdf, f"polygon file {path}")
    except VectorDataError as exc:
        raise OsmFetchError(str(exc)) from None
    area = shapely.make_valid(gdf.to_crs("EPSG:4326").union_all())
    polys = [g for g in shapely.get_parts(area) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        raise OsmFetchError(f"{path} holds no polygons; give a file of Polygon/MultiPolygon features")
    area = shapely.union_all(polys)
    return FetchQuery(
        "polygon",
        slug(path.stem),
        _grid_parts(area, cell_deg),
        {"kind": "polygon", "file": str(path), "bounds": list(area.bounds), "cell_deg": cell_deg},
    )


def area_query(name: str, cell_deg: float = 0.25) -> FetchQuery:
    """A named area: only ``bolivar`` (the state boundary from OSM, cached by ``asgm.data.boundary``)."""
    if name.lower() not in ("bolivar", "bolívar"):
        raise OsmFetchError(f"unknown area {name!r}; use 'bolivar', or --bbox / --polygon for other areas")
    from asgm.data import boundary

    try:
        gdf = boundary.bolivar()
    except boundary.BoundaryUnavailable as exc:
        raise OsmFetchError(f"{exc} (or pass --bbox / --polygon instead of --area)") from exc
    area = gdf.to_crs("EPSG:4326").union_all()
    return FetchQuery(
        "area",
        "bolivar",
        _grid_parts(area, cell_deg),
        {"kind": "area", "area": "bolivar", "bounds": list(area.bounds), "cell_deg": cell_deg},
    )


def store_query(store: PatchStore, pad_m: float = 100.0, batch_deg: float = 0.1) -> FetchQuery:
    """The footprints of a patch store, batched: patches whose centres share a ``batch_deg`` cell
    are fetched with one request for the bounding box of their (padded) footprints, so scattered
    patches cost one small request each and clustered ones share a request."""
    from pyproj import Transformer

    from asgm.grid import patch_grid

    df = store.index()
    if df.empty:
        raise OsmFetchError(f"patch store {store.name!r} has no patches; build it before fetching OSM for it")
    boxes = []
    for epsg, rows in df.groupby("epsg"):
        to_ll = Transformer.from_crs(f"EPSG:{int(epsg)}", "EPSG:4326", always_xy=True)
        for r in rows.itertuples():
            w, s, e, n = patch_grid(float(r.lon), float(r.lat), int(r.size), epsg=int(epsg)).bounds
            w, s, e, n = w - pad_m, s - pad_m, e + pad_m, n + pad_m
            xs, ys = to_ll.transform([w, e, e, w], [s, s, n, n])
            boxes.append((r.lon, r.lat, min(xs), min(ys), max(xs), max(ys)))
    b = pd.DataFrame(boxes, columns=["lon", "lat", "w", "s", "e", "n"])
    b["cell"] = list(zip(np.floor(b.lon / batch_deg).astype(int), np.floor(b.lat / batch_deg).astype(int), strict=True))
    parts = [box(g.w.min(), g.s.min(), g.e.max(), g.n.max()) for _, g in sorted(b.groupby("cell"), key=lambda t: t[0])]
    return FetchQuery(
        "store",
        slug(store.name),
        parts,
        {
            "kind": "store",
            "store": store.name,
            "patches": int(len(df)),
            "pad_m": pad_m,
            "batch_deg": batch_deg,
            "bounds": [float(b.w.min()), float(b.s.min()), float(b.e.max()), float(b.n.max())],
        },
        default_date=store.meta.date_end or None,
    )
