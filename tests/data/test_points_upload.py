"""A user's own point file (GeoJSON or CSV): validated like the study's files, labels required or given."""

from __future__ import annotations

import json

import pytest

from asgm.data.points import POINT_SETS, PointsError, load_points, read_labelled_points, write_points_file


def _geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _pt(lon, lat, **props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def test_csv_with_labels_and_round_trip(tmp_path):
    f = tmp_path / "My Sites.csv"
    f.write_text("name,Lon,lat,label\na,-61.81,6.40,1\nb,-61.79,6.41,0\n")
    pts = read_labelled_points(f)
    assert list(pts.sample_id) == ["my-sites-0000", "my-sites-0001"] and list(pts.label) == [1, 0]
    assert set(pts.set) == {"my-sites"}
    out = write_points_file(pts, tmp_path / "norm" / "my-sites.geojson")
    again = read_labelled_points(out)
    assert list(again.sample_id) == list(pts.sample_id) and list(again.label) == [1, 0]
    assert again[["lon", "lat"]].values.tolist() == pts[["lon", "lat"]].values.tolist()


def test_geojson_label_property_or_one_label_for_all(tmp_path):
    f = _geojson(tmp_path / "p.geojson", [_pt(-61.8, 6.4, label=1), _pt(-61.7, 6.5, label=0)])
    assert list(read_labelled_points(f).label) == [1, 0]
    f2 = _geojson(tmp_path / "q.geojson", [_pt(-61.8, 6.4), _pt(-61.7, 6.5)])
    with pytest.raises(PointsError, match="no 'label' column; add one .* or choose one label"):
        read_labelled_points(f2)
    assert list(read_labelled_points(f2, label=1).label) == [1, 1]
    assert list(
        read_labelled_points(_geojson(tmp_path / "r.geojson", [_pt(-61.8, 6.4, kind=0)]), label_column="kind").label
    ) == [0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("lon,lat,label\n-61.8,6.4,2\n", "labels must be 1 .* or 0"),
        ("lon,lat,label\n-61.8,6.4,yes\n", "labels must be 1"),
        ("x,y,label\n-61.8,6.4,1\n", "no lon or lat column"),
        ("lon,lat,label\n6.4,-161.8,1\n", "out of range .* swapped"),
        ("lon,lat,label\n-61.8,6.4,1\n-61.8,6.4,0\n", "2 duplicate points"),
        ("lon,lat,label\n", "no rows"),
        ("", "not a readable CSV"),
    ],
)
def test_bad_csv_is_one_clear_error(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(PointsError, match=match):
        read_labelled_points(f)


def test_bad_geojson_errors_are_those_of_the_study_reader(tmp_path):
    with pytest.raises(PointsError, match="feature 0 is a Polygon"):
        read_labelled_points(
            _geojson(
                tmp_path / "poly.geojson",
                [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
                        "properties": {"label": 1},
                    }
                ],
            )
        )
    (tmp_path / "junk.geojson").write_text("{nope")
    with pytest.raises(PointsError, match="not valid GeoJSON"):
        read_labelled_points(tmp_path / "junk.geojson")


def test_earth_genome_sets_load_like_the_study_sets(mirror):
    pts = load_points(["eg-positives"])
    assert len(pts) > 0 and set(pts.label) == {1} and pts.sample_id.iloc[0] == "egp-0000"
    assert {"positives", "curated", "random", "eg-positives", "eg-negatives"} == set(POINT_SETS)


def test_patches_fetch_needs_exactly_one_kind_of_points(tmp_path, capsys):
    from asgm.cli import main

    f = tmp_path / "p.csv"
    f.write_text("lon,lat,label\n-61.8,6.4,1\n")
    assert main(["patches", "fetch", "--source", "stac", "--points", "positives", "--points-file", str(f)]) == 1
    assert "either --points SET or --points-file FILE" in capsys.readouterr().err
    assert main(["patches", "fetch", "--source", "stac"]) == 1
    assert "either --points SET or --points-file FILE" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat\n-61.8,6.4\n")
    assert main(["patches", "fetch", "--source", "stac", "--points-file", str(bad)]) == 1
    assert "no 'label' column" in capsys.readouterr().err
