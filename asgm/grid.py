"""Patch grids: an exact 10 m UTM grid whose centre pixel is centred on the point.

Rule used everywhere (sources, OSM rasterization, tests): for a patch of N pixels, pixel
(row N//2, col N//2) has its centre exactly on the point. This fixes the study's EPSG:4326 grid and
its one-pixel misregistration (study bug B11, docs/study-bugs.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from affine import Affine
from pyproj import Transformer

RESOLUTION_M = 10.0


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding (lon, lat)."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"coordinates out of range: lon={lon}, lat={lat} (lon in [-180, 180], lat in [-90, 90])")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class PatchGrid:
    """CRS, affine transform and shape of one patch."""

    epsg: int
    transform: Affine
    size: int

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the patch CRS."""
        west, north = self.transform.c, self.transform.f
        span = self.size * self.transform.a
        return west, north - span, west + span, north

    def pixel_centre(self, row: int, col: int) -> tuple[float, float]:
        """Projected coordinates of the centre of pixel (row, col)."""
        return self.transform @ (col + 0.5, row + 0.5)


def patch_grid(
    lon: float, lat: float, size: int, resolution: float = RESOLUTION_M, epsg: int | None = None
) -> PatchGrid:
    """The grid of a ``size`` x ``size`` patch whose centre pixel is centred on (lon, lat)."""
    if size < 1:
        raise ValueError(f"patch size must be positive, got {size}")
    epsg = epsg or utm_epsg(lon, lat)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
    half = size // 2
    west = x - (half + 0.5) * resolution
    north = y + (half + 0.5) * resolution
    return PatchGrid(epsg=epsg, transform=Affine(resolution, 0.0, west, 0.0, -resolution, north), size=size)


def centre_lonlat(grid: PatchGrid) -> tuple[float, float]:
    """(lon, lat) of the centre of the centre pixel, i.e. the patch's point."""
    x, y = grid.pixel_centre(grid.size // 2, grid.size // 2)
    return Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
