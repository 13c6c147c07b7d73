"""The Map's period series (asgm.places.series) on small SYNTHETIC scans of three years: periods, the views'
periods, the new footprint per year, the detection under a click, the store patch and the scan windows that cover
a place (``asgm.scan.results.windows_covering``)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scan_series import GRID, cell_centre, write_scan

from asgm import registry
from asgm.grid import patch_grid
from asgm.places import detections as D
from asgm.places import export
from asgm.places import series as SE
from asgm.places.periods import PeriodError
from asgm.scan import results as scan_results

CELL_HA = 240 * 240 / 1e4  # one 24 px window cell at 10 m


@pytest.fixture
def scans(tmp_path):
    root = tmp_path / "scans"
    write_scan(root, "bolivar-2020", 2020, [(1, 1)])
    write_scan(root, "bolivar-2022", 2022, [(1, 1), (4, 4)])  # the 2020 pit, and a new one
    write_scan(root, "bolivar-2024", 2024, [(1, 1), (4, 4), (4, 1)])
    (root / "_changes").mkdir()
    return root


def test_scans_of_three_years_form_a_synthetic_series(scans, tmp_path):
    s = SE.scan_series(scans)
    assert s is not None and s.periods == ("2020", "2022", "2024") and s.synthetic
    assert "SYNTHETIC" in s.title and "SYNTHETIC" in s.credit
    assert SE.scan_series(tmp_path / "nothing") is None
    (tmp_path / "empty").mkdir()
    assert SE.scan_series(tmp_path / "empty") is None
    amw = SE.amw_series()
    assert amw.periods[0] == "2018" and amw.periods[-1] == "2025Q3" and len(amw.periods) == 9


def test_views_and_colours():
    periods = ("2020", "2022", "2024")
    assert SE.view_periods(periods, "cumulative", "2022") == ["2020", "2022"]
    assert SE.view_periods(periods, "new", "2022") == ["2022"]
    with pytest.raises(PeriodError, match="2021 is not one of 2020, 2022, 2024"):
        SE.view_periods(periods, "new", "2021")
    # three periods spread over a 9-colour palette: first, middle, last
    assert [SE.colour_index(periods, p, 9) for p in periods] == [0, 4, 8]
    assert [SE.colour_index(tuple("abcdefghi"), p, 9) for p in "abcdefghi"] == list(range(9))


def test_each_year_draws_only_what_is_new_and_names_its_scan(scans):
    det = D.scan_detections(scans)
    by_period = det.gdf.groupby("period")
    assert by_period.size().to_dict() == {"2020": 1, "2022": 1, "2024": 1}
    assert det.gdf.set_index("period")["scan"].to_dict() == {
        "2020": "bolivar-2020",
        "2022": "bolivar-2022",
        "2024": "bolivar-2024",
    }
    layer = json.loads(export.display_geojson(det, "2022"))
    (feat,) = layer["features"]
    assert feat["properties"]["scan"] == "bolivar-2022" and feat["properties"]["mined_ha"] is None
    assert feat["properties"]["footprint_ha"] == pytest.approx(CELL_HA, rel=0.01)


def test_a_click_finds_the_detection_of_the_drawn_periods(scans):
    finder = SE.DetectionFinder(D.scan_detections(scans))
    lon, lat = cell_centre(4, 4)  # the pit new in 2022
    hit = finder.at(lon, lat, ["2020", "2022"])
    assert (hit.period, hit.mined_ha, hit.scan, hit.layer) == ("2022", None, "bolivar-2022", None)
    assert hit.footprint_ha == pytest.approx(CELL_HA, rel=0.01)
    assert hit.inside is not None and abs(hit.inside[0] - lon) < 0.01 and abs(hit.inside[1] - lat) < 0.01
    assert finder.at(lon, lat, ["2020"]) is None  # not drawn in "cumulative up to 2020"
    assert finder.at(*cell_centre(1, 1), ["2020", "2022", "2024"]).period == "2020"
    assert finder.at(*cell_centre(2, 3), ["2020", "2022", "2024"]) is None  # no detection there


def test_amw_detections_clicked_give_their_mined_area(mirror):
    det = D.amw_detections()
    row = det.gdf[det.gdf["period"] == "2024"].iloc[0]
    p = row.geometry.representative_point()
    hit = SE.DetectionFinder(det).at(p.x, p.y, ["2024"])
    assert hit is not None and hit.period == "2024" and hit.scan is None
    assert hit.mined_ha == pytest.approx(float(row["mined_ha"])) and hit.footprint_ha > hit.mined_ha
    # the id a review records: the feature's row in its pinned layer file, read back from that file
    assert hit.layer == "amw_mining_202400" and hit.feature == int(row["feature"])
    layer = gpd.read_file(registry.get(hit.layer), rows=slice(hit.feature, hit.feature + 1))
    assert layer.geometry.iloc[0].buffer(1e-9).contains(shapely.Point(*hit.inside))


def test_the_scan_windows_covering_a_place(scans):
    lon, lat = cell_centre(4, 1)
    assert sorted(scan_results.windows_covering(lon, lat, scans)) == [
        ("bolivar-2020", 4, 1),
        ("bolivar-2022", 4, 1),
        ("bolivar-2024", 4, 1),
    ]
    assert scan_results.windows_covering(-50.0, -5.0, scans) == []  # far outside the grid
    # a window the scan did not score (NaN) covers nothing
    prob = np.full((GRID.ny, GRID.nx), 0.2)
    prob[4, 1] = np.nan
    assert scan_results.window_at(GRID, prob, lon, lat) is None
    assert scan_results.window_at(GRID, prob, *cell_centre(0, 5)) == (0, 5)


def test_the_store_patch_covering_a_place():
    index = pd.DataFrame(
        {
            "sample_id": ["a", "b", "far"],
            "lon": [-61.80, -61.799, -60.0],
            "lat": [6.40, 6.40, 6.0],
            "epsg": [32620, 32620, 32620],
            "size": [48, 48, 48],
        }
    )
    g = patch_grid(-61.80, 6.40, 48, epsg=32620)
    w, s, e, n = g.bounds
    from pyproj import Transformer

    to_ll = Transformer.from_crs("EPSG:32620", "EPSG:4326", always_xy=True)
    # just inside a's west edge (b's footprint, 110 m east, does not reach there): a
    assert SE.store_patch_at(index, *to_ll.transform(w + 5, (s + n) / 2)) == "a"
    # just outside a's west edge: none
    assert SE.store_patch_at(index, *to_ll.transform(w - 5, (s + n) / 2)) is None
    # between a and b's centres, nearer b: b
    assert SE.store_patch_at(index, -61.7993, 6.40) == "b"
    assert SE.store_patch_at(index.iloc[:0], -61.8, 6.4) is None
