"""The review browser tests' shared scenario: the app's folders and a SYNTHETIC mosaic with its area to scan."""

from __future__ import annotations

import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box


def folders(tmp_path) -> dict[str, str]:
    """The app's data and models folders under ``tmp_path``, no first-start preparation."""
    return {
        "ASGM_DATA_DIR": str(tmp_path / "data"),
        "ASGM_MODELS_DIR": str(tmp_path / "models"),
        "ASGM_APP_AUTOPREPARE": "0",
    }


def mosaic(tmp_path, size_px: int, n_mines: int, seed: int):
    """A SYNTHETIC 2022 mosaic near -61.8, 6.4 and the area inside it to scan: ``(mosaic, aoi)``."""
    from asgm.sources.synthetic_mosaic import write_mosaic

    m = write_mosaic(tmp_path / "m.tif", -61.8, 6.4, size_px=size_px, n_mines=n_mines, seed=seed, year=2022)
    with rasterio.open(m.path) as src:
        return m, box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
