"""``asgm stats``: the real AMW tables through the command, a boundary file of the user's, exports, the cache,
and bad arguments (exit 1, one line, nothing written)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from asgm.cli import main
from asgm.places.stats import TABLE_COLUMNS


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["stats", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stats", "--help"])
    assert exc.value.code == 0 and "--boundaries" in capsys.readouterr().out


def test_amw_territories_table_geojson_kml_then_cached(data_env, tmp_path, capsys):
    out, gj, kml = tmp_path / "o" / "t.csv", tmp_path / "o" / "t.geojson", tmp_path / "o" / "t.kml"
    code, text, err = _run(
        capsys,
        "--detections",
        "amw",
        "--boundaries",
        "territories",
        "--out",
        str(out),
        "--geojson",
        str(gj),
        "--kml",
        str(kml),
        "--json",
    )
    assert code == 0, err
    report = json.loads(text)
    table = pd.read_csv(out)
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 237 * 9
    assert table["period"].astype(str).iloc[:9].tolist() == [
        "2018",
        "2019",
        "2020",
        "2021",
        "2022",
        "2023",
        "2024",
        "2025Q2",
        "2025Q3",
    ]
    assert report["places"] == 237 and not report["cached"] and "Amazon Mining Watch" in " ".join(report["credits"])
    pemon = table[table["boundary_id"] == "VE50061_0"]
    assert pemon["cumulative_mined_ha"].iloc[-1] == pytest.approx(pemon["new_mined_ha"].sum(), rel=1e-6)
    places = gpd.read_file(gj)
    assert len(places) == 237 and places.iloc[0]["new_mined_ha"] == max(places["new_mined_ha"])
    assert "<kml" in kml.read_text()[:200] and "Territorio tradicional Pemon" in kml.read_text()
    code, text, _ = _run(
        capsys, "--boundaries", "territories", "--periods", "2024..", "--out", str(tmp_path / "t2.csv"), "--json"
    )
    assert code == 0 and json.loads(text)["cached"] and json.loads(text)["periods"] == ["2024", "2025Q2", "2025Q3"]


def test_a_boundary_file_of_the_user(data_env, tmp_path, capsys):
    dets = tmp_path / "d.geojson"
    gpd.GeoDataFrame(
        {"Mined area (ha)": [4.0, 1.0], "year": [2019, 2020]},
        geometry=[box(0, 0, 0.01, 0.01), box(0.5, 0.5, 0.51, 0.51)],
        crs="EPSG:4326",
    ).to_file(dets)
    bnds = tmp_path / "parks.gpkg"
    gpd.GeoDataFrame(
        {"park": ["West", "Far"]}, geometry=[box(-1, -1, 0.005, 1), box(5, 5, 6, 6)], crs="EPSG:4326"
    ).to_file(bnds, driver="GPKG")
    out = tmp_path / "p.csv"
    code, text, err = _run(
        capsys, "--detections", str(dets), "--boundaries", str(bnds), "--name-column", "park", "--out", str(out)
    )
    assert code == 0, err
    table = pd.read_csv(out)
    west = table[table["name"] == "West"].set_index("period")
    assert west.loc[2019, "new_mined_ha"] == pytest.approx(2.0) and west.loc[
        2020, "cumulative_mined_ha"
    ] == pytest.approx(2.0)
    assert (table[table["name"] == "Far"]["n_detections"] == 0).all()
    assert "West" in text and "credits" in text


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--boundaries", "territories", "--name-column", "x"], "--name-column is for a boundary file"),
        (["--boundaries", "nowhere.geojson"], "not one of territories"),
        (["--boundaries", "POINTS", "--name-column", "name"], "holds no polygons"),
        (["--boundaries", "POLYS", "--name-column", "nom"], "no column 'nom'"),
        (["--boundaries", "POLYS", "--periods", "2030"], "not in the detections"),
        (["--detections", "EMPTYDIR", "--boundaries", "basin"], "holds no finished scan"),
    ],
)
def test_bad_arguments_exit_1_and_write_nothing(extra, message, data_env, tmp_path, capsys):
    points, polys = tmp_path / "pts.geojson", tmp_path / "polys.geojson"
    gpd.GeoDataFrame({"name": ["p"]}, geometry=gpd.points_from_xy([-60], [-5]), crs="EPSG:4326").to_file(points)
    gpd.GeoDataFrame({"name": ["p"]}, geometry=[box(-61, -6, -59, -4)], crs="EPSG:4326").to_file(polys)
    (tmp_path / "empty").mkdir()
    subst = {"POINTS": str(points), "POLYS": str(polys), "EMPTYDIR": str(tmp_path / "empty")}
    out = tmp_path / "out" / "t.csv"
    code, _, err = _run(capsys, *[subst.get(a, a) for a in extra], "--out", str(out))
    assert code == 1 and message in err and err.count("\n") == 1
    assert not out.parent.exists()


def test_existing_out_needs_force(data_env, tmp_path, capsys):
    out = tmp_path / "t.csv"
    out.write_text("keep")
    code, _, err = _run(capsys, "--boundaries", "basin", "--out", str(out))
    assert code == 1 and "--force" in err and out.read_text() == "keep"
