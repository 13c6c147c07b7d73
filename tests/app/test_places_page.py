"""AppTest of the Places page on the real AMW layers and territories (from the mirror): the ranked table, search,
period range, a map click selecting a territory, the chart, the downloads, credits; an uploaded boundary file with
its name column; a bad upload's message."""

from __future__ import annotations

import io

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box
from streamlit.testing.v1 import AppTest
from test_data_page import _texts
from test_map_page import fake_map
from ui_env import page, page_script

PLACES = page_script("Places")
TIMEOUT = 120


@pytest.fixture
def places_env(empty_env, monkeypatch):
    return empty_env


def _run(**session) -> AppTest:
    at = AppTest.from_file(page(PLACES), default_timeout=TIMEOUT)
    for k, v in session.items():
        at.session_state[k] = v
    return at.run()


def _table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def test_territories_ranked_searched_clicked_and_downloaded(places_env, monkeypatch):
    calls = fake_map(monkeypatch)
    at = _run()
    assert not at.exception, at.exception
    table = _table(at)
    assert len(table) == 237 and table["name"].iloc[0] == "Territorio tradicional Pemon"
    new = table["new_mined_ha"].tolist()
    assert new == sorted(new, reverse=True)
    assert "Amazon Mining Watch" in _texts(at) and "RAISG" in _texts(at)
    assert at.selectbox(key="places_pick").value == "VE50061_0"
    assert len(calls) == 1 and "Territorio tradicional Pemon" in calls[0]["fig"].get_root().render()

    at.text_input(key="places_search").set_value("kayap").run()
    assert _table(at)["name"].tolist() == ["Kayapó"]

    # a click on a territory in the map selects it
    calls = fake_map(monkeypatch, {"last_object_clicked_tooltip": "id BR50901_0 name Yanomami mined 2498"})
    at.text_input(key="places_search").set_value("").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="places_pick").value == "BR50901_0"
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Yanomami" in chart and "cumulative" in chart

    # periods: only 2024 .. 2025Q3
    at.select_slider(key="places_periods").set_value(("2024", "2025Q3")).run()
    table = _table(at)
    assert "new in 2024–2025Q3" in at.subheader[0].value and len(table) == 237
    csv = next(d for d in at.get("download_button") if "CSV" in d.proto.label)
    assert csv.proto.label == "Table (CSV)"
    labels = [d.proto.label for d in at.get("download_button")]
    assert any("GeoJSON" in x for x in labels) and any("KML" in x for x in labels)


def test_an_uploaded_boundary_file_with_its_name_column(places_env, monkeypatch):
    fake_map(monkeypatch)
    # two boxes around Pemon's territory (Venezuela) and one in the Atlantic
    gdf = gpd.GeoDataFrame(
        {"code": [1, 2, 3], "label": ["Gran Sabana north", "Gran Sabana south", "sea"]},
        geometry=[box(-62, 5, -60.5, 6), box(-62, 4, -60.5, 5), box(-30, 0, -29, 1)],
        crs="EPSG:4326",
    )
    buf = io.BytesIO()
    gdf.to_file(buf, driver="GeoJSON")
    at = _run(places_set="Upload a boundary file")
    assert "Upload a polygon file" in _texts(at)
    # AppTest has no file_uploader element: the page reads st.session_state through the widget; emulate with a
    # rerun where the uploader returns the bytes
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    rec = UploadedFileRec(file_id="f1", name="areas.geojson", type="application/geo+json", data=buf.getvalue())
    monkeypatch.setattr("streamlit.file_uploader", lambda *a, **k: UploadedFile(rec, None))
    at = _run(places_set="Upload a boundary file", places_name_col="label")
    assert not at.exception, at.exception
    table = _table(at)
    assert set(table["name"]) == {"Gran Sabana north", "Gran Sabana south", "sea"}
    assert table.set_index("name").loc["sea", "new_mined_ha"] == 0
    assert table["new_mined_ha"].iloc[0] > 100


