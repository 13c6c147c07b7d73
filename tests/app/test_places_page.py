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
