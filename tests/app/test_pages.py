"""AppTest for every page, against real stores and really trained runs (see ui_env.py).

Expected values come from the core (``asgm.model.inference``, ``asgm.model.runs``), never from constants, so a page
that shows the wrong number fails.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from streamlit.testing.v1 import AppTest
from ui_env import page, page_script

TIMEOUT = 120


def run_page(name: str, **session) -> AppTest:
    at = AppTest.from_file(page(name), default_timeout=TIMEOUT)
    for k, v in session.items():
        at.session_state[k] = v
    return at.run()


def texts(at: AppTest) -> str:
    """All text the page shows (markdown, captions, alerts, metrics) as one string."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
        for e in getattr(at, kind)
    ]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def fake_click(monkeypatch, sample_id: str | None, place: tuple[float, float] | None = None) -> list[dict]:
    """Replace st_folium (imported by the Map page at script run) with one returning a click on the marker
    of ``sample_id`` (or on the map at ``place`` = (lon, lat)); returns the calls so tests can inspect them."""
    import streamlit_folium

    calls: list[dict] = []

    def st_folium(fig, **kwargs):
        calls.append({"fig": fig, **kwargs})
        latlng = {"lat": place[1], "lng": place[0]} if place else None
        return {
            "last_object_clicked_tooltip": sample_id,
            "last_object_clicked": latlng if sample_id else None,
            "last_clicked": latlng,
        }

    monkeypatch.setattr(streamlit_folium, "st_folium", st_folium)
    return calls