def test_a_bad_upload_says_what_is_wrong(places_env, monkeypatch):
    fake_map(monkeypatch)
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    pts = gpd.GeoDataFrame({"n": ["a"]}, geometry=gpd.points_from_xy([-61], [5]), crs="EPSG:4326")
    buf = io.BytesIO()
    pts.to_file(buf, driver="GeoJSON")
    rec = UploadedFileRec(file_id="f2", name="points.geojson", type="application/geo+json", data=buf.getvalue())
    monkeypatch.setattr("streamlit.file_uploader", lambda *a, **k: UploadedFile(rec, None))
    at = _run(places_set="Upload a boundary file")
    assert not at.exception, at.exception
    assert "holds no polygons (1 Point)" in "\n".join(e.value for e in at.error)
    assert not at.dataframe


def test_map_period_slider_draws_amw_detections_new_or_cumulative(places_env, monkeypatch):
    """The Map page's AMW layer: 'new in 2024' fetches 2024's file only; 'cumulative up to 2019' the files of 2018
    and 2019; the files hold the real polygons with their period and areas."""
    import json

    from asgm.app import assets

    calls = fake_map(monkeypatch)
    at = AppTest.from_file(page(page_script("Map")), default_timeout=TIMEOUT)
    at.session_state["map_amw"] = True
    at.session_state["map_amw_view"] = "new"
    at.session_state["map_amw_period"] = "2024"
    at.run()
    assert not at.exception, at.exception
    html = calls[-1]["fig"].get_root().render()
    assert "amw_2024_" in html and "amw_2023_" not in html and "AMW detections, new in 2024" in html
    layer = json.loads(
        (
            assets.VENDOR_DIR
            / "layers"
            / next(p.name for p in (assets.VENDOR_DIR / "layers").glob("amw_2024_*.geojson"))
        ).read_text()
    )
    assert len(layer["features"]) == 5232
    props = layer["features"][0]["properties"]
    assert props["period"] == "2024" and props["mined_ha"] > 0 and props["footprint_ha"] > props["mined_ha"]
    at.radio(key="map_amw_view").set_value("cumulative")
    at.select_slider(key="map_amw_period").set_value("2019").run()
    html = calls[-1]["fig"].get_root().render()
    assert "amw_2018_" in html and "amw_2019_" in html and "amw_2024_" not in html
    assert "cumulative up to 2019" in html


def _upload(monkeypatch, files: dict[str, tuple[str, bytes]]) -> None:
    """``st.file_uploader`` returning, per widget key, the file a user would have picked (AppTest has no uploader)."""
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    def uploader(*args, key=None, **kwargs):
        if key not in files:
            return None
        name, data = files[key]
        return UploadedFile(UploadedFileRec(file_id=f"id-{key}", name=name, type="", data=data), None)

    monkeypatch.setattr("streamlit.file_uploader", uploader)


def _geojson(gdf: gpd.GeoDataFrame) -> bytes:
    buf = io.BytesIO()
    gdf.to_file(buf, driver="GeoJSON")
    return buf.getvalue()


def test_an_uploaded_detections_file_without_area_column_counts_footprints_and_says_so(places_env, monkeypatch):
    """Two hand-made detections (one 2023, one 2024) inside an uploaded boundary: the table gives their footprint
    (no mined-area column: said on the page) per period, from the same reader as ``asgm stats --detections``."""
    fake_map(monkeypatch)
    bnd = gpd.GeoDataFrame({"label": ["area A"]}, geometry=[box(-61, 5, -60, 6)], crs="EPSG:4326")
    det = gpd.GeoDataFrame(
        {"year": [2023, 2024]},
        geometry=[box(-60.6, 5.4, -60.5, 5.5), box(-60.4, 5.4, -60.3, 5.5)],
        crs="EPSG:4326",
    )
    _upload(
        monkeypatch,
        {"places_upload": ("areas.geojson", _geojson(bnd)), "places_det_upload": ("mine.geojson", _geojson(det))},
    )
    at = _run(places_set="Upload a boundary file", places_detections="Upload a detections file (polygons)")
    assert not at.exception, at.exception
    texts = _texts(at)
    assert "has no mined-area column" in texts and "detected footprint area of its polygons only" in texts
    assert at.radio(key="places_measure").options == ["detected footprint"]
    table = _table(at)
    assert table["name"].tolist() == ["area A"]
    # each square is 0.1 x 0.1 degrees at 5.45° N: ~12,200 ha, footprint from the equal-area projection
    area = gpd.GeoSeries([box(-60.6, 5.4, -60.5, 5.5)], crs="EPSG:4326").to_crs("EPSG:6933").area.iloc[0] / 1e4
    assert table["new_footprint_ha"].iloc[0] == pytest.approx(2 * area, rel=1e-3)
    at.select_slider(key="places_periods").set_value(("2024", "2024")).run()
    assert _table(at)["new_footprint_ha"].iloc[0] == pytest.approx(area, rel=1e-3)
    assert _table(at)["cumulative_footprint_ha"].iloc[0] == pytest.approx(2 * area, rel=1e-3)


