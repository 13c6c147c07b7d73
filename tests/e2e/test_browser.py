"""Browser tests: a real ``streamlit run app.py`` and headless Chromium, offline (Leaflet served locally).

1. first start with no model at all: the demo pack is built and the default model's training starts in the
   background, its progress on Home (the click after a first start: ``test_pages_browser``);
2. the patch viewer: turning an OSM layer off re-runs the prediction with that channel zeroed;
3. the Train page launches a 2-epoch run on a tiny store; progress shows; the run appears in Compare.
One screenshot per page goes to test-artifacts/.
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import app_server, shot, stop_training_processes

pytestmark = pytest.mark.e2e


def _completed_runs(models) -> list:
    from asgm.model import runs

    return [r for r in runs.list_runs(root=models) if r.status == "completed"]


def test_first_start_without_a_model_trains_the_default_one_with_live_progress(tmp_path, new_page):
    """No run at all (a models folder of its own, nothing shipped): the first start builds the demo store and
    trains the small default model in the background, its progress live on Home. The click that follows a first
    start is tested with a model present (``test_pages_browser``): waiting here for 8 epochs tests nothing more."""
    page = new_page
    data, models = tmp_path / "data", tmp_path / "models"
    env = {"ASGM_DATA_DIR": str(data), "ASGM_MODELS_DIR": str(models), "ASGM_APP_AUTOPREPARE": "1"}
    try:
        with app_server(env, tmp_path) as url:
            page.goto(url)
            page.get_by_text("Getting started").wait_for()
            page.get_by_text("Training").first.wait_for(timeout=120_000)  # live progress of the default run
            shot(page, "home_first_start")
            from asgm.model import runs
            from asgm.training.first_start import default_config

            [run] = runs.list_runs(root=models)
            assert (
                run.config is not None
                and run.config.name == default_config().name
                and run.status in ("queued", "running")
            )
            assert (data / "stores" / "demo" / "store.json").exists()
            # Offline: nothing was fetched from a CDN.
            cdn = [u for u in page.failed_requests if "cdn" in u or "jquery.com" in u]
            assert not cdn, cdn
    finally:
        stop_training_processes(models)


def test_patch_viewer_osm_toggle_updates_prediction(ui_env, tmp_path, new_page):
    from ui_env import env_vars

    from asgm.model import inference

    page = new_page
    with env_vars(ui_env.environ()):
        # The positive whose prediction depends most on the highway channel (positives carry a road).
        effects = {}
        for k in range(10):
            sid = f"pos-{k:04d}"
            full, zeroed = (
                inference.classify(ui_env.osm_run, "toy", sid),
                inference.classify(ui_env.osm_run, "toy", sid, zero_layers=("highway",)),
            )
            effects[sid] = (abs(full["prob"] - zeroed["prob"]), full, zeroed)
        sid = max(effects, key=lambda k: effects[k][0])
        _, full, zeroed = effects[sid]
    assert f"{full['prob']:.4f}" != f"{zeroed['prob']:.4f}", "the toy model ignores highway; the test cannot tell"
    with app_server({**ui_env.environ(), "ASGM_APP_AUTOPREPARE": "0"}, tmp_path) as url:
        page.goto(f"{url}/Patch_viewer?store=toy&sample={sid}&run={ui_env.osm_run}")
        value = page.get_by_test_id("stMetricValue").first
        value.wait_for()
        page.wait_for_function(
            "(v) => document.querySelector('[data-testid=stMetricValue]').innerText.trim() == v",
            arg=f"{full['prob']:.4f}",
        )
        page.get_by_text("highway (", exact=False).first.click()
        page.wait_for_function(
            "(v) => document.querySelector('[data-testid=stMetricValue]').innerText.trim() == v",
            arg=f"{zeroed['prob']:.4f}",
        )
        page.get_by_text("zeroed: highway").wait_for()
        shot(page, "patch_viewer")


def test_train_page_launches_run_shows_progress_and_compare_lists_it(ui_env, tmp_path, new_page):
    page = new_page
    models = tmp_path / "models"  # its own run store: the shared environment stays unchanged
    env = {"ASGM_DATA_DIR": str(ui_env.data), "ASGM_MODELS_DIR": str(models), "ASGM_APP_AUTOPREPARE": "0"}
    try:
        with app_server(env, tmp_path) as url:
            page.goto(f"{url}/Train")
            page.get_by_text("Dataset (patch store)").wait_for()
            page.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="toy").click()
            epochs = page.get_by_label("Epochs")
            epochs.fill("2")
            page.get_by_role("button", name="Train").click()
            page.get_by_text("Training started as run").wait_for()
            run_id = page.locator("strong").filter(has_text="-").first.inner_text()
            page.get_by_text("Training now").wait_for()
            # Live progress, polled by a fragment every 2 s (epochs of this tiny store take < 1 s, so any
            # of 0/2, 1/2, 2/2 may be the one on screen).
            page.get_by_text(re.compile(r"epoch [0-2]/2")).first.wait_for(timeout=120_000)
            shot(page, "train")
            deadline = time.time() + 180
            while not _completed_runs(models):
                assert time.time() < deadline, "the 2-epoch run did not finish in 180 s"
                time.sleep(1)
            done = _completed_runs(models)[0]
            assert done.run_id == run_id and done.config.store == "toy" and done.config.epochs == 2
            page.goto(f"{url}/Compare")
            page.get_by_text("Runs for curves and confusion matrices").wait_for()
            page.locator(f"text={run_id} >> visible=true").first.wait_for()  # the table cells are a canvas
            page.get_by_text("Download table (CSV)").wait_for()
            shot(page, "compare")
            page.goto(url)
            page.get_by_text("Data on this machine").wait_for()
            shot(page, "home")
    finally:
        stop_training_processes(models)
