"""The SYNTHETIC mosaic: labelled, seeded, mines where the footprints say, masked boxes empty."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import geometry_mask

from asgm.cli import main as cli_main
from asgm.config import S2_BANDS
from asgm.sources.synthetic import SPECTRA
from asgm.sources.synthetic_mosaic import mines_path, write_mosaic


def test_mosaic_is_labelled_seeded_and_draws_its_mines(tmp_path):
    m = write_mosaic(tmp_path / "a.tif", -61.8, 6.4, size_px=520, n_mines=3, seed=4, masked_boxes=[(0.5, 0.5, 1, 1)])
    again = write_mosaic(
        tmp_path / "b.tif", -61.8, 6.4, size_px=520, n_mines=3, seed=4, masked_boxes=[(0.5, 0.5, 1, 1)]
    )
    with rasterio.open(m.path) as src, rasterio.open(again.path) as src2:
        dn = src.read()
        assert np.array_equal(dn, src2.read())
        assert src.descriptions == S2_BANDS and src.tags()["source"] == "synthetic"
        assert "SYNTHETIC" in src.tags()["description"] and src.crs.to_epsg() == m.epsg == 32620
        transform = src.transform
    assert (dn[:, 260:, 260:] == 0).all() and (dn[:, :260, :] > 0).all()
    assert len(m.mines) == 3 and gpd.read_file(mines_path(m.path)).shape[0] == 3
    # Inside a mine footprint, most pixels are bare soil or turbid pond (B12 far above forest's).
    inside = ~geometry_mask(list(m.mines.to_crs(m.epsg).geometry), (520, 520), transform)
    clear = inside & (dn[0] > 0)
    b12 = dn[S2_BANDS.index("B12")][clear]
    assert clear.sum() > 50 and np.mean(b12 > 2 * SPECTRA["forest"][-1]) > 0.6


def test_cli_writes_a_mosaic(tmp_path, capsys):
    assert (
        cli_main(
            ["synthetic", "mosaic", "--out", str(tmp_path / "m.tif"), "--size-px", "300", "--mines", "1", "--json"]
        )
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["synthetic"] is True and r["mines"] == 1 and (tmp_path / "m.mines.geojson").is_file()