# -- Home -------------------------------------------------------------------------------------------
def test_home_shows_data_model_and_credits(app_env):
    at = AppTest.from_file(page("app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Demo pack"] == "present"
    assert metrics["Patch stores"] == "2"
    assert metrics["Runs"] == "2"
    assert not at.dataframe  # Home's tables are markdown: st.dataframe would load pandas and pyarrow
    stores = {r["store"]: r for r in _markdown_rows(at, "| store |")}
    assert stores["toy"]["kind"] == "synthetic" and "SYNTHETIC" in stores["toy"]["note"]
    assert (stores["demo"]["positives"], stores["demo"]["negatives"]) == ("209", "282")
    assert stores["demo"]["patches"] == "491"
    upstream = {r["key"]: r for r in _markdown_rows(at, "| key |")}
    assert upstream["study_positives"]["present"] in ("yes", "no") and upstream["study_positives"]["licence"]
    text = texts(at)
    for needle in ("CC BY 4.0", "Copernicus Sentinel data 2019", "OpenStreetMap contributors", "ODbL", "MIT"):
        assert needle in text
    from asgm.model import runs

    newest = runs.list_runs()[0]
    assert newest.run_id in text  # the active model is the newest completed run


def _markdown_rows(at, header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose first line starts with ``header``, as dicts of cell texts."""
    table = next(m.value for m in at.markdown if m.value.startswith(header))
    split = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in table.splitlines()]
    return [dict(zip(split[0], cells, strict=True)) for cells in split[2:]]


#: Libraries a bare Streamlit server never loads; Home and the sidebar must not either (issue 11: the first
#: page within 1.5x of a bare Streamlit app's; pandas alone costs 0.35-1.3 s cold). (PIL and plotly are not
#: listed: Streamlit imports them itself.)
HEAVY = ("pandas", "numpy", "rasterio", "pyproj", "tensorflow", "keras", "geopandas", "pyarrow", "pooch")


def test_home_and_sidebar_load_no_heavy_library(app_env):
    """Home, with its stores, upstream files, runs and the sidebar's run picker, in a fresh interpreter."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(page("app.py")).parent
    script = (
        "import json, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({page('app.py')!r}, default_timeout={TIMEOUT}).run()\n"
        "assert not at.exception, at.exception\n"
        "shown = [m.value for m in at.markdown]\n"
        "print(json.dumps({'tables': [v.split(' |')[0] for v in shown if v.startswith('| ')],\n"
        "                  'picker': [s.label for s in at.sidebar.selectbox],\n"
        f"                  'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["tables"] == ["| store", "| key"] and out["picker"] == ["Model (run)"]  # the page was drawn in full
    assert out["heavy"] == []


def test_home_on_empty_machine_offers_prepare(empty_env):
    at = AppTest.from_file(page("app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("Missing for click-to-classify" in w.value for w in at.warning)
    assert any(b.label == "Prepare the demo" for b in at.button)
    assert {m.label: m.value for m in at.metric}["Demo pack"] == "missing"


# -- Map --------------------------------------------------------------------------------------------
def test_map_click_classifies_with_selected_run(app_env, monkeypatch):
    from asgm.model import inference

    sid = "egp-0007"
    calls = fake_click(monkeypatch, sid)
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    assert not at.exception, at.exception
    # The map is asked for clicks only (no rerun on pan/zoom); the popup's value carries a review mark.
    assert set(calls[0]["returned_objects"]) == {
        "last_object_clicked_tooltip",
        "last_object_clicked_popup",
        "last_object_clicked",
        "last_clicked",
        "all_drawings",
    }
    expected = inference.classify(app_env.demo_run, "demo", sid)
    prob = next(m for m in at.metric if m.label == "Probability of mining")
    assert prob.value == f"{expected['prob']:.3f}"
    decision = "mining" if expected["decision"] else "not mining"
    assert f"Decision at threshold {expected['threshold']:.3f}: **{decision}**" in texts(at)
    assert f"classified {sid} in" in texts(at)
    # Every point with a patch is on the map; the study's random negatives are too (without patches).
    fig = calls[0]["fig"]
    drawn = next(c.sample_ids for c in fig._children.values() if hasattr(c, "sample_ids"))
    from asgm.data.points import load_points
    from asgm.data.store import PatchStore

    assert set(drawn) == set(load_points()["sample_id"]) | set(PatchStore.open("demo").sample_ids())
    html = fig.get_root().render()
    assert "/app/static/vendor/leaflet/leaflet.js" in html and "cdn.jsdelivr.net" not in html


def test_map_click_without_patch_says_how_to_get_one(app_env, monkeypatch):
    fake_click(monkeypatch, "rnd-0005")  # a study random negative: not in the demo pack
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    assert not at.exception
    msg = " ".join(w.value for w in at.warning)
    assert "No patch for **rnd-0005**" in msg and "asgm patches fetch --source stac --points random" in msg
    assert not [m for m in at.metric if m.label == "Probability of mining"]


def test_map_click_on_empty_place_says_none_is_available(app_env, monkeypatch):
    fake_click(monkeypatch, None, place=(-66.5, 3.2))  # far south-west of every labelled point
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    assert not at.exception
    msg = " ".join(w.value for w in at.warning)
    assert "No patch at lon -66.5000, lat 3.2000" in msg and "none is available" in msg and "km away" in msg


def test_map_click_next_to_a_patch_selects_it(app_env, monkeypatch):
    from asgm.data.store import PatchStore

    row = PatchStore.open("demo").index().set_index("sample_id").loc["egp-0007"]
    fake_click(monkeypatch, None, place=(row["lon"] + 0.001, row["lat"]))  # ~110 m east of the point
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    assert not at.exception
    assert "classified egp-0007 in" in texts(at)


def test_map_errors_only_filter_matches_run_predictions(app_env, monkeypatch):
    from asgm.model import runs

    fake_click(monkeypatch, None)
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    errors = next(t for t in at.toggle if t.label == "Errors only (FP/FN)")
    errors.set_value(True).run()
    assert not at.exception
    pred = runs.predictions(app_env.demo_run)
    n_err = int(((pred["pred"] == 1) & (pred["label"] == 0)).sum() + ((pred["pred"] == 0) & (pred["label"] == 1)).sum())
    shown = next(c.value for c in at.caption if "points shown" in c.value)
    assert shown.startswith(f"{n_err:,} of ")


def test_map_split_filter_keeps_the_runs_test_points(app_env, monkeypatch):
    from asgm.model import runs

    fake_click(monkeypatch, None)
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    next(m for m in at.multiselect if m.label == "Split (selected run)").set_value(["test"]).run()
    assert not at.exception
    pred = runs.predictions(app_env.demo_run)
    shown = next(c.value for c in at.caption if "points shown" in c.value)
    assert shown.startswith(f"{int((pred['split'] == 'test').sum()):,} of ")


def test_map_with_broken_model_file_explains(app_env, monkeypatch, tmp_path):
    # A copy of the run whose model file was deleted: a message with the way out, no traceback.
    models = tmp_path / "models"
    shutil.copytree(app_env.models / app_env.demo_run, models / app_env.demo_run)
    (models / app_env.demo_run / "model.keras").unlink()
    monkeypatch.setenv("ASGM_MODELS_DIR", str(models))
    fake_click(monkeypatch, "egp-0007")
    at = run_page(page_script("Map"), run_id=app_env.demo_run)
    assert not at.exception
    # The run is listed as corrupt, so it is no longer offered, and the page says why.
    warning = " ".join(e.value for e in at.warning)
    assert f"Run '{app_env.demo_run}' can no longer be used" in warning and "model.keras is missing" in warning


# -- Patch viewer -----------------------------------------------------------------------------------
def test_patch_viewer_osm_toggle_recomputes_prediction(app_env):
    from asgm.model import inference

    sid = "pos-0003"
    full = inference.classify(app_env.osm_run, "toy", sid)
    zeroed = inference.classify(app_env.osm_run, "toy", sid, zero_layers=("highway",))
    assert f"{full['prob']:.4f}" != f"{zeroed['prob']:.4f}", "the toy model ignores highway; the test cannot tell"
    at = run_page(page_script("Patch viewer"), run_id=app_env.osm_run, viewer_store="toy", viewer_sid=sid)
    assert not at.exception, at.exception
    prob = next(m for m in at.metric if m.label == "Probability of mining")
    assert prob.value == f"{full['prob']:.4f}"
    at.toggle(key="osm_highway").set_value(False).run()
    assert not at.exception
    prob = next(m for m in at.metric if m.label == "Probability of mining")
    assert prob.value == f"{zeroed['prob']:.4f}"
    assert "zeroed: highway" in texts(at)
    # Grad-CAM and false colour (the toy store has all 12 bands) each add to the picture.
    next(t for t in at.toggle if t.label == "Grad-CAM heatmap").set_value(True).run()
    next(t for t in at.toggle if t.label.startswith("False colour")).set_value(True).run()
    assert not at.exception
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("Grad-CAM" in c for c in captions) and any("False colour" in c for c in captions)


def test_patch_viewer_navigation_and_missing_osm(app_env):
    at = run_page(page_script("Patch viewer"), run_id=app_env.demo_run, viewer_store="demo", viewer_sid="cur-0004")
    assert not at.exception
    assert "asgm osm rasterize --store demo" in texts(at)
    next(b for b in at.button if b.label == "Next ▶").click().run()
    from asgm.data.store import PatchStore

    ids = PatchStore.open("demo").sample_ids()
    assert at.session_state["viewer_sid"] == ids[ids.index("cur-0004") + 1]


def test_patch_viewer_random_error_button_picks_an_error_of_the_run(app_env):
    from asgm.model import runs

    pred = runs.predictions(app_env.demo_run)
    fp = set(pred.loc[(pred["pred"] == 1) & (pred["label"] == 0), "sample_id"])
    fn = set(pred.loc[(pred["pred"] == 0) & (pred["label"] == 1), "sample_id"])
    assert fp or fn, "the 2-epoch model made no error on val/test; nothing to navigate to"
    kind, pool = ("FP", fp) if fp else ("FN", fn)
    at = run_page(page_script("Patch viewer"), run_id=app_env.demo_run, viewer_store="demo", viewer_sid="cur-0004")
    other = next(b for b in at.button if b.label == f"Random {'FN' if kind == 'FP' else 'FP'}")
    assert other.disabled == (not (fn if kind == "FP" else fp))
    next(b for b in at.button if b.label == f"Random {kind}").click().run()
    assert not at.exception
    assert at.session_state["viewer_sid"] in pool


# -- Train ------------------------------------------------------------------------------------------
def test_train_refuses_osm_without_masks_and_identical_running_run(app_env, monkeypatch, tmp_path):
    from asgm.config import ExperimentConfig
    from asgm.model.runs import create_run

    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    at = run_page(page_script("Train"))
    assert not at.exception
    at.toggle[0].set_value(True)  # OSM channels on, on the demo pack (no masks)
    at.button[0].click().run()
    assert any("has no OSM masks" in e.value and "asgm osm rasterize --store demo" in e.value for e in at.error)

    # An identical run already running (its pid is alive: this process) -> the launch is refused.
    cfg = ExperimentConfig(store="demo", epochs=20, seed=7)
    folder = create_run(cfg, "busy-run", status="running")
    folder.set_status("running", pid=os.getpid())
    at = run_page(page_script("Train"))
    at.button[0].click().run()
    assert any("already running" in e.value for e in at.error), [e.value for e in at.error]
    assert "busy-run" in texts(at) + str(at.dataframe[0].value.to_dict())
    # Cancel asks the run to stop through the run store (the training process checks after every batch).
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not at.exception
    assert folder.file("cancel").exists()


def test_train_refuses_osm_layers_missing_from_the_store(app_env, monkeypatch, tmp_path):
    """A store with masks for some OSM layers only: launching with all five is refused up front (every
    missing layer named), instead of a run that fails in the background."""
    from _engine import toy_store

    from asgm.model import run_jobs, runs

    data = tmp_path / "data"
    toy_store(data / "stores", name="partial", n_pos=4, n_neg=4, osm=("highway", "waterway"))
    monkeypatch.setenv("ASGM_DATA_DIR", str(data))
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    at = run_page(page_script("Train"))
    assert not at.exception
    at.selectbox[0].set_value("partial")
    at.radio[0].set_value("all 12 (study)")
    at.toggle[0].set_value(True)  # OSM channels on, all five layers selected (the default)
    at.button[0].click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(
        "Cannot train" in e and "['building', 'landuse', 'aeroway']" in e and "asgm osm rasterize --store partial" in e
        for e in errors
    ), errors
    assert runs.list_runs() == [] and not at.success
    # The layers the store has are accepted: the run is launched (and cancelled at once).
    at.multiselect[0].set_value(["highway", "waterway"])
    at.button[0].click().run()
    assert [s.value for s in at.success], [e.value for e in at.error]
    launched = runs.list_runs()
    assert len(launched) == 1 and launched[0].config.osm_layers == ("highway", "waterway")
    run_jobs.request_cancel(launched[0].run_id)
    deadline = time.monotonic() + 180  # let the training process see the cancel and exit before tmp_path goes
    while runs.get_run(launched[0].run_id).status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert runs.get_run(launched[0].run_id).status == "cancelled"


def test_viewer_names_every_reason_a_run_cannot_classify_a_store(app_env):
    """The OSM run (12 bands + 5 OSM layers, trained on toy) on the demo pack (RGB, no masks)."""
    at = run_page(page_script("Patch viewer"), run_id=app_env.osm_run, viewer_store="demo")
    assert not at.exception
    why = next(w.value for w in at.warning if "cannot classify this store" in w.value)
    assert "has bands ['B4', 'B3', 'B2']" in why and "has no OSM masks" in why


def test_train_shows_failed_run_error(app_env, monkeypatch, tmp_path):
    from asgm.config import ExperimentConfig
    from asgm.model.runs import create_run

    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    folder = create_run(ExperimentConfig(store="demo", epochs=3), "broken-run", status="running")
    folder.set_status("failed", error="DatasetError: store 'demo' has no patches left after the masked filter")
    at = run_page(page_script("Train"))
    assert not at.exception
    assert any("broken-run" in e.value and "masked filter" in e.value for e in at.error)


# -- Compare ----------------------------------------------------------------------------------------
def test_compare_table_published_rows_and_downloads(app_env):
    from asgm.model import runs
    from asgm.training.experiments import TABLE1_PUBLISHED

    at = run_page(page_script("Compare"))
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    ours = table[table["source"] == "this project"]
    assert set(ours["run"]) == {app_env.demo_run, app_env.osm_run}
    m = runs.get_run(app_env.osm_run).metrics
    row = ours[ours["run"] == app_env.osm_run].iloc[0]
    assert row["FP"] == m["fp"] and row["FN"] == m["fn"] and row["OSM"] == "Yes"
    assert row["F1 [95% CI]"].startswith(f"{m['f1']:.3f} [")
    pub = table[table["source"] == "published"]
    assert len(pub) == len(TABLE1_PUBLISHED)
    assert pub.iloc[1]["F1 [95% CI]"] == "0.923 [0.827, 1.000]"  # Exp 2 as printed in the paper
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download table (CSV)" in labels and "Download test predictions (GeoJSON)" in labels
    assert "No ablation results yet" in texts(at)


def test_compare_draws_the_reliability_diagram_with_each_runs_ece(app_env):
    from asgm.maps import figures
    from asgm.model import runs

    at = run_page(page_script("Compare"))
    assert not at.exception
    caption = next(c.value for c in at.caption if "calibrated" in c.value)
    for run_id in (app_env.demo_run, app_env.osm_run):
        m = runs.get_run(run_id).metrics
        assert m["reliability"]["count"] and f"{run_id} {m['ece']:.3f}" in caption
    fig = figures.reliability_figure(
        {app_env.demo_run: runs.get_run(app_env.demo_run).metrics["reliability"], "none": {}}
    )
    assert [t.name for t in fig.data] == ["calibrated", app_env.demo_run]  # the diagonal, then one line per run


def test_compare_shows_ablation_when_results_exist(app_env, tmp_path, monkeypatch):
    # A copy of the OSM run with an ablation.json in the format asgm.training.experiments.ablation writes.
    models = tmp_path / "models"
    shutil.copytree(app_env.models / app_env.osm_run, models / app_env.osm_run)
    layers = [
        {"layer": x, "zeroed_delta": {"f1": -0.1 * i, "precision": -0.05, "recall": 0.0}}
        for i, x in enumerate(("highway", "waterway", "building", "landuse", "aeroway"))
    ]
    (models / app_env.osm_run / "ablation.json").write_text(json.dumps({"run_id": app_env.osm_run, "layers": layers}))
    monkeypatch.setenv("ASGM_MODELS_DIR", str(models))
    at = run_page(page_script("Compare"))
    assert not at.exception
    assert "No ablation results yet" not in texts(at)
    assert any("zeroed at test time" in t.value for t in at.markdown)


# -- every page survives missing data -----------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["app.py", page_script("Map"), page_script("Patch viewer"), page_script("Train"), page_script("Compare")]
)
def test_pages_without_any_data(empty_env, name):
    at = AppTest.from_file(page(name), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert "Prepare the demo" in texts(at) + " ".join(b.label for b in at.button) or "No completed run" in texts(at)
