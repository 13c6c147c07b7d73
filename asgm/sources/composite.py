"""Sentinel-2 composites of a whole area, read tile by tile onto a scan grid (``asgm.scan``).

Three kinds, all returning uint16 DN (reflectance x 10000, 0 = masked) for any square ``PatchGrid``:

- ``MosaicComposite``: a local GeoTIFF/COG mosaic given by path (warped onto the tile grid by GDAL,
  reading only the blocks under the tile). Band names come from the band descriptions; a 12-band file
  without them is taken to be in the study's band order.
- ``StacComposite``: the STAC source's per-pixel median of SCL-masked Level-2A scenes (no account).
- ``GeeComposite``: the Earth Engine source's Cloud Score+ median of Level-1C (needs credentials).

A composite holds only settings (no open handles), so it can be sent to Dask workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from asgm.config import S2_BANDS
from asgm.grid import PatchGrid
from asgm.sources.common import CloudyCompositeError, NoSceneError, SourceError


class Composite(Protocol):
    """What a region scan needs from a composite source."""

    name: str
    bands: tuple[str, ...]
    product_level: str
    synthetic: bool

    def read(self, grid: PatchGrid) -> np.ndarray:
        """(bands, H, W) uint16 DN on ``grid``; 0 where masked or outside the imagery."""
        ...

    def covers(self, footprint_lonlat: Any, grid: PatchGrid) -> bool:
        """False when the imagery surely does not reach the area (checked before anything is written)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able settings, recorded in the scan's manifest."""
        ...


def year_range(year: int) -> tuple[str, str]:
    """[start, end) dates of a calendar year (the end is exclusive, as everywhere in the sources)."""
    if not 2015 <= int(year) <= 2100:
        raise SourceError(f"year {year} is outside the Sentinel-2 era; pick a year from 2015 on")
    return f"{int(year)}-01-01", f"{int(year) + 1}-01-01"


@dataclass
class MosaicComposite:
    """A local GeoTIFF/COG mosaic (DN in the store's pixel format)."""

    path: str
    name: str = "mosaic"
    bands: tuple[str, ...] = ()
    product_level: str = ""
    synthetic: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> MosaicComposite:
        """Check the file and read its band names and tags (``SourceError`` when unusable)."""
        import rasterio
        from rasterio.errors import RasterioIOError

        path = Path(path).expanduser()
        if not path.is_file():
            raise SourceError(f"no mosaic file at {path}; give the path of a GeoTIFF/COG mosaic")
        try:
            with rasterio.open(path) as src:
                desc, tags, count, crs, dtype = src.descriptions, src.tags(), src.count, src.crs, src.dtypes[0]
        except RasterioIOError as exc:
            raise SourceError(f"{path} is not a readable GeoTIFF ({exc})") from None
        if crs is None:
            raise SourceError(f"{path} has no coordinate reference system; georeference it first")
        if dtype != "uint16":
            raise SourceError(
                f"{path} holds {dtype} pixels; the scan needs uint16 DN (reflectance x 10000, 0 = no data)"
            )
        if all(desc) and len(set(desc)) == count:
            bands = tuple(str(d) for d in desc)
        elif count == len(S2_BANDS):
            bands = S2_BANDS
        else:
            raise SourceError(
                f"{path} has {count} bands without names; name them (band descriptions B1, B2, ...) "
                f"or give the 12 study bands in order {list(S2_BANDS)}"
            )
        synthetic = tags.get("source") == "synthetic" or tags.get("synthetic") == "true"
        return cls(
            str(path),
            "synthetic-mosaic" if synthetic else "mosaic",
            bands,
            tags.get("product_level", ""),
            synthetic,
            tags,
        )

    def read(self, grid: PatchGrid) -> np.ndarray:
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        with (
            rasterio.open(self.path) as src,
            WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.size,
                height=grid.size,
                resampling=Resampling.nearest,
                src_nodata=0,
                nodata=0,
            ) as vrt,
        ):
            return vrt.read()

    def covers(self, footprint_lonlat: Any, grid: PatchGrid) -> bool:
        import rasterio
        from rasterio.warp import transform_bounds
        from shapely.geometry import box

        with rasterio.open(self.path) as src:
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        return bool(box(*bounds).intersects(footprint_lonlat))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "mosaic",
            "path": self.path,
            "bands": list(self.bands),
            "product_level": self.product_level,
            "synthetic": self.synthetic,
            "date_start": self.tags.get("date_start"),
            "date_end": self.tags.get("date_end"),
        }


