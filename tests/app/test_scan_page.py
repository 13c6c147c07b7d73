"""AppTest of the Region scan page's Python side: a bad area gives a message and writes nothing; the drawn area
scanned as a background job on the SYNTHETIC demo mosaic (the real ``asgm`` commands in a job), a duplicate
refused; the finished scan's detections table, link to its window and downloads; the change from a first
year's scan. The run is ``scan_support``'s fixed-weight bare-soil detector, so the detections are the demo
mosaic's known mines."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest
from test_data_page import _button, _texts
from test_map_page import fake_map
from ui_env import page, page_script

from asgm.cli import main as cli_main
from asgm.jobs import runner as jobs
from asgm.scan import request as scan_request
from asgm.scan import results as scan_results

TIMEOUT = 120
SCAN = page_script("Region scan")
LON, LAT = -61.8, 6.4
D = 0.015
#: A drawn 3.3 x 3.3 km square (what streamlit-folium returns as all_drawings, kept by the Map page); the demo
#: mosaic around it holds 1 mine site in 2021 and 2 in 2022, both inside it.
DRAWN = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[LON - D, LAT - D], [LON + D, LAT - D], [LON + D, LAT + D], [LON - D, LAT + D], [LON - D, LAT - D]]
                ],
            },
        }
    ],
}


@pytest.fixture(scope="module")
def detector_models(tmp_path_factory):
    """A models dir holding the detector run (built once for this file); returns (folder, run id)."""
    from scan_support import detector_run

    models = tmp_path_factory.mktemp("scan-page-models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASGM_MODELS_DIR", str(models))
        return models, detector_run()


@pytest.fixture
def scan_env(detector_models, tmp_path, monkeypatch):
    """Empty data dir, the detector's models dir, fresh caches; returns the run id."""
    import streamlit as st

    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASGM_MODELS_DIR", str(detector_models[0]))
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    st.cache_data.clear()
    st.cache_resource.clear()
    return detector_models[1]


def _page(**session) -> AppTest:
    at = AppTest.from_file(page(SCAN), default_timeout=TIMEOUT)
    for k, v in session.items():
        at.session_state[k] = v
    return at.run()


def _wait(job_id: str, seconds: float = 150) -> jobs.JobInfo:
    deadline = time.monotonic() + seconds
    while (job := jobs.get_job(job_id)).active:
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(0.3)
    return job


def test_a_bad_area_says_what_is_wrong_and_writes_nothing(scan_env, monkeypatch, tmp_path):
    fake_map(monkeypatch)
    at = _page()
    assert not at.exception, at.exception
    assert "No area drawn yet" in _texts(at)
    _button(at, "Start the scan").click().run()
    assert "Cannot scan: no valid area" in _texts(at)
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[-61.8, 6.4], [-61.7, 6.5], [-61.7, 6.4], [-61.8, 6.5], [-61.8, 6.4]]],
    }
    at.radio(key="scan_area_how").set_value("Upload GeoJSON").run()
    at.file_uploader(key="scan_upload").set_value(
        ("bow.geojson", json.dumps(bowtie).encode(), "application/geo+json")
    ).run()
    assert "bow.geojson: the area of interest is not a valid polygon" in _texts(at) and "Nothing was saved" in _texts(
        at
    )
    _button(at, "Start the scan").click().run()
    assert "Cannot scan: no valid area" in _texts(at)
    # A valid area the chosen mosaic does not reach: refused by the scan's own checks, before writing.
    at.file_uploader(key="scan_upload").set_value(
        ("far.geojson", json.dumps(DRAWN).encode(), "application/geo+json")
    ).run()
    from asgm.sources.synthetic_mosaic import write_mosaic

    elsewhere = write_mosaic(tmp_path / "elsewhere.tif", 10.0, 10.0, size_px=64)
    at.radio(key="scan_source").set_value("mosaic").run()
    at.text_input(key="scan_mosaic").input(str(elsewhere.path)).run()
    _button(at, "Start the scan").click().run()
    assert "does not reach the area" in _texts(at) and "nothing was written" in _texts(at)
    assert not scan_results.scans_dir().exists() and jobs.list_jobs() == []


