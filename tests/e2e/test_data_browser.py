"""Browser test of the Data page, offline, against the local STAC API and the local Overpass stand-in (real
HTTP; their URLs reach the app through ASGM_STAC_URL and ASGM_OVERPASS_URL): upload a GeoJSON -> fetch its
patches (STAC) -> fetch + rasterize OSM -> coverage; a slow OSM fetch is cancelled; a STAC API that went
away fails with its reason shown; then a 2-epoch RGB + OSM run trained from the Train page, and the Patch
viewer's highway toggle changes its probability."""

from __future__ import annotations

import time
from pathlib import Path

import data_scenario as ds
import pytest
from conftest import app_server, shot, stop_training_processes
from localhttp import LocalServer
from overpass_standin import FakeOverpass, serve_overpass
from ui_env import env_vars  # noqa: E402

pytestmark = pytest.mark.e2e


def _wait_job(env: dict[str, str], title_part: str, timeout: float = 240.0):
    """The newest job whose title contains ``title_part``, once it has ended."""
    from asgm.jobs import runner as jobs

    end = time.monotonic() + timeout
    with env_vars(env):
        while True:
            found = [j for j in jobs.list_jobs() if title_part in j.title]
            if found and not found[0].active:
                return found[0]
            assert time.monotonic() < end, [(j.title, j.status, j.log_tail()[-500:]) for j in jobs.list_jobs()]
            time.sleep(0.5)


def _upload_and_fetch(page, url: str, points: Path, store: str) -> None:
    page.goto(f"{url}/Data")
    page.get_by_text("Upload GeoJSON / CSV").click()
    page.locator("input[type=file]").set_input_files(str(points))
    page.get_by_text(f"{points.name}: {len(ds.points())} points (12 mining, 12 not mining)").wait_for()
    name = page.get_by_label("New store name")
    name.fill(store)
    name.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Fetch patches").click()
    page.get_by_text("Started job").wait_for()


def test_data_page_fetches_patches_and_osm_then_osm_toggle_changes_prediction(tmp_path, new_page):
    page = new_page
    server = LocalServer()
    api = ds.stac_api(server, tmp_path)
    points = ds.write_points(tmp_path / "sites.geojson")
    models = tmp_path / "models"
    try:
        with serve_overpass(FakeOverpass(ds.osm_elements())) as fake:
            env = {
                "ASGM_DATA_DIR": str(tmp_path / "data"),
                "ASGM_MODELS_DIR": str(models),
                "ASGM_APP_AUTOPREPARE": "0",
                "ASGM_STAC_URL": api.url,
                "ASGM_OVERPASS_URL": fake.url,
                "NO_PROXY": "127.0.0.1,localhost",
            }
            with app_server(env, tmp_path) as url:
                # 1. patches from the uploaded points (STAC)
                _upload_and_fetch(page, url, points, "e2e")
                job = _wait_job(env, "into e2e")
                assert job.status == "completed", (job.error, job.log_tail())
                assert job.progress["done"] == job.progress["total"] == 24
                # 2. OSM for the new store, then its coverage table
                page.reload()
                page.get_by_role("button", name="Fetch OSM and rasterize").click()
                page.get_by_text("Started job").wait_for()
                job = _wait_job(env, "OSM for e2e")
                assert job.status == "completed", (job.error, job.log_tail())
                page.reload()
                page.get_by_text("Coverage of").wait_for()
                shot(page, "data_page")
                assert fake.queries and all('[date:"2022-01-01T00:00:00Z"]' in q for q in fake.queries)
                # 3. a slow OSM fetch (today's OSM: another job) is cancelled from the jobs panel
                fake.delay_s = 5.0
                page.get_by_text("Today's OSM instead of a dated snapshot").click()
                page.wait_for_timeout(500)
                page.get_by_role("button", name="Fetch OSM and rasterize").click()
                page.get_by_text("Started job").wait_for()
                page.get_by_role("button", name="Cancel").first.click(timeout=30_000)
                job = _wait_job(env, "OSM for e2e (current)")
                assert job.status == "cancelled"
                fake.delay_s = 0.0
                # 4. the STAC API goes away: the fetch fails and says why
                server.down = True
                _upload_and_fetch(page, url, points, "e2e-down")
                job = _wait_job(env, "into e2e-down")
                assert job.status == "failed" and "cannot reach the STAC API" in job.error
                page.get_by_text("cannot reach the STAC API").first.wait_for()
                shot(page, "data_page_jobs")
                server.down = False
                # 5. a 2-epoch RGB + OSM run from the Train page
                page.goto(f"{url}/Train")
                page.get_by_text("Dataset (patch store)").wait_for()
                page.get_by_test_id("stSelectbox").first.click()
                page.get_by_role("option", name="e2e").first.click()
                page.get_by_text("OSM channels").click()
                epochs = page.get_by_label("Epochs")
                epochs.fill("2")
                page.get_by_role("button", name="Train").click()
                page.get_by_text("Training started as run").wait_for()
                job = _wait_job(env, "train ", timeout=300)
                assert job.status == "completed", (job.error, job.log_tail())
                run_id = job.extra["run_id"]
            # 6. the Patch viewer's highway toggle changes the prediction
            from asgm.model import inference

            with env_vars(env):
                effects = {}
                for k in range(0, 24, 4):  # the positives (file order: 2 positives, 2 negatives per cluster)
                    sid = f"sites-{k:04d}"
                    full = inference.classify(run_id, "e2e", sid)["prob"]
                    zeroed = inference.classify(run_id, "e2e", sid, zero_layers=("highway",))["prob"]
                    effects[sid] = (abs(full - zeroed), full, zeroed)
            sid = max(effects, key=lambda s: effects[s][0])
            _, full, zeroed = effects[sid]
            assert f"{full:.4f}" != f"{zeroed:.4f}", effects
            with app_server(env, tmp_path) as url:
                page.goto(f"{url}/Patch_viewer?store=e2e&sample={sid}&run={run_id}")
                page.get_by_test_id("stMetricValue").first.wait_for()
                metric = "(v) => document.querySelector('[data-testid=stMetricValue]').innerText.trim() == v"
                page.wait_for_function(metric, arg=f"{full:.4f}")
                page.get_by_text("highway (", exact=False).first.click()
                page.wait_for_function(metric, arg=f"{zeroed:.4f}")
                shot(page, "patch_viewer_fetched_store")
    finally:
        stop_training_processes(models)
        server.close()
