"""AppTest of marking (issue 23): a patch from the Patch viewer (buttons, review queue, next), a clicked patch
from the Map's side panel, a detection's window from the Region scan page and a scan window in the Patch
viewer; every mark lands in the label GeoPackage with the probability the page showed. A toy store (labelled
synthetic) and ``scan_support``'s fixed-weight detector run on a SYNTHETIC mosaic: nothing is trained."""

from __future__ import annotations

import pytest
import rasterio
from _engine import toy_store, use_folders
from rasterio.warp import transform_bounds
from scan_support import detector_run
from shapely.geometry import box
from streamlit.testing.v1 import AppTest
from test_map_page import click, fake_map
from ui_env import page, page_script

from asgm.data.labels import LabelStore
from asgm.review import queue as review_queue

TIMEOUT = 120


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A toy store, the detector run and one finished SYNTHETIC scan with detections."""
    from asgm.scan import driver
    from asgm.scan import results as scan_results
    from asgm.sources.synthetic_mosaic import write_mosaic

    root = tmp_path_factory.mktemp("review-pages")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        toy_store(root / "data" / "stores", n_pos=4, n_neg=6)
        run_id = detector_run()
        m = write_mosaic(root / "m.tif", -61.8, 6.4, size_px=400, n_mines=2, seed=1, year=2022)
        with rasterio.open(m.path) as src:
            aoi = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
        options = driver.ScanOptions(source=str(m.path), tile_windows=8)
        driver.scan(aoi, 2022, run_id, scan_results.scans_dir() / "madre", options)
    return root, run_id


@pytest.fixture
def env(world, monkeypatch):
    import streamlit as st

    root, run_id = world
    use_folders(monkeypatch, root)
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    labels = root / "data" / "labels" / "labels.gpkg"
    labels.unlink(missing_ok=True)  # every test starts without labels
    st.cache_data.clear()
    st.cache_resource.clear()
    return run_id


def _page(name: str, **session) -> AppTest:
    at = AppTest.from_file(page(name), default_timeout=TIMEOUT)
    for k, v in session.items():
        at.session_state[k] = v
    return at


def test_patch_viewer_marks_then_moves_on(env):
    from asgm.data.store import PatchStore
    from asgm.model import inference

    ids = PatchStore.open("toy").sample_ids()
    sid = ids[2]
    at = _page(page_script("Patch viewer"), run_id=env, viewer_store="toy", viewer_sid=sid).run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button if b.key and b.key.startswith("viewer_")] == [
        "Mining (m)",
        "Not mining (n)",
        "Unsure (u)",
    ]
    assert any("asgmKeys" in str(e.proto) and "Not mining (n)" in str(e.proto) for e in at.get("iframe"))
    at.sidebar.text_input(key="reviewer_name").set_value("ana")
    at.text_input(key=f"viewer_note_store:toy:{sid}").set_value("bright roof")
    at.button(key="viewer_not_mining").click().run()
    assert not at.exception, at.exception
    rec = LabelStore().get(f"store:toy:{sid}")
    assert (
        rec is not None and rec["label"] == "not_mining" and rec["note"] == "bright roof" and rec["reviewer"] == "ana"
    )
    assert rec["probability"] == pytest.approx(inference.classify(env, "toy", sid)["prob"], abs=1e-6)
    assert rec["run_id"] == env and rec["via"] == "app"
    assert at.session_state["viewer_sid"] == ids[3]  # then the next patch
    assert any("marked **not mining**" in s.value for s in at.success)
    # a double click on the same patch writes nothing new
    at.session_state["viewer_sid"] = at.session_state["viewer_pick"] = sid
    at.run()
    at.text_input(key=f"viewer_note_store:toy:{sid}").set_value("bright roof")
    at.button(key="viewer_not_mining").click().run()
    assert len(LabelStore().history(f"store:toy:{sid}")) == 1


def test_review_mode_follows_the_queue(env):
    at = _page(page_script("Patch viewer"), run_id=env, viewer_store="toy").run()
    at.sidebar.toggle(key="viewer_review").set_value(True).run()
    assert not at.exception, at.exception
    q = review_queue.store_queue("toy", env)
    assert at.session_state["viewer_sid"] == q.next_item()
    assert any("0 reviewed, 10 left of 10" in p.proto.text for p in at.get("progress"))
    head, second = q.pending()[:2]
    at.button(key="viewer_mining").click().run()
    assert LabelStore().get(f"store:toy:{head}")["label"] == "mining"
    assert at.session_state["viewer_sid"] == second
    assert any("1 reviewed, 9 left of 10" in p.proto.text for p in at.get("progress"))
    next(b for b in at.button if b.label == "Next to review (→)").click().run()
    assert at.session_state["viewer_sid"] == q.pending()[2]


def test_public_deployment_is_read_only_for_visitors(env, monkeypatch):
    monkeypatch.setenv("ASGM_PUBLIC", "1")
    at = _page(page_script("Patch viewer"), run_id=env, viewer_store="toy").run()
    assert at.button(key="viewer_mining").disabled
    assert any("only the owner" in c.value for c in at.caption)


def test_map_side_panel_marks_the_clicked_patch_and_draws_labels(env, monkeypatch):
    from asgm.data.store import PatchStore

    sid = PatchStore.open("toy").sample_ids()[0]
    calls = fake_map(monkeypatch, click(sid))
    at = _page(page_script("Map"), run_id=env).run()
    assert not at.exception, at.exception
    at.button(key="map_unsure").click().run()
    assert not at.exception, at.exception
    rec = LabelStore().get(f"store:toy:{sid}")
    assert rec is not None and rec["label"] == "unsure"
    at.run()
    groups = calls[-1]["feature_group_to_add"] or []
    assert any(getattr(g, "layer_name", "") == "Reviewed labels" for g in groups)


def test_map_popup_marks_through_the_same_store_as_the_side_panel(env, monkeypatch):
    """A mark given in a point's popup arrives as streamlit-folium's ``last_object_clicked_popup``
    (``point_layer.MARK_PREFIX|sid|label|time``): written once with the run and the probability the popup showed,
    the side panel shows it; a rerun with the same value writes nothing, a bad label is one line."""
    from asgm.data.store import PatchStore
    from asgm.maps.point_layer import MARK_PREFIX

    sid = PatchStore.open("toy").sample_ids()[1]
    value = click(sid) | {"last_object_clicked_popup": f"{MARK_PREFIX}|{sid}|not_mining|1"}
    calls = fake_map(monkeypatch, value)
    at = _page(page_script("Map"), run_id=env).run()
    assert not at.exception, at.exception
    assert "last_object_clicked_popup" in calls[-1]["returned_objects"]
    labels = LabelStore()
    rec = labels.get(f"store:toy:{sid}")
    assert rec is not None and rec["label"] == "not_mining" and rec["via"] == "app" and rec["run_id"] == env
    shown = next((m.value for m in at.metric if m.label == "Probability of mining"), None)
    if shown is not None:  # the panel's number is the one recorded
        assert f"{rec['probability']:.3f}" == shown
    assert any(f"`{sid}` marked **not mining**" in s.value for s in at.success)
    assert at.session_state["map_sid"] == sid
    at.run()  # the same value again (a rerun): nothing new
    assert not at.exception and len(labels.history()) == 1
    # a second popup click: another label, a new history row
    value["last_object_clicked_popup"] = f"{MARK_PREFIX}|{sid}|mining|2"
    at.run()
    assert labels.get(f"store:toy:{sid}")["label"] == "mining" and len(labels.history()) == 2
    value["last_object_clicked_popup"] = f"{MARK_PREFIX}|{sid}|maybe|3"
    at.run()
    assert not at.exception and len(labels.history()) == 2
    assert at.error and "maybe" in at.error[0].value


def test_map_popup_mark_is_refused_on_a_public_deployment(env, monkeypatch):
    from asgm.data.store import PatchStore
    from asgm.maps.point_layer import MARK_PREFIX

    monkeypatch.setenv("ASGM_PUBLIC", "1")
    sid = PatchStore.open("toy").sample_ids()[0]
    fake_map(monkeypatch, click(sid) | {"last_object_clicked_popup": f"{MARK_PREFIX}|{sid}|mining|1"})
    at = _page(page_script("Map"), run_id=env).run()
    assert not at.exception, at.exception
    assert LabelStore().get(f"store:toy:{sid}") is None
    assert any("only the owner" in e.value for e in at.error)


def test_region_scan_page_marks_a_detection_window(env, monkeypatch):
    from asgm.scan import results as scan_results

    fake_map(monkeypatch)
    at = _page(page_script("Region scan")).run()
    assert not at.exception, at.exception
    s = scan_results.open_scan("madre")
    table = scan_results.detections_table(s)
    first = table.iloc[0]
    at.button(key="scan_det_review_not_mining").click().run()
    assert not at.exception, at.exception
    rec = LabelStore().get(f"scan:madre:{first['window']}")
    assert rec is not None and rec["label"] == "not_mining"
    assert rec["probability"] == pytest.approx(float(first["max_prob"]))
    if len(table) > 1:
        assert at.session_state["scan_det"] == table.iloc[1]["id"]


def test_scan_window_in_the_viewer_marks_and_opens_the_next_window(env):
    q = review_queue.scan_queue("madre", "uncertain")
    window = q.next_item()
    at = _page(page_script("Patch viewer"))
    at.query_params["scan"] = "madre"
    at.query_params["window"] = window
    at.run()
    assert not at.exception, at.exception
    at.button(key="scan_window_mining").click().run()
    assert not at.exception, at.exception
    assert LabelStore().get(f"scan:madre:{window}")["label"] == "mining"
    assert at.query_params["window"] == q.next_item(skip=(window,))  # the next window of the queue