def test_scan_the_drawn_area_then_results_window_link_and_change(scan_env, monkeypatch):
    calls = fake_map(monkeypatch)
    # The first year, through the same request and commands the page starts (run here, not as a job).
    first = scan_request.ScanRequest(name="area-2021", year=2021, run_id=scan_env, source=scan_request.SYNTHETIC)
    aoi, km2 = scan_request.aoi_from_drawing(DRAWN)
    for step in scan_request.prepare(first, scan_request.check(first, aoi)):
        assert cli_main(step[2:]) == 0

    at = _page(aoi=DRAWN)
    assert not at.exception, at.exception
    assert f"Drawn area: {km2:,.1f} km²" in _texts(at)
    assert at.radio(key="scan_source").value == scan_request.SYNTHETIC
    at.number_input(key="scan_year").set_value(2022).run()
    at.text_input(key="scan_name").input("area-2022").run()
    _button(at, "Start the scan").click().run()
    assert "Started job" in _texts(at), _texts(at)
    [job] = jobs.list_jobs()
    assert job.kind == "scan" and job.command[:4] == ["-m", "asgm", "synthetic", "mosaic"]
    _button(at, "Start the scan").click().run()  # the same scan again while it runs: refused
    assert "the same job is already" in _texts(at) and len(jobs.list_jobs()) == 1
    done = _wait(job.job_id)
    assert done.status == "completed", done.log_tail()
    assert done.progress["done"] == done.progress["total"] >= 1  # tiles reported to the jobs panel

    at.run()
    s = scan_results.open_scan("area-2022")
    table = scan_results.detections_table(s)
    assert len(table) >= 1 and s.synthetic
    assert at.selectbox(key="scan_result").value == "area-2022"
    assert "SYNTHETIC imagery" in _texts(at)
    shown = next(d.value for d in at.dataframe if "max_prob" in d.value.columns)  # (the jobs panel has one too)
    assert shown["id"].tolist() == table["id"].tolist()
    scan_map = [c for c in calls if c["key"] == "scan_map"][-1]["fig"]
    html = scan_map.get_root().render()
    assert all(d in html for d in table["id"]) and "Detection: highest window probability" in html
    assert "https://unpkg" not in html and "cdn.jsdelivr" not in html
    # Picking a detection (as a map click does) links its window to the Patch viewer.
    det = table.iloc[-1]
    at.selectbox(key="scan_det").set_value(det["id"]).run()
    link = f"Patch_viewer?scan=area-2022&window={det['window'].replace(',', '%2C')}"
    assert any(link in m.value for m in at.markdown), [m.value for m in at.markdown]
    downloads = [e for e in at.get("download_button")]
    assert len(downloads) >= 2
    # A click on a polygon (streamlit-folium returns its tooltip, which starts with the id) picks it.
    assert len(table) >= 2
    first = table.iloc[0]
    fake_map(monkeypatch, {"last_object_clicked_tooltip": f"id {first['id']} area_ha {first['area_ha']} max_prob 0.9"})
    at.run()
    assert at.selectbox(key="scan_det").value == first["id"]
    assert any(f"window={first['window'].replace(',', '%2C')}" in m.value for m in at.markdown)

    # Change over time: 2021 (1 synthetic mine) -> 2022 (2).
    assert at.selectbox(key="change_a").value == "area-2021" and at.selectbox(key="change_b").value == "area-2022"
    report, _ = scan_results.change("area-2021", "area-2022")
    assert report["new_count"] >= 1
    assert f"new {report['new_ha']:,.1f} ha" in _texts(at)
    change_table = next(d.value for d in at.dataframe if "polygons" in d.value.columns).set_index("change")
    assert change_table.loc["new", "area_ha"] == report["new_ha"]

    # The window opens in the Patch viewer: re-read from the scan's mosaic, classified with the scan's run.
    viewer = AppTest.from_file(page(page_script("Patch viewer")), default_timeout=TIMEOUT)
    viewer.query_params["scan"] = "area-2022"
    viewer.query_params["window"] = det["window"]
    viewer.run()
    assert not viewer.exception, viewer.exception
    from asgm.model import inference, runs

    i, j = scan_results.parse_window(det["window"])
    expected = inference.classify_patch(
        runs.load_model(scan_env), runs.get_run(scan_env), scan_results.window_patch(s, i, j), None
    )["prob"]
    [metric] = viewer.metric
    assert metric.value == f"{expected:.4f}" and abs(expected - det["max_prob"]) < 1e-3
    assert "SYNTHETIC imagery" in _texts(viewer) and "No OSM fetch cache covers this window" in _texts(viewer)
    viewer.toggle(key="scan_gradcam").set_value(True).run()
    assert not viewer.exception
    assert any("Grad-CAM" in img.caption for el in viewer.get("image") for img in el.proto.imgs)
    viewer.query_params["window"] = "99999,0"
    viewer.run()
    assert "outside scan" in _texts(viewer)


def test_public_deployment_one_scan_at_a_time_and_nothing_left_when_refused(scan_env, monkeypatch):
    fake_map(monkeypatch)
    at = AppTest.from_file(page(SCAN), default_timeout=TIMEOUT)
    at.secrets["owner_passcode"] = "pw"
    at.session_state["aoi"] = DRAWN
    at.run()
    assert not at.exception, at.exception
    assert _button(at, "Start the scan").disabled and "public deployment" in _texts(at)
    at.text_input(key="_owner_passcode_input").input("pw")
    _button(at, "Unlock jobs").click().run()
    busy = jobs.launch(["-c", "import time; time.sleep(60)"], kind="other", title="another job")
    try:
        at.text_input(key="scan_name").input("refused").run()
        _button(at, "Start the scan").click().run()
        assert "only 1 job(s) may run at a time" in _texts(at), _texts(at)
        assert not (scan_results.scans_dir() / "refused").exists()  # the prepared request was removed
        assert [j.job_id for j in jobs.list_jobs()] == [busy.job_id]
    finally:
        jobs.cancel(busy.job_id)
        _wait(busy.job_id, 30)


def test_the_spatial_prior_checkbox_starts_a_scan_with_it_and_the_results_say_so(scan_env, monkeypatch):
    fake_map(monkeypatch)
    at = _page(aoi=DRAWN)
    assert not at.exception, at.exception
    assert at.checkbox(key="scan_prior").value is False
    at.checkbox(key="scan_prior").check().run()
    at.text_input(key="scan_name").input("prior-2021").run()
    _button(at, "Start the scan").click().run()
    assert "Started job" in _texts(at), _texts(at)
    [job] = jobs.list_jobs()
    done = _wait(job.job_id)
    assert done.status == "completed", done.log_tail()
    at.run()
    s = scan_results.open_scan("prior-2021")
    sp = s.summary["spatial_prior"]
    assert sp["t_main"] == 0.43 and sp["t_iso"] == 0.75 and s.thresholds["low"] == 0.43
    assert f"Spatial prior: {sp['candidates']:,} candidate windows" in _texts(at)
