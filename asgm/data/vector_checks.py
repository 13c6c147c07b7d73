"""Sanity checks of user-supplied vector data that should be lon/lat (EPSG:4326).

A file whose coordinates are NaN, or metres labelled as degrees, or that has no CRS, must be refused with
a message instead of being reprojected into garbage (OSM vectors to rasterize, polygon files, the
boundary cache). Geometry maths stays with its users; this module only says whether the input is sane.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from asgm.errors import AsgmError


class VectorDataError(AsgmError):
    """Vector data that cannot be lon/lat geometries; the message says what is wrong."""


def check_lonlat(gdf: gpd.GeoDataFrame, what: str) -> None:
    """Raise ``VectorDataError`` unless ``gdf`` has a CRS and, once in EPSG:4326, only finite coordinates
    within longitude [-180, 180] and latitude [-90, 90]. ``what`` names the data in the message."""
    if gdf.crs is None:
        raise VectorDataError(f"{what} has no CRS; save it with one (EPSG:4326 lon/lat is simplest)")
    geoms = gdf.geometry.to_numpy()
    coords = shapely.get_coordinates(geoms[~shapely.is_missing(geoms)], include_z=False)
    if len(coords) == 0:
        return
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise VectorDataError(
            f"{what} has {int(bad.sum())} NaN or infinite coordinate(s); fix or drop those features and try again"
        )
    if gdf.crs.to_epsg() != 4326:
        return  # reprojection from a declared projected CRS is trusted; bounds below apply to degrees
    x, y = coords[:, 0], coords[:, 1]
    if (np.abs(x) > 180).any() or (np.abs(y) > 90).any():
        raise VectorDataError(
            f"{what} says EPSG:4326 (lon/lat) but has coordinates up to x={np.abs(x).max():.6g}, "
            f"y={np.abs(y).max():.6g}, beyond ±180/±90: they are probably metres of a projected CRS. "
            "Save the file with its real CRS (or reproject it to EPSG:4326)"
        )
