"""AppTest of the Map's period slider over the user's own scans (three SYNTHETIC scans of 2020, 2022, 2024 in the
data dir, written with the scan's writers), beside AMW's layers: the series offered, "new in" / "cumulative up to"
drawing that year's files coloured by period, and a click on a detection showing its period and area with the
Patch viewer links of the scan windows and the store patch covering it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from scan_series import cell_centre, write_scan
from streamlit.testing.v1 import AppTest
from test_data_page import _texts
from test_map_page import fake_map
from ui_env import page, page_script

from asgm.data.store import Patch, PatchStore, StoreMeta
from asgm.grid import patch_grid

MAP = page_script("Map")
SOURCE = "Your scans (SYNTHETIC)"


@pytest.fixture
def scans_env(empty_env):
    from asgm.scan.request import scans_dir

    write_scan(scans_dir(), "bolivar-2020", 2020, [(1, 1)])
    write_scan(scans_dir(), "bolivar-2022", 2022, [(1, 1), (4, 4)])
    write_scan(scans_dir(), "bolivar-2024", 2024, [(1, 1), (4, 4), (4, 1)])
    return empty_env


def _store_with_patch_at(lon: float, lat: float) -> None:
    """A one-patch SYNTHETIC store whose patch is centred on (lon, lat)."""
    store = PatchStore.create(
        StoreMeta(
            name="mine",
            source="synthetic",
            bands=("B4", "B3", "B2"),
            size=48,
            product_level="synthetic",
            synthetic=True,
        ),
        overwrite=True,
    )
    data = np.full((3, 48, 48), 1200, np.uint16)
    store.write_patch(
        Patch("pit-1", 1, "positives", lon, lat, patch_grid(lon, lat, 48), data, ("B4", "B3", "B2"), source="synthetic")
    )


def _run(value: dict | None, monkeypatch, **session) -> tuple[AppTest, list[dict]]:
    calls = fake_map(monkeypatch, value)
    at = AppTest.from_file(page(MAP), default_timeout=120)
    for k, v in session.items():
        at.session_state[k] = v
    return at.run(), calls


def _layer_file(name_start: str) -> dict:
    from asgm.app import assets

    (path,) = (assets.VENDOR_DIR / "layers").glob(f"{name_start}_*.geojson")
    return json.loads(path.read_text())


def test_scans_of_several_years_on_the_period_slider(scans_env, monkeypatch):
    at, calls = _run(None, monkeypatch)
    assert not at.exception, at.exception
    assert at.radio(key="map_period_source").options == ["Amazon Mining Watch", SOURCE]
    at, calls = _run(None, monkeypatch, map_amw=True, map_period_source=SOURCE, map_amw_view="new")
    assert not at.exception, at.exception
    assert at.select_slider(key="map_scans_period").options == ["2020", "2022", "2024"]
    html = calls[-1]["fig"].get_root().render()
    assert "detections (SYNTHETIC), new in 2024" in html and "amw_" not in html
    assert "scans_2024_" in html and "scans_2022_" not in html
    layer = _layer_file("scans_2024")
    (feat,) = layer["features"]  # only the pit first seen in 2024
    assert feat["properties"]["scan"] == "bolivar-2024" and feat["properties"]["mined_ha"] is None
    assert "detected footprint only" in _texts(at)

    at.radio(key="map_amw_view").set_value("cumulative")
    at.select_slider(key="map_scans_period").set_value("2022").run()
    html = calls[-1]["fig"].get_root().render()
    assert "scans_2020_" in html and "scans_2022_" in html and "scans_2024_" not in html
    assert "cumulative up to 2022" in html
    # coloured by period, spread over the palette: 2020 first colour, 2022 the middle one
    assert '"2020": "#440154"' in html and '"2022": "#21918c"' in html


def test_a_click_on_a_scan_detection_opens_its_window_and_the_covering_patch(scans_env, monkeypatch):
    lon, lat = cell_centre(4, 4)  # the pit new in 2022
    _store_with_patch_at(lon, lat)
    click = {"last_clicked": {"lng": lon, "lat": lat}}
    at, _ = _run(
        click, monkeypatch, map_amw=True, map_period_source=SOURCE, map_amw_view="cumulative", map_scans_period="2024"
    )
    assert not at.exception, at.exception
    texts = _texts(at)
    assert "Detection, period 2022" in texts and "scan `bolivar-2022`" in texts
    assert "detected footprint 5.8 ha" in texts and "mined area" not in texts.split("Detection, period")[1][:80]
    links = [m.value for m in at.markdown if "Patch_viewer" in m.value]
    assert any("scan=bolivar-2022&window=4%2C4" in x for x in links)
    assert sum("scan=bolivar-" in x for x in links) == 3  # every year's scan scored that window
    assert any("store=mine&sample=pit-1" in x for x in links)
    assert "No patch at lon" not in texts  # the click hit a detection: no "no labelled point here" warning

    # a click where nothing was detected: no detection panel
    at, _ = _run(
        {"last_clicked": dict(zip(("lng", "lat"), cell_centre(2, 3), strict=True))},
        monkeypatch,
        map_amw=True,
        map_period_source=SOURCE,
        map_amw_view="cumulative",
        map_scans_period="2024",
    )
    assert not at.exception, at.exception
    assert "Detection, period" not in _texts(at)


def test_a_click_on_an_amw_detection_shows_its_period_and_mined_area(empty_env, monkeypatch, mirror):
    from asgm.places.detections import amw_detections

    det = amw_detections().gdf
    row = det[det["period"] == "2024"].iloc[0]
    p = row.geometry.representative_point()
    at, _ = _run(
        {"last_clicked": {"lng": p.x, "lat": p.y}},
        monkeypatch,
        map_amw=True,
        map_amw_view="new",
        map_amw_period="2024",
    )
    assert not at.exception, at.exception
    texts = _texts(at)
    assert "Detection, period 2024" in texts and f"mined area {row['mined_ha']:,.2f} ha" in texts
    assert "No scan window and no patch of store `(none)` covers this place" in texts
    # marked from the panel: the detection is the feature of its pinned layer, at a point inside it, of its year
    at.text_input(key=next(k for k in at.session_state if str(k).startswith("map_amw_note_"))).input("sandbar").run()
    at.button(key="map_amw_not_mining").click().run()
    assert not at.exception, at.exception
    from asgm.data.labels import LabelStore

    (rec,) = LabelStore().current("amw")
    assert (rec["source"], rec["item_id"], rec["label"], rec["note"]) == (
        "amw_mining_202400",
        str(row["feature"]),
        "not_mining",
        "sandbar",
    )
    assert rec["year"] == 2024 and row.geometry.contains(shapely.Point(rec["lon"], rec["lat"]))
    assert "Reviewed: **not mining**" in _texts(at)
