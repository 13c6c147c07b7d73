"""The real Sentinel-2 scene of dlr-eoc/ukis-csmask (registry key ``ukis_csmask_scene``, read from the mirror) as
this project holds imagery: its red, green and blue TOA reflectance as store DN of B4, B3, B2, cut into the
400 windows of 48 px at stride 24, either as they are (reflectance, as fetched stores and scans hold pixels)
or pre-encoded as Earth Genome's gallery chips are (8-bit display values -> ``asgm.sources.gallery.to_dn``).

The scene has no georeference: it is placed on a 10 m UTM grid (EPSG:32620, an arbitrary corner) so stores and
a mosaic can hold it. Shared by tests/model/test_encoding.py and benchmarks/false_alarms.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from asgm import registry
from asgm.config import DISPLAY_RGB_8BIT, REFLECTANCE, RGB_BANDS, InputEncoding
from asgm.data.store import Patch, PatchStore, StoreMeta
from asgm.grid import PatchGrid, centre_lonlat

SCENE_KEY = "ukis_csmask_scene"
WINDOW, STRIDE = 48, 24
#: The scene's band order (blue, green, red, nir, swir16, swir22) -> B4, B3, B2.
RGB_OF_SCENE = (2, 1, 0)
EPSG, X0, Y0 = 32620, 600_000.0, 700_000.0


def scene_dn() -> np.ndarray:
    """(3, 512, 512) uint16 DN of B4, B3, B2 (reflectance x 10000, as ``asgm.sources.common`` stores it)."""
    from asgm.sources.common import reflectance_to_dn

    with np.load(registry.get(SCENE_KEY), allow_pickle=False) as z:
        img = z["img"]
    return reflectance_to_dn(img[..., list(RGB_OF_SCENE)].transpose(2, 0, 1))


def as_gallery_chip(dn: np.ndarray) -> np.ndarray:
    """The same pixels as a gallery chip holds them: the 8-bit display value RGB = clip(DN / 3000, 0, 1) x 255
    (rounded), turned into store DN by the gallery packs' own ``to_dn``."""
    from asgm.sources.gallery import to_dn

    levels = DISPLAY_RGB_8BIT.display_levels(dn).astype(np.uint8)  # (3, H, W)
    return to_dn(levels.transpose(1, 2, 0))


def window_origins(size: int = 512) -> list[tuple[int, int]]:
    """(row, col) pixel corners of the windows: 20 x 20 = 400 for the 512-px scene."""
    starts = range(0, size - WINDOW + 1, STRIDE)
    return [(r, c) for r in starts for c in starts]


def window_grid(r: int, c: int) -> PatchGrid:
    return PatchGrid(EPSG, Affine(10.0, 0.0, X0 + c * 10.0, 0.0, -10.0, Y0 - r * 10.0), WINDOW)


def write_store(root: Path, name: str, dn: np.ndarray, encoding: InputEncoding = REFLECTANCE) -> PatchStore:
    """A store of the scene's windows (label 0: no known mining), recording ``encoding``."""
    meta = StoreMeta(
        name=name,
        source="scene",
        bands=RGB_BANDS,
        size=WINDOW,
        product_level="L1C",
        description="real Sentinel-2 scene of dlr-eoc/ukis-csmask, 48-px windows at stride 24",
        encoding=encoding.model_dump(),
    )
    store = PatchStore.create(meta, root=root, overwrite=True)
    patches = []
    for k, (r, c) in enumerate(window_origins(dn.shape[1])):
        grid = window_grid(r, c)
        lon, lat = centre_lonlat(grid)
        patches.append(
            Patch(
                f"w{k:03d}",
                0,
                "scene",
                lon,
                lat,
                grid,
                dn[:, r : r + WINDOW, c : c + WINDOW],
                RGB_BANDS,
                source="scene",
                product_level="L1C",
            )
        )
    store.write_patches(patches)
    return store


def write_mosaic(path: Path, dn: np.ndarray) -> Path:
    """The scene as a uint16 GeoTIFF mosaic (bands named B4, B3, B2) on its UTM grid, for ``asgm scan``."""
    import rasterio

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=dn.shape[2],
        height=dn.shape[1],
        count=3,
        dtype="uint16",
        crs=f"EPSG:{EPSG}",
        transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0),
        nodata=0,
    ) as dst:
        dst.write(dn)
        for i, band in enumerate(RGB_BANDS, start=1):
            dst.set_band_description(i, band)
        dst.update_tags(product_level="L1C")
    return path


def mosaic_aoi(inset_m: float = 100.0):
    """The mosaic's footprint less ``inset_m`` on each side, in lon/lat."""
    from pyproj import Transformer
    from shapely.geometry import box
    from shapely.ops import transform

    utm = box(X0 + inset_m, Y0 - 5120.0 + inset_m, X0 + 5120.0 - inset_m, Y0 - inset_m)
    to_ll = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True).transform
    return transform(to_ll, utm)