def test_a_bad_detections_upload_is_one_line_and_nothing_is_counted(places_env, monkeypatch):
    fake_map(monkeypatch)
    lines = gpd.GeoDataFrame(geometry=gpd.GeoSeries.from_wkt(["LINESTRING (-61 5, -60 6)"]), crs="EPSG:4326")
    _upload(monkeypatch, {"places_det_upload": ("roads.geojson", _geojson(lines))})
    at = _run(places_detections="Upload a detections file (polygons)")
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "the detections file roads.geojson holds no polygons (1 LineString)" in errors[0]
    assert not at.dataframe
    # too large: the page's stated limit (the core reader's) refuses it in one line
    _upload(monkeypatch, {"places_det_upload": ("big.geojson", b" " * (25 * 2**20 + 1))})
    at = _run(places_detections="Upload a detections file (polygons)")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "over the limit of 25 MB" in errors[0].splitlines()[0]


def test_the_detections_uploader_states_its_limit(places_env, monkeypatch):
    fake_map(monkeypatch)
    at = _run(places_detections="Upload a detections file (polygons)")
    assert not at.exception, at.exception
    assert "Upload a polygon file of detections" in _texts(at)
    (uploader,) = at.get("file_uploader")
    assert "up to 25 MB; larger files are refused" in uploader.proto.label


def test_the_users_scans_of_several_years_as_detections(places_env, monkeypatch):
    """Three SYNTHETIC scans (2020, 2022, 2024) in the data dir: offered with their years, counted per year as new
    footprint inside an uploaded boundary, said to be synthetic."""
    from scan_series import GRID, cell_centre, write_scan

    from asgm.scan.request import scans_dir

    write_scan(scans_dir(), "bolivar-2020", 2020, [(1, 1)])
    write_scan(scans_dir(), "bolivar-2022", 2022, [(1, 1), (4, 4)])
    write_scan(scans_dir(), "bolivar-2024", 2024, [(1, 1), (4, 4), (4, 1)])
    fake_map(monkeypatch)
    w, n = cell_centre(0, 0)
    e, s = cell_centre(GRID.ny - 1, GRID.nx - 1)
    bnd = gpd.GeoDataFrame({"label": ["scanned area"]}, geometry=[box(w - 0.01, s - 0.01, e + 0.01, n + 0.01)])
    _upload(monkeypatch, {"places_upload": ("area.geojson", _geojson(bnd.set_crs("EPSG:4326")))})
    label = "Your scans (2020, 2022, 2024): detected footprint · SYNTHETIC"
    at = _run(places_set="Upload a boundary file", places_detections=label)
    assert not at.exception, at.exception
    assert label in at.radio(key="places_detections").options
    assert "SYNTHETIC imagery" in _texts(at)
    assert at.select_slider(key="places_periods").options == ["2020", "2022", "2024"]
    cell_ha = 240 * 240 / 1e4
    # one pit first seen each year: each year's new footprint is one window cell (UTM vs equal-area: within 1 %)
    assert _table(at)["new_footprint_ha"].iloc[0] == pytest.approx(3 * cell_ha, rel=0.01)
    at.select_slider(key="places_periods").set_value(("2022", "2022")).run()
    assert _table(at)["new_footprint_ha"].iloc[0] == pytest.approx(cell_ha, rel=0.01)
    assert _table(at)["cumulative_footprint_ha"].iloc[0] == pytest.approx(2 * cell_ha, rel=0.01)
