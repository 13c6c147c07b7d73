"""The area of interest of a scan: loaded from GeoJSON, a bbox or a geometry, checked, projected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asgm.config import read_text
from asgm.errors import AsgmError
from asgm.grid import utm_epsg

#: Largest AOI a scan accepts by default (km²): 50 x 50 km, about 43,000 windows at 48 px / 24.
DEFAULT_MAX_AREA_KM2 = 2500.0


class ScanError(AsgmError):
    """A scan that cannot run as asked; the message says what to do."""


class AoiError(ScanError):
    """The area of interest is unusable (empty, invalid, outside the imagery, too large)."""


# -- areas of interest ---------------------------------------------------------------------------
def load_aoi(value: Any) -> Any:
    """A shapely geometry in lon/lat from a geometry, a (west, south, east, north) bbox, a
    ``"w,s,e,n"`` string, or the path of a GeoJSON file (FeatureCollection, Feature or geometry)."""
    from shapely.geometry.base import BaseGeometry

    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return _bbox(*value)
    text = str(value).strip()
    parts = text.split(",")
    if len(parts) == 4 and not Path(text).exists():
        try:
            return _bbox(*(float(p) for p in parts))
        except ValueError:
            pass
    path = Path(text).expanduser()
    if not path.is_file():
        raise AoiError(f"{text!r} is neither a GeoJSON file nor a bbox 'west,south,east,north' in degrees")
    try:
        raw = json.loads(read_text(path))
    except (OSError, ValueError) as exc:
        raise AoiError(
            f"{path} is not readable GeoJSON ({type(exc).__name__}: {exc}); export the area as GeoJSON"
        ) from None
    return aoi_from_geojson(raw, str(path))


def aoi_from_geojson(raw: Any, where: str = "the area") -> Any:
    """A shapely geometry from parsed GeoJSON (FeatureCollection, Feature or geometry; several features are
    merged), e.g. the Map page's drawn shapes; ``where`` names the input in the ``AoiError``."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    try:
        feats = raw.get("features") if raw.get("type") == "FeatureCollection" else [raw]
        geoms = [shape(f["geometry"] if f.get("type") == "Feature" else f) for f in feats if f]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AoiError(
            f"{where} is not readable GeoJSON ({type(exc).__name__}: {exc}); export the area as GeoJSON"
        ) from None
    if not geoms:
        raise AoiError(f"{where} holds no geometry; draw or export a polygon")
    return unary_union(geoms) if len(geoms) > 1 else geoms[0]


def _bbox(w: float, s: float, e: float, n: float) -> Any:
    from shapely.geometry import box

    if not (w < e and s < n):
        raise AoiError(f"bbox {w},{s},{e},{n} is empty: give west,south,east,north with west < east and south < north")
    return box(w, s, e, n)


def check_aoi(geom: Any, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> tuple[Any, float]:
    """Validate an AOI in lon/lat; returns it (polygonal part) and its area in km². Raises ``AoiError``."""
    from shapely.validation import explain_validity

    if geom is None or geom.is_empty:
        raise AoiError("the area of interest is empty; draw or give a polygon")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise AoiError(f"the area of interest is a {geom.geom_type}; a scan needs a Polygon or MultiPolygon")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise AoiError(f"the area's coordinates {geom.bounds} are not lon/lat degrees; give it in EPSG:4326 (lon, lat)")
    if not geom.is_valid:
        raise AoiError(
            f"the area of interest is not a valid polygon ({explain_validity(geom)}); fix it, e.g. remove "
            "the self-intersection in a GIS, and try again"
        )
    if e - w > 6:
        raise AoiError(f"the area spans {e - w:.1f}° of longitude; scans are limited to one UTM zone (6°)")
    epsg = utm_epsg(*geom.centroid.coords[0])
    area = _to_utm(geom, epsg).area / 1e6
    if area <= 0:
        raise AoiError("the area of interest has no area; draw a polygon, not a line")
    if area > max_area_km2:
        raise AoiError(
            f"the area is {area:,.0f} km², over the limit of {max_area_km2:,.0f} km²; split it or raise "
            "the limit (--max-area-km2)"
        )
    return geom, float(area)


def _to_utm(geom: Any, epsg: int) -> Any:
    from pyproj import Transformer
    from shapely.ops import transform

    return transform(Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform, geom)


def check_out_folder(out: str | Path, what: str = "--out") -> Path:
    """``ScanError`` when ``out`` cannot be the folder a scan or change is written into: an existing file, or
    a folder (or its nearest existing parent) this process cannot write. Nothing is created."""
    import os

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ScanError(f"{what} {out} is a file; give a folder to write into")
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ScanError(f"{what} {out}: {probe} is a file, not a folder; give another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ScanError(f"{what} {out}: {probe} is not writable; give a folder you can write to")
    return out


def check_scan_options(batch_size: int, workers: int, scheduler: Any, tile_windows: int = 1) -> None:
    """``ScanError`` for options a scan cannot run with, before anything is read or written."""
    if batch_size < 1:
        raise ScanError(f"--batch-size must be at least 1 (got {batch_size})")
    if workers < 1:
        raise ScanError(f"--workers must be at least 1 (got {workers})")
    if tile_windows < 1:
        raise ScanError(f"--tile-windows must be at least 1 (got {tile_windows})")
    if isinstance(scheduler, str) and scheduler not in ("local",) and "://" not in scheduler:
        raise ScanError(f"--scheduler {scheduler!r} is not 'none', 'local' or a scheduler address like tcp://HOST:8786")
