"""The state boundary of Bolívar at run time (OSM via the osmnx geocoder), cached, with an offline fallback.

No boundary is shipped: the study's is GADM's, which may not be redistributed (study bug B14, docs/study-bugs.md).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from asgm import atomic
from asgm.config import cache_dir
from asgm.errors import AsgmError

QUERY = "Bolívar, Venezuela"


class BoundaryUnavailable(AsgmError):
    """The boundary could not be fetched (usually: no network)."""


def cached_path() -> Path:
    return cache_dir() / "boundary" / "bolivar_osm.geojson"


def bolivar(timeout: float = 30.0) -> gpd.GeoDataFrame:
    """Bolívar's boundary polygon (EPSG:4326) from OSM (© OpenStreetMap contributors, ODbL), cached."""
    path = cached_path()
    if path.exists():
        return _read_cache(path)
    import osmnx as ox

    ox.settings.requests_timeout = timeout
    try:
        gdf = ox.geocode_to_gdf(QUERY)
    except Exception as exc:  # osmnx surfaces network failures as several exception types
        raise BoundaryUnavailable(
            f"could not fetch the boundary of {QUERY!r} from OpenStreetMap ({type(exc).__name__}: {exc}). "
            "Check the network, or use --boundary extent to work from the extent of the labelled points"
        ) from exc
    gdf = gdf[["geometry"]].to_crs("EPSG:4326")
    with atomic.atomic_path(path, suffix=".geojson") as tmp:
        gdf.to_file(tmp, driver="GeoJSON")
    return gdf


def _read_cache(path: Path) -> gpd.GeoDataFrame:
    """The cached boundary; a damaged cache is a ``BoundaryUnavailable`` saying to delete it."""
    from asgm.data.vector_checks import VectorDataError, check_lonlat

    fix = f"delete {path} to fetch the boundary again (or use --boundary extent offline)"
    try:
        gdf = gpd.read_file(path)
        check_lonlat(gdf, f"the cached boundary {path}")
    except VectorDataError as exc:
        raise BoundaryUnavailable(f"{exc}; {fix}") from None
    except Exception as exc:  # pyogrio raises several types for a damaged file
        raise BoundaryUnavailable(f"the cached boundary {path} is damaged ({type(exc).__name__}); {fix}") from None
    if gdf.empty or not gdf.geometry.notna().any():
        raise BoundaryUnavailable(f"the cached boundary {path} holds no polygon; {fix}")
    return gdf


def extent_of(points: gpd.GeoDataFrame, pad_deg: float = 0.05) -> gpd.GeoDataFrame:
    """Offline fallback: the padded bounding box of a set of points."""
    from shapely.geometry import box

    minx, miny, maxx, maxy = points.to_crs("EPSG:4326").total_bounds
    return gpd.GeoDataFrame(
        geometry=[box(minx - pad_deg, miny - pad_deg, maxx + pad_deg, maxy + pad_deg)], crs="EPSG:4326"
    )
