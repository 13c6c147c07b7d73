import json

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from asgm.data import points
from asgm.data.points import PointsError, read_points_file


def test_study_counts_and_stable_ids(mirror):
    pts = points.load_points()
    assert points.summary(pts)["by_set"] == {"positives": 156, "curated": 323, "random": 780}
    assert pts.sample_id.is_unique
    pos = pts[pts.set == "positives"]
    assert pos.sample_id.iloc[7] == "pos-0007" and (pos.label == 1).all()
    # ids follow file order, not load order: reloading one set gives the same ids and coordinates
    again = points.load_points(["positives"])
    assert again.sample_id.tolist() == pos.sample_id.tolist()
    assert np.allclose(again[["lon", "lat"]].to_numpy(), pos[["lon", "lat"]].to_numpy())
    assert pts.crs.to_epsg() == 4326


def _write(tmp_path, obj, name="p.geojson"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _fc(features, crs=None):
    fc = {"type": "FeatureCollection", "features": features}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


def _pt(lon, lat):
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [lon, lat]}}


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("{not json", "not valid GeoJSON"),
        (_fc([]), "no features"),
        (_fc([_pt(-62, 6)], crs="urn:ogc:def:crs:EPSG::32620"), "not WGS 84"),
        (
            _fc(
                [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
                    }
                ]
            ),
            "expected a Point",
        ),
        (_fc([_pt(-62, 6), _pt(600000, 700000)]), "out of range"),
        (_fc([_pt(-62, 6), _pt(-62, 6)]), "duplicate"),
        (_fc([{"type": "Feature", "geometry": {"type": "Point", "coordinates": ["a"]}}]), "malformed coordinates"),
        ({"type": "Feature"}, "FeatureCollection"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, content, message):
    path = _write(tmp_path, content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(PointsError, match=message) as err:
        read_points_file(path, "x", 0, "x")
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(PointsError, match="not found"):
        read_points_file(tmp_path / "nope.geojson", "x", 0, "x")


def test_random_negatives_study_method(mirror):
    pos = points.load_points(["positives"])
    area = gpd.GeoDataFrame(geometry=[box(-64.5, 5.5, -60.5, 8.3)], crs="EPSG:4326")
    a = points.random_negatives(area, pos, seed=42)
    assert len(a) == 5 * len(pos) == 780
    d = points.nearest_distance_m(a[["lon", "lat"]].to_numpy(), pos[["lon", "lat"]].to_numpy())
    assert d.min() >= 2560.0
    assert a.within(area.geometry.iloc[0]).all()
    b = points.random_negatives(area, pos, seed=42)
    assert a.sample_id.tolist() == b.sample_id.tolist()
    assert np.array_equal(a[["lon", "lat"]].to_numpy(), b[["lon", "lat"]].to_numpy())
    c = points.random_negatives(area, pos, seed=43)
    assert not np.array_equal(a[["lon", "lat"]].to_numpy(), c[["lon", "lat"]].to_numpy())
    # grid spacing: nearest neighbours among the drawn points are at least one grid step apart
    own = points.nearest_index_m(a[["lon", "lat"]].to_numpy()[:50], a[["lon", "lat"]].to_numpy()[50:])[1]
    assert own.min() > 2500


def test_random_negatives_cli_records_exact_list(data_env, mirror):
    from asgm.cli import main

    assert main(["points", "random", "--boundary", "extent", "--seed", "5", "--n", "100", "--json"]) == 0
    out = data_env / "data" / "points" / "random_seed5.geojson"
    first = gpd.read_file(out)
    assert len(first) == 100
    assert main(["points", "random", "--boundary", "extent", "--seed", "5", "--n", "100"]) == 0
    assert gpd.read_file(out).equals(first)


def test_distance_helpers_true_metres():
    # one degree of latitude is about 110.6 km at the equator
    d = points.haversine_m(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([1.0]))
    assert 110_000 < d[0] < 111_500
