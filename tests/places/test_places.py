"""Place statistics (asgm.places): AMW's published tables reproduced from AMW's layers, the apportioning rule on
hand-made polygons whose answer is arithmetic, scans as detections, the cache, and bad inputs."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from asgm import registry
from asgm.places import boundaries as B
from asgm.places import detections as D
from asgm.places import periods as P
from asgm.places import stats as S
from asgm.places.vectors import EQUAL_AREA_CRS, MAX_FILE_BYTES, PlaceInputError


# -- reproduction of AMW's published tables -------------------------------------------------------------------
@pytest.fixture(scope="module")
def amw(mirror):
    return D.amw_detections()


def _published(key: str) -> pd.Series:
    ref = pd.read_csv(registry.get(key))
    ref["period"] = ref["admin_year"].map(P.label)
    return ref.groupby(["id", "period"])["intersected_area_ha"].sum()


def _compare(table: pd.DataFrame, key: str) -> pd.DataFrame:
    ours = table.set_index(["boundary_id", "period"])["new_mined_ha"]
    ref = _published(key)
    both = pd.concat([ours.rename("ours"), ref.rename("published")], axis=1).fillna(0.0)
    both["rel_diff"] = (both["ours"] - both["published"]).abs() / both["published"].where(both["published"] > 0)
    return both


def _report(both: pd.DataFrame, what: str) -> str:
    off = both[~(both["rel_diff"] <= 0.01)]
    return f"{what}: pairs differing by more than 1 %:\n" + off.round(3).to_string()


def test_territories_reproduce_amw_table(amw):
    table, notes = S.apportion(amw, B.amw_territories())
    both = _compare(table, "amw_territories_table")
    big = both[both["published"] >= 10]
    within = (big["rel_diff"] <= 0.01).mean()
    print(_report(big, "territories"), f"\n{(big['rel_diff'] <= 0.01).sum()} of {len(big)} pairs >= 10 ha within 1 %")
    assert len(big) > 300  # the published table really was read
    assert within >= 0.95, _report(big, "territories")
    totals = both.groupby(level="period")[["ours", "published"]].sum()
    assert ((totals["ours"] - totals["published"]).abs() / totals["published"]).max() <= 0.02, totals
    assert notes == []


def test_countries_reproduce_amw_table(amw):
    table, _ = S.apportion(amw, B.amw_countries())
    both = _compare(table, "amw_countries_table")
    within = (both["rel_diff"] <= 0.01).mean()
    print(_report(both, "countries"), f"\n{(both['rel_diff'] <= 0.01).sum()} of {len(both)} pairs within 1 %")
    assert len(both) == 90 and both["published"].gt(0).all()
    assert within >= 0.90, _report(both, "countries")
    totals = both.groupby(level="period")[["ours", "published"]].sum()
    assert ((totals["ours"] - totals["published"]).abs() / totals["published"]).max() <= 0.02, totals


# -- the rule on hand-made polygons ----------------------------------------------------------------------------
def _det(rows: list[tuple[str, float, object]], has_mined: bool = True) -> D.Detections:
    gdf = gpd.GeoDataFrame(
        {"period": [r[0] for r in rows], "mined_ha": [r[1] for r in rows]},
        geometry=[r[2] for r in rows],
        crs="EPSG:4326",
    )
    return D.Detections(gdf, "hand-made detections", has_mined, "test")


def _bnd(geoms: list[object], names: list[str] | None = None) -> B.Boundaries:
    n = len(geoms)
    gdf = gpd.GeoDataFrame(
        {
            "boundary_id": [f"b{i}" for i in range(n)],
            "name": names or [f"B{i}" for i in range(n)],
            "country": [None] * n,
            "type": [None] * n,
            "status": [None] * n,
            "source": ["t"] * n,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    return B.Boundaries(gdf, "hand-made boundaries", "test")


def _ea_ha(geom) -> float:
    return float(gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(EQUAL_AREA_CRS).area.iloc[0]) / 1e4


def _row(table: pd.DataFrame, bid: str, period: str) -> pd.Series:
    return table[(table["boundary_id"] == bid) & (table["period"] == period)].iloc[0]


def test_a_square_half_inside_gets_half_its_area():
    square = box(-60.0, -5.0, -59.99, -4.99)
    left_half = box(-61.0, -6.0, -59.995, -4.0)  # the boundary ends at the square's middle meridian
    table, _ = S.apportion(_det([("2020", 10.0, square)]), _bnd([left_half]))
    r = _row(table, "b0", "2020")
    assert r["new_mined_ha"] == pytest.approx(5.0, rel=1e-6)
    assert r["new_footprint_ha"] == pytest.approx(_ea_ha(square) / 2, rel=1e-6)
    assert r["n_detections"] == 1
    assert r["boundary_area_ha"] == pytest.approx(_ea_ha(left_half), rel=1e-9)


def test_shares_split_between_two_boundaries_and_cumulate_over_periods():
    a = box(0.0, 0.0, 0.03, 0.01)  # a strip: a quarter in the west boundary, three quarters in the east one
    b = box(0.0, 0.0, 0.01, 0.01)
    west, east = box(-1, -1, 0.0075, 1), box(0.0075, -1, 1, 1)
    det = _det(
        [
            ("2018", 8.0, box(0.0, 0.0, 0.01, 0.01)),
            ("2019", 4.0, a),
            ("2019", 2.0, b),
            ("2020", 1.0, box(5, 5, 5.01, 5.01)),
        ]
    )
    table, notes = S.apportion(det, _bnd([west, east]))
    assert _row(table, "b0", "2018")["new_mined_ha"] == pytest.approx(8 * 0.75)
    assert _row(table, "b1", "2018")["new_mined_ha"] == pytest.approx(8 * 0.25)
    assert _row(table, "b0", "2019")["new_mined_ha"] == pytest.approx(4 * 0.25 + 2 * 0.75)
    assert _row(table, "b1", "2019")["cumulative_mined_ha"] == pytest.approx(8 * 0.25 + 4 * 0.75 + 2 * 0.25)
    assert _row(table, "b0", "2020")["n_detections"] == 0  # the 2020 detection is far away
    assert _row(table, "b0", "2020")["cumulative_mined_ha"] == _row(table, "b0", "2019")["cumulative_mined_ha"]
    per_period = table.groupby("period")["new_mined_ha"].sum()
    assert per_period["2018"] == pytest.approx(8) and per_period["2019"] == pytest.approx(6)
    assert list(table.columns) == S.TABLE_COLUMNS and notes == []


def test_no_boundary_meeting_a_detection_is_a_table_of_zeros_said_so():
    table, notes = S.apportion(_det([("2020", 3.0, box(0, 0, 0.01, 0.01))]), _bnd([box(10, 10, 11, 11)]))
    assert (table["new_mined_ha"] == 0).all() and (table["n_detections"] == 0).all()
    assert "all zeros" in notes[0]


def test_swapped_boundaries_are_refused_by_the_detections_they_miss():
    det = _det([("2020", 3.0, box(-60.0, -5.0, -59.99, -4.99))])
    with pytest.raises(PlaceInputError, match="swapped"):
        S.apportion(det, _bnd([box(-5.5, -60.5, -4.5, -59.5)]))  # (lat, lon) of a box around the detection


def test_invalid_boundary_is_repaired_and_said(data_env, tmp_path):
    bowtie = shapely.Polygon([(0, 0), (0.02, 0.02), (0.02, 0), (0, 0.02)])
    path = tmp_path / "bowtie.geojson"
    gpd.GeoDataFrame({"name": ["tie"]}, geometry=[bowtie], crs="EPSG:4326").to_file(path)
    bnd = B.file_boundaries(path, "name")
    assert any("make_valid" in n for n in bnd.notes)
    assert bnd.gdf.geometry.is_valid.all()
    det = _det([("2020", 4.0, box(0, 0, 0.02, 0.02))])
    table, _ = S.apportion(det, bnd)
    assert _row(table, "1", "2020")["new_mined_ha"] == pytest.approx(2.0, rel=1e-3)  # the bow tie is half the square


def test_periods():
    assert P.label(202400) == "2024" and P.label("202502") == "2025Q2" and P.label("2025q3") == "2025Q3"
    avail = ["2025Q3", "2018", "2019", "2024", "2025Q2"]
    assert P.select("2019..2025Q2", avail) == ["2019", "2024", "2025Q2"]
    assert P.select("..2019", avail) == ["2018", "2019"] and P.select(None, avail)[-1] == "2025Q3"
    assert P.select("2024,2018", avail) == ["2018", "2024"]
    with pytest.raises(P.PeriodError, match="not in the detections"):
        P.select("2017", avail)
    with pytest.raises(P.PeriodError, match="not a period"):
        P.select("last year", avail)


# -- sources: files, scans; the cache ------------------------------------------------------------------------
def _write(path: Path, gdf: gpd.GeoDataFrame) -> Path:
    gdf.to_file(path)
    return path


def test_file_detections_without_area_column_count_footprint_and_say_so(data_env, tmp_path):
    square = box(-60.0, -5.0, -59.99, -4.99)
    dets = _write(tmp_path / "d.geojson", gpd.GeoDataFrame({"year": [2021]}, geometry=[square], crs="EPSG:4326"))
    bnds = _write(
        tmp_path / "b.geojson",
        gpd.GeoDataFrame({"NAME": ["west"]}, geometry=[box(-61, -6, -59.995, -4)], crs="EPSG:4326"),
    )
    res = S.place_stats(D.detection_source(str(dets)), B.boundary_source(str(bnds)))
    r = res.table.iloc[0]
    assert r["period"] == "2021" and r["name"] == "west" and np.isnan(r["new_mined_ha"])
    assert r["new_footprint_ha"] == pytest.approx(_ea_ha(square) / 2, rel=1e-6)
    assert any("no mined-area column" in n for n in res.notes) and not res.has_mined


def test_second_call_reads_the_cache(data_env, tmp_path):
    dets = _write(
        tmp_path / "d.geojson",
        gpd.GeoDataFrame(
            {"Mined area (ha)": [2.0], "year": [202400]}, geometry=[box(0, 0, 0.01, 0.01)], crs="EPSG:4326"
        ),
    )
    bnds = _write(
        tmp_path / "b.geojson", gpd.GeoDataFrame({"nm": ["x"]}, geometry=[box(-1, -1, 1, 1)], crs="EPSG:4326")
    )
    dsrc, bsrc = D.detection_source(str(dets)), B.boundary_source(str(bnds), "nm")
    first = S.place_stats(dsrc, bsrc)
    t0 = time.perf_counter()
    second = S.place_stats(dsrc, bsrc)
    assert not first.cached and second.cached and time.perf_counter() - t0 <= 1.0
    pd.testing.assert_frame_equal(first.table, second.table)
    assert second.table["new_mined_ha"].iloc[0] == pytest.approx(2.0)
    # another name column is another table
    assert not S.place_stats(dsrc, B.boundary_source(str(bnds), None)).cached


def _scan(folder: Path, year: int, geoms: list[object], synthetic: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "scan.json").write_text(json.dumps({"identity": {"year": year}, "synthetic": synthetic}))
    (folder / "summary.json").write_text("{}")
    gdf = gpd.GeoDataFrame({"area_ha": [1.0] * len(geoms)}, geometry=geoms, crs="EPSG:4326")
    (folder / "detections.geojson").write_text(
        gdf.to_json() if len(geoms) else '{"type": "FeatureCollection", "features": []}'
    )
    return folder


def test_scans_of_two_years_give_new_footprint_since_the_first(data_env, tmp_path):
    a, b = box(0, 0, 0.01, 0.01), box(0.005, 0, 0.015, 0.01)  # 2024's detection half overlaps 2023's
    _scan(tmp_path / "scans" / "y2023", 2023, [a])
    _scan(tmp_path / "scans" / "y2024", 2024, [b], synthetic=True)
    (tmp_path / "scans" / "_changes").mkdir()
    res = S.place_stats(
        D.detection_source(str(tmp_path / "scans")),
        B.BoundarySource(
            "file",
            upload=(
                "b.geojson",
                gpd.GeoDataFrame({"name": ["all"]}, geometry=[box(-1, -1, 1, 1)], crs="EPSG:4326")
                .to_json(drop_id=True)
                .encode(),
            ),
        ),
    )
    r23, r24 = _row(res.table, "1", "2023"), _row(res.table, "1", "2024")
    assert r23["new_footprint_ha"] == pytest.approx(_ea_ha(a), rel=1e-6)
    assert r24["new_footprint_ha"] == pytest.approx(_ea_ha(a) / 2, rel=1e-6)
    assert r24["cumulative_footprint_ha"] == pytest.approx(_ea_ha(shapely.union(a, b)), rel=1e-6)
    assert np.isnan(r24["new_mined_ha"]) and res.synthetic and "SYNTHETIC" in res.notes[0]


# -- bad inputs: one clear message, nothing written ------------------------------------------------------------
def _zip_shapefile(tmp_path: Path, drop_prj: bool) -> Path:
    shp = tmp_path / "shp" / "b.shp"
    shp.parent.mkdir()
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(500000, 9400000, 510000, 9410000)], crs="EPSG:32720").to_file(shp)
    out = tmp_path / "b.zip"
    with zipfile.ZipFile(out, "w") as z:
        for f in shp.parent.iterdir():
            if not (drop_prj and f.suffix == ".prj"):
                z.write(f, f.name)
    return out


BAD = {
    "no polygons": ('{"type": "FeatureCollection", "features": []}', "holds no geometry"),
    "points only": (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": '
        '{"type": "Point", "coordinates": [-60, -5]}}]}',
        "holds no polygons (1 Point)",
    ),
    "lines only": (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": '
        '{"type": "LineString", "coordinates": [[-60, -5], [-59, -4]]}}]}',
        "holds no polygons (1 LineString)",
    ),
    "metres in WGS 84": (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": '
        '{"type": "Polygon", "coordinates": [[[500000, 9400000], [510000, 9400000], [510000, 9410000], '
        "[500000, 9400000]]]}}]}",
        "probably metres",
    ),
    "lat/lon swapped beyond 90": (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        '"geometry": {"type": "Polygon", "coordinates": [[[-5, -120], [-4, -120], [-4, -119], '
        "[-5, -120]]]}}]}",
        "look swapped",
    ),
    "not a vector file": ("hello", "cannot be read"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_boundary_files_are_refused_and_nothing_is_written(case, data_env, tmp_path):
    text, message = BAD[case]
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(PlaceInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        S.place_stats(D.DetectionSource("amw"), B.boundary_source(str(path)))
    assert not S.cache_folder().exists()


def test_projected_shapefile_without_crs_is_refused_with_crs_present_it_is_read(data_env, tmp_path):
    with pytest.raises(PlaceInputError, match="has no CRS.*metres.*prj"):
        B.file_boundaries(_zip_shapefile(tmp_path, drop_prj=True))
    (tmp_path / "shp").rename(tmp_path / "shp_old")
    bnd = B.file_boundaries(_zip_shapefile(tmp_path, drop_prj=False))
    assert bnd.gdf.crs.to_epsg() == 4326 and bnd.gdf["name"].tolist() == ["a"]


def test_oversized_upload_states_the_limit(data_env):
    with pytest.raises(PlaceInputError, match=f"limit of {MAX_FILE_BYTES // 2**20} MB"):
        B.file_boundaries(("big.geojson", b" " * (50 * 2**20)))


def test_missing_name_column_lists_the_columns(tmp_path):
    path = _write(
        tmp_path / "b.geojson",
        gpd.GeoDataFrame({"NOMBRE": ["a"], "code": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326"),
    )
    with pytest.raises(PlaceInputError, match="no column 'nom'.*NOMBRE, code"):
        B.file_boundaries(path, "nom")


def test_kml_and_geopackage_boundaries_are_read(tmp_path):
    gdf = gpd.GeoDataFrame({"Name": ["k"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    for suffix, driver in ((".kml", "KML"), (".gpkg", "GPKG")):
        path = tmp_path / f"b{suffix}"
        gdf.to_file(path, driver=driver)
        bnd = B.file_boundaries(path, "Name")
        assert bnd.gdf["name"].tolist() == ["k"] and bnd.gdf.geom_type.iloc[0] == "Polygon"
