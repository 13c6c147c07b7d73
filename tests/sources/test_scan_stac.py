"""A region scan served through the local STAC stand-in: the SYNTHETIC mosaic's bands as one Level-2A
scene of COGs (offset -0.1 convention, SCL with a cloud box) over real HTTP; the scan reads them with
the STAC source's own search, range reads, SCL masking and median, and must score every clear window
exactly as the scan of the mosaic file does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from scan_support import detector_run
from shapely.geometry import box
from stac_catalogue import COLLECTION, StacApi, _cog_bytes

from asgm.scan import area, driver
from asgm.sources.composite import StacComposite
from asgm.sources.stac import ASSET_KEYS, SCL_ASSET
from asgm.sources.synthetic_mosaic import write_mosaic


def _serve_mosaic(api: StacApi, path: Path, tmp: Path, cloud: tuple[int, int, int, int]) -> None:
    """One 2021 scene whose assets are the mosaic's bands (10 m), DN + 1000 for offset -0.1; SCL 9 in ``cloud``."""
    with rasterio.open(path) as src:
        dn, epsg, tr, bands = src.read(), src.crs.to_epsg(), src.transform, src.descriptions
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    assets = {}
    for band, key in ASSET_KEYS.items():
        arr = np.where(dn[bands.index(band)] > 0, dn[bands.index(band)].astype(np.int32) + 1000, 0)
        api.server.files[f"/cogs/s1/{key}.tif"] = _cog_bytes(arr, epsg, tr, tmp / f"{key}.tif")
        assets[key] = {
            "href": f"{api.url}/cogs/s1/{key}.tif",
            "type": "image/tiff",
            "roles": ["data"],
            "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1}],
        }
    scl = np.full(dn.shape[1:], 4)
    r0, r1, c0, c1 = cloud
    scl[r0:r1, c0:c1] = 9
    api.server.files["/cogs/s1/scl.tif"] = _cog_bytes(scl, epsg, Affine(*tr[:6]), tmp / "scl.tif")
    assets[SCL_ASSET] = {
        "href": f"{api.url}/cogs/s1/scl.tif",
        "type": "image/tiff",
        "roles": ["data"],
        "raster:bands": [{"nodata": 0}],
    }
    api.items.append(
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": "S2_SYNTHETIC_20210705",
            "collection": COLLECTION,
            "bbox": [w, s, e, n],
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            "properties": {"datetime": "2021-07-05T14:30:00Z", "eo:cloud_cover": 5.0},
            "links": [],
            "assets": assets,
        }
    )


def test_scan_through_the_local_stac_api_matches_the_mosaic_scan(local_server, source_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    run_id = detector_run()
    m = write_mosaic(tmp_path / "m.tif", -61.8, 6.4, size_px=480, n_mines=2, seed=5, masked_boxes=[(0, 0, 0.2, 0.2)])
    api = StacApi(local_server, tmp_path)
    _serve_mosaic(api, m.path, tmp_path, cloud=(380, 480, 380, 480))  # a cloud in the bottom-right corner
    with rasterio.open(m.path) as src:
        aoi = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
    ref = driver.scan(aoi, 2021, run_id, tmp_path / "file", driver.ScanOptions(source=str(m.path), tile_windows=8))
    got = driver.scan(
        aoi,
        2021,
        run_id,
        tmp_path / "stac",
        driver.ScanOptions(source=StacComposite(2021, url=api.url), tile_windows=8),
    )
    assert local_server.requests("POST", "/search") or local_server.requests("GET", "/search")
    assert local_server.requests("GET", "/cogs/s1/")  # pixels came over HTTP
    with np.load(tmp_path / "file" / "cells.npz") as a, np.load(tmp_path / "stac" / "cells.npz") as b:
        pa, pb = a["prob"], b["prob"]
    both = np.isfinite(pa) & np.isfinite(pb)
    assert both.sum() > 0.7 * np.isfinite(pa).sum()
    np.testing.assert_allclose(pb[both], pa[both], rtol=0, atol=1e-6)
    # The cloud adds masked windows and pixels on top of the mosaic's own masked corner.
    assert not (np.isfinite(pb) & ~np.isfinite(pa)).any()
    assert got["windows_masked"] > ref["windows_masked"] and got["pixels_masked"] > ref["pixels_masked"]
    assert got["source"]["kind"] == "stac" and got["source"]["product_level"] == "L2A"
    mines = m.mines.to_crs(m.epsg)
    import geopandas as gpd

    det = gpd.read_file(tmp_path / "stac" / "detections.geojson").to_crs(m.epsg)
    assert any(det.intersects(g).any() for g in mines.geometry)


def test_stac_scan_outside_every_scene_is_refused(local_server, source_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    run_id = detector_run()
    StacApi(local_server, tmp_path)  # an API with no scene at all
    out = tmp_path / "scan"
    import pytest

    with pytest.raises(area.AoiError, match="does not reach"):
        driver.scan(
            box(-61.81, 6.39, -61.80, 6.40),
            2021,
            run_id,
            out,
            driver.ScanOptions(source=StacComposite(2021, url=local_server.url)),
        )
    assert not out.exists()
