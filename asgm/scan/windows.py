"""The scan grid: windows of a run's patch size every ``stride`` px on a 10 m UTM grid, and their cells."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from asgm.grid import RESOLUTION_M, PatchGrid
from asgm.scan.area import ScanError


# -- the scan grid -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanGrid:
    """Windows of ``window`` px every ``stride`` px on a 10 m UTM grid; (x0, y0) is window (0, 0)'s corner."""

    epsg: int
    x0: float
    y0: float
    window: int
    stride: int
    ny: int
    nx: int
    tile_windows: int

    @property
    def offset(self) -> int:
        """Pixels from a window's corner to its central cell."""
        return (self.window - self.stride) // 2

    @property
    def cell_transform(self) -> Affine:
        """Transform of the window-probability raster (one stride x stride cell per window)."""
        r, o = RESOLUTION_M, self.offset
        return Affine(self.stride * r, 0.0, self.x0 + o * r, 0.0, -self.stride * r, self.y0 - o * r)

    @property
    def tiles(self) -> list[tuple[int, int]]:
        k = self.tile_windows
        return [(ti, tj) for ti in range(math.ceil(self.ny / k)) for tj in range(math.ceil(self.nx / k))]

    def tile_slices(self, ti: int, tj: int) -> tuple[slice, slice]:
        """The tile's block of the window grid."""
        k = self.tile_windows
        return slice(ti * k, min(self.ny, (ti + 1) * k)), slice(tj * k, min(self.nx, (tj + 1) * k))

    def pixel_grid(self, i: int, j: int, size: int) -> PatchGrid:
        """The ``size`` px square pixel grid whose corner is window (i, j)'s corner."""
        r = RESOLUTION_M
        return PatchGrid(
            self.epsg, Affine(r, 0.0, self.x0 + j * self.stride * r, 0.0, -r, self.y0 - i * self.stride * r), size
        )

    def tile_grid(self, ti: int, tj: int) -> PatchGrid:
        """The square pixel grid a tile reads: its windows plus the overlap they need."""
        k = self.tile_windows
        return self.pixel_grid(ti * k, tj * k, k * self.stride + self.window - self.stride)

    def window_grid(self, i: int, j: int) -> PatchGrid:
        """The pixel grid of window (i, j): what the model scored there."""
        return self.pixel_grid(i, j, self.window)


def make_grid(aoi_utm: Any, epsg: int, window: int, stride: int, tile_windows: int) -> ScanGrid:
    """The scan grid whose cells cover the AOI's bounds (cell corners on the 10 m grid)."""
    if not 1 <= stride <= window:
        raise ScanError(f"stride {stride} must be between 1 and the window size {window} px")
    if tile_windows < 1:
        raise ScanError("tile_windows must be at least 1")
    r = RESOLUTION_M
    w, s, e, n = aoi_utm.bounds
    cx0, cy0 = math.floor(w / r) * r, math.ceil(n / r) * r
    cell = stride * r
    nx, ny = max(1, math.ceil((e - cx0) / cell)), max(1, math.ceil((cy0 - s) / cell))
    off = (window - stride) // 2
    return ScanGrid(epsg, cx0 - off * r, cy0 + off * r, window, stride, ny, nx, tile_windows)


def cells_in_aoi(grid: ScanGrid, aoi_utm: Any) -> np.ndarray:
    """(ny, nx) bool: cells touching the AOI (their windows are scanned)."""
    from rasterio.features import rasterize

    return rasterize(
        [(aoi_utm, 1)],
        out_shape=(grid.ny, grid.nx),
        transform=grid.cell_transform,
        fill=0,
        dtype="uint8",
        all_touched=True,
    ).astype(bool)
