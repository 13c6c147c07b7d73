"""Reading a polygon file a user brings (GeoJSON, GeoPackage, zipped Shapefile, KML) as lon/lat polygons, with
one clear ``PlaceInputError`` for each way it can be wrong, and geometry repair said in notes; the equal-area
projection areas are measured in."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from asgm.data.vector_checks import VectorDataError, check_lonlat
from asgm.errors import AsgmError

#: Areas are measured in WGS 84 / NSIDC EASE-Grid 2.0 Global, a cylindrical equal-area projection valid
#: everywhere (a user boundary may lie outside South America).
EQUAL_AREA_CRS = "EPSG:6933"
#: The largest polygon file accepted (AMW's largest boundary file is 3.6 MB).
MAX_FILE_BYTES = 25 * 1024 * 1024
SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".kml")
_POLYGONAL = ("Polygon", "MultiPolygon")


class PlaceInputError(AsgmError):
    """A detections or boundary input that cannot be used; the message says what is wrong and what to do."""


@dataclass
class PolygonFile:
    """Polygons read from a file: EPSG:4326, valid, polygonal only; ``sha256`` of the bytes read; ``notes``
    say what was changed (invalid geometries repaired, non-polygon features dropped)."""

    gdf: gpd.GeoDataFrame
    sha256: str
    name: str
    notes: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_polygons(source: str | Path | tuple[str, bytes], what: str) -> PolygonFile:
    """The polygons of a file path or of an upload ``(file name, bytes)``; ``what`` names the input in messages
    ("the boundary file", "the detections file"). Raises ``PlaceInputError``."""
    if isinstance(source, tuple):
        name, data = source
        size = len(data)
    else:
        path = Path(source)
        name = path.name
        if not path.is_file():
            raise PlaceInputError(f"{what} {path} does not exist (or is a folder)")
        size = path.stat().st_size
    where = f"{what} {name}"
    if size > MAX_FILE_BYTES:
        raise PlaceInputError(
            f"{where} is {size / 2**20:.1f} MB, over the limit of {MAX_FILE_BYTES // 2**20} MB; "
            "simplify its polygons (e.g. mapshaper, QGIS 'Simplify') or keep only the places needed"
        )
    if not name.lower().endswith(SUFFIXES):
        raise PlaceInputError(
            f"{where}: unknown file type; give GeoJSON (.geojson/.json), GeoPackage (.gpkg), "
            "a zipped Shapefile (.zip) or KML (.kml)"
        )
    if isinstance(source, tuple):
        digest = hashlib.sha256(source[1]).hexdigest()
        reader: Any = io.BytesIO(source[1])
    else:
        digest = file_sha256(Path(source))
        reader = Path(source)
    try:
        gdf = gpd.read_file(reader)
    except Exception as exc:  # pyogrio raises several types for a damaged or unknown file
        raise PlaceInputError(
            f"{where} cannot be read as a polygon file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); check that it is GeoJSON, "
            "GeoPackage, a zipped Shapefile or KML"
        ) from None
    return clean_polygons(gdf, where, digest)


def clean_polygons(gdf: gpd.GeoDataFrame, where: str, digest: str = "") -> PolygonFile:
    """Check and repair polygons already read: refuse empty inputs, points/lines only, no CRS, swapped
    lat/lon and metres labelled as degrees; drop other geometry types (said in notes); reproject to EPSG:4326;
    repair invalid polygons with ``make_valid`` (said in notes)."""
    notes: list[str] = []
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty] if len(gdf) else gdf
    if len(gdf) == 0:
        raise PlaceInputError(f"{where} holds no geometry; give a file of polygons")
    types = gdf.geom_type
    polygonal = types.isin(_POLYGONAL).to_numpy()
    if not polygonal.any():
        found = ", ".join(f"{n} {t}" for t, n in types.value_counts().items())
        raise PlaceInputError(
            f"{where} holds no polygons ({found}); areas need polygons: buffer points or lines "
            "into areas first, or give the polygon layer"
        )
    if not polygonal.all():
        notes.append(f"{where}: {int((~polygonal).sum())} feature(s) that are not polygons were left out")
        gdf = gdf[polygonal]
    _check_coordinates(gdf, where)
    gdf = gdf.to_crs("EPSG:4326") if gdf.crs.to_epsg() != 4326 else gdf
    geoms = gdf.geometry.to_numpy()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = polygonal_part(shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False))
        notes.append(f"{where}: {int(invalid.sum())} invalid polygon(s) repaired with make_valid")
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs="EPSG:4326"))
    return PolygonFile(gdf.reset_index(drop=True), digest, where, notes)


def polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """Each geometry reduced to its polygons (a repaired polygon can come back as a collection with lines)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g.geom_type in _POLYGONAL:
            out[i] = g
        else:
            parts = [p for p in shapely.get_parts(g) if p.geom_type in _POLYGONAL]
            out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _check_coordinates(gdf: gpd.GeoDataFrame, where: str) -> None:
    """No CRS, lat/lon swapped, metres in a lon/lat file: one message each."""
    if gdf.crs is None:
        x0, y0, x1, y1 = gdf.total_bounds
        looks = "metres of a projected CRS" if max(abs(x0), abs(x1), abs(y0), abs(y1)) > 180 else "unknown units"
        raise PlaceInputError(
            f"{where} has no CRS (coordinates {x0:.6g}..{x1:.6g}, {y0:.6g}..{y1:.6g}, {looks}); "
            "save it with its CRS (a Shapefile needs its .prj in the zip)"
        )
    if gdf.crs.to_epsg() == 4326:
        x0, y0, x1, y1 = gdf.total_bounds
        if max(abs(x0), abs(x1)) <= 90 < max(abs(y0), abs(y1)) <= 180:
            raise PlaceInputError(
                f"{where} has latitudes up to {max(abs(y0), abs(y1)):.6g}° but longitudes within "
                "±90°: latitude and longitude look swapped. Save the coordinates in (longitude, "
                "latitude) order, as GeoJSON requires"
            )
    try:
        check_lonlat(gdf, where)
    except VectorDataError as exc:
        raise PlaceInputError(str(exc)) from None


def swapped_overlaps(gdf: gpd.GeoDataFrame, bounds: tuple[float, float, float, float]) -> bool:
    """Whether ``gdf`` (EPSG:4326) misses ``bounds`` but would overlap it with x and y swapped: the sign of a
    file written in (lat, lon) order within the valid ranges."""
    x0, y0, x1, y1 = gdf.total_bounds
    bx0, by0, bx1, by1 = bounds

    def overlaps(a0: float, a1: float, b0: float, b1: float) -> bool:
        return a0 <= b1 and b0 <= a1

    straight = overlaps(x0, x1, bx0, bx1) and overlaps(y0, y1, by0, by1)
    swapped = overlaps(y0, y1, bx0, bx1) and overlaps(x0, x1, by0, by1)
    return swapped and not straight
