"""A region scan through the Earth Engine stand-in: one computePixels request per tile, on the tile's
exact UTM grid, with the study's recipe; the answer is scored window by window."""

from __future__ import annotations

import json

import ee_fake
import numpy as np
import pytest
from scan_support import detector_run
from shapely.geometry import box

from asgm.config import S2_BANDS
from asgm.scan import driver
from asgm.sources import gee
from asgm.sources.composite import GeeComposite


@pytest.fixture
def fake_ee(local_server, source_env, monkeypatch, tmp_path):
    gee.reset()
    fake = ee_fake.configured(local_server, monkeypatch)
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    yield fake
    gee.reset()


def test_scan_through_the_earth_engine_stand_in(fake_ee, tmp_path):
    run_id = detector_run()
    aoi = box(-61.815, 6.395, -61.805, 6.405)  # ~1.1 km square
    s = driver.scan(aoi, 2021, run_id, tmp_path / "scan", driver.ScanOptions(source="gee", tile_windows=4))
    reqs = fake_ee.pixel_requests()
    assert len(reqs) == s["tiles"] >= 4  # one request per tile
    grids = [r.json()["grid"] for r in reqs]
    assert {g["dimensions"]["width"] for g in grids} == {4 * 24 + 24} and {g["crsCode"] for g in grids} == {
        "EPSG:32620"
    }
    xs = sorted({g["affineTransform"]["translateX"] for g in grids})
    assert np.allclose(np.diff(xs), 4 * 24 * 10)  # tiles step by their windows, overlapping by half a window
    body = reqs[0].json()
    assert body["bandIds"] == list(S2_BANDS) and "2022-01-01" in json.dumps(body["expression"])
    assert s["windows_scored"] == s["windows_aoi"] > 0 and s["windows_masked"] == 0
    assert s["source"]["kind"] == "gee" and s["source"]["product_level"] == "L1C"
    with np.load(tmp_path / "scan" / "cells.npz") as z:
        assert np.isfinite(z["prob"]).sum() == s["windows_scored"]


def test_gee_scan_without_credentials_writes_nothing(source_env, tmp_path, monkeypatch):
    gee.reset()
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    run_id = detector_run()
    out = tmp_path / "scan"
    with pytest.raises(gee.SourceAuthError):
        driver.scan(
            box(-61.815, 6.395, -61.805, 6.405), 2021, run_id, out, driver.ScanOptions(source=GeeComposite(2021))
        )
    assert not out.exists()
    gee.reset()