@dataclass
class StacComposite:
    """The STAC source's median composite (Level-2A, no account), read per tile."""

    year: int
    url: str | None = None
    collection: str | None = None
    name: str = "stac"
    bands: tuple[str, ...] = S2_BANDS
    product_level: str = "L2A"
    synthetic: bool = False

    def source(self, size: int) -> Any:
        return _stac_source(self.year, self.url, self.collection, size)

    def read(self, grid: PatchGrid) -> np.ndarray:
        try:
            return self.source(grid.size).composite_dn(grid, f"tile at {grid.transform.c:.0f}, {grid.transform.f:.0f}")
        except (NoSceneError, CloudyCompositeError):
            return np.zeros((len(self.bands), grid.size, grid.size), np.uint16)  # reported as masked

    def covers(self, footprint_lonlat: Any, grid: PatchGrid) -> bool:
        return bool(self.source(grid.size).search(grid))

    def describe(self) -> dict[str, Any]:
        src = self.source(48)
        return {
            "kind": "stac",
            "url": src.url,
            "collection": src.collection,
            "date_start": src.start,
            "date_end": src.end,
            "product_level": self.product_level,
            **{"settings": src.store_extra()},
        }


@dataclass
class GeeComposite:
    """The Earth Engine source's Cloud Score+ median composite (Level-1C, needs credentials), per tile."""

    year: int
    name: str = "gee"
    bands: tuple[str, ...] = S2_BANDS
    product_level: str = "L1C"
    synthetic: bool = False

    def source(self, size: int) -> Any:
        from asgm.sources.gee_fetch import GeeSource

        start, end = year_range(self.year)
        return GeeSource(size, start, end)

    def read(self, grid: PatchGrid) -> np.ndarray:
        try:
            return self.source(grid.size).composite_dn(grid, f"tile at {grid.transform.c:.0f}, {grid.transform.f:.0f}")
        except (NoSceneError, CloudyCompositeError):
            return np.zeros((len(self.bands), grid.size, grid.size), np.uint16)

    def covers(self, footprint_lonlat: Any, grid: PatchGrid) -> bool:
        self.source(48).connect()  # credentials are checked before anything is written
        return True  # Sentinel-2 covers all land; a scene-less tile comes back masked and is reported

    def describe(self) -> dict[str, Any]:
        start, end = year_range(self.year)
        return {"kind": "gee", "date_start": start, "date_end": end, "product_level": self.product_level}


@lru_cache(maxsize=8)
def _stac_source(year: int, url: str | None, collection: str | None, size: int) -> Any:
    """One StacSource per settings and process: it keeps its API connection between tiles."""
    from asgm.sources.stac import COLLECTION, StacSource, stac_url

    start, end = year_range(year)
    return StacSource(size, start, end, url=url or stac_url(), collection=collection or COLLECTION)


def open_composite(spec: str | Path | Composite, year: int, stac_url: str | None = None) -> Composite:
    """``spec``: a path to a GeoTIFF/COG mosaic, ``"stac"`` (Earth Search, or ``stac_url``), ``"gee"``,
    or a ready composite object."""
    if not isinstance(spec, (str, Path)):
        return spec
    text = str(spec)
    if text == "stac":
        return StacComposite(int(year), url=stac_url)
    if text == "gee":
        year_range(year)
        return GeeComposite(int(year))
    return MosaicComposite.open(text)
