"""Train with my labels, fetching the imagery of reviewed Amazon Mining Watch detections (``--fetch gee|stac``)
through the project's one fetch path, tested at the transport boundary: the real earthengine-api and google-auth
clients talk to the local Earth Engine stand-in (``tests/sources/ee_fake.py``) on 127.0.0.1, pystac-client and
GDAL to the local STAC API with COG assets (``tests/sources/stac_catalogue.py``). The parent is a SYNTHETIC toy
store trained 1 epoch. Never run against the real services (docs/live-services.md)."""

from __future__ import annotations

import json
import shutil
import socket

import ee_fake
import numpy as np
import pandas as pd
import pytest
from _engine import toy_parent, use_folders
from ee_fake import PROJECT, band_values, error, service_account_key, walk_expression
from localhttp import LocalServer
from stac_catalogue import Scene, StacApi, area_around

from asgm.cli import main
from asgm.config import S2_BANDS, stores_dir
from asgm.data.store import PatchStore
from asgm.grid import patch_grid, utm_epsg
from asgm.review import items, retrain
from asgm.sources import gee

LON, LAT = -61.8123, 6.4021  # a detection in Bolívar, far (> 3 km) from every toy patch
AMW_SID = "rev-amw-amw_2022-det-7"


@pytest.fixture
def ee_env(data_env, monkeypatch):
    """No Earth Engine settings from the machine; the stand-in's URL and a service-account key when asked."""
    home = data_env / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("ASGM_EE_PROJECT", "EE_PROJECT", "ASGM_EE_SERVICE_ACCOUNT_JSON", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    for var in ("ASGM_EE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(data_env)  # no .streamlit/secrets.toml
    gee.reset()
    yield data_env
    gee.reset()


@pytest.fixture
def fake_ee(ee_env, monkeypatch):
    server = LocalServer()
    fake = ee_fake.configured(server, monkeypatch)
    yield fake
    server.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The toy store and a parent run trained 1 epoch on it, once for the module (copied into each test)."""
    root = tmp_path_factory.mktemp("retrain-fetch")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        run_id = toy_parent(root)
    return root, run_id


@pytest.fixture
def parent(trained, ee_env):
    root, run_id = trained
    for sub in ("data", "models"):
        shutil.copytree(root / sub, ee_env / sub, dirs_exist_ok=True)
    return run_id


def _mark_amw(item_id: str = "det-7", lon: float = LON, lat: float = LAT, label: str = "mining") -> None:
    items.mark(items.resolve("amw", "amw_2022", item_id, lon, lat, year=2022), label)


def _no_staging_left() -> None:
    building = stores_dir() / "_building"
    assert not building.exists() or not list(building.iterdir())


def test_an_amw_label_is_fetched_into_the_new_store_version(fake_ee, parent, capsys):
    items.mark(items.store_item("toy", "neg-0001"), "mining")
    mark = ["labels", "mark", "--amw", "amw_2022", "--item", "det-7", "--lon", str(LON), "--lat", str(LAT)]
    assert main([*mark, "--year", "2022", "--label", "mining"]) == 0
    capsys.readouterr()
    # without --fetch the detection is left out, saying how to fetch it
    sel = retrain.reviewed_items(retrain.parent_config(parent))
    assert sel.skipped == {"AMW detection (no imagery here; --fetch stac|gee fetches it)": 1}

    argv = ["labels", "train", "--from-run", parent, "--epochs", "1", "--bootstrap", "20", "--fetch", "gee", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    c = report["counts"]
    assert c["reviewed"] == 2 and c["fetched"] == 1 and c["fetch_failed"] == {} and c["skipped"] == {}
    assert any("Level-1C" in w for w in c["warnings"])  # L1C pixels joined a synthetic store: said

    # one computePixels request, on the detection's exact UTM grid, for the detection's year
    (req,) = fake_ee.pixel_requests()
    body = req.json()
    grid = patch_grid(LON, LAT, 48)
    assert body["grid"]["crsCode"] == grid.crs and body["grid"]["dimensions"] == {"width": 48, "height": 48}
    _, constants = walk_expression(body["expression"])
    assert "2022-01-01" in constants and "2023-01-01" in constants

    new = PatchStore.open(report["store"])
    idx = new.index().set_index("sample_id")
    row = idx.loc[AMW_SID]
    assert row["set"] == "reviewed" and int(row["label"]) == 1
    assert (row["source"], row["date_start"], row["date_end"], row["product_level"]) == (
        "gee",
        "2022-01-01",
        "2023-01-01",
        "L1C",
    )
    patch = new.read_patch(AMW_SID)
    assert patch.bands == S2_BANDS
    np.testing.assert_array_equal(patch.data, np.stack([band_values(i, 48) for i in range(len(S2_BANDS))]))
    rev = pd.read_csv(new.root / "reviewed.csv", dtype={"sample_id": str}).set_index("sample_id")
    assert rev.loc[AMW_SID, "item"] == "amw:amw_2022:det-7"
    assert rev.loc[AMW_SID, "fetched_from"] == "gee" and rev.loc[AMW_SID, "window_from"] == "year"
    assert "2022-01-01" in rev.loc[AMW_SID, "scenes"]
    assert new.meta.extra["reviewed"]["fetched"] == 1
    _no_staging_left()


def test_a_fetch_with_no_scene_is_skipped_with_its_reason(fake_ee, parent):
    items.mark(items.store_item("toy", "neg-0002"), "mining")
    _mark_amw()
    fake_ee.script = [
        error(400, "Image.select: Pattern 'B1' did not match any bands. Available bands: []", "INVALID_ARGUMENT")
    ]
    plan = retrain.prepare(parent, epochs=1, fetch="gee")
    c = plan.counts
    assert c["skipped"] == {"not fetched (gee): no Sentinel-2 scene covers it in its window": 1}
    assert list(c["fetch_failed"]) == ["amw:amw_2022:det-7"] and c["fetched"] == 0
    assert c["reviewed"] == 1  # the store patch still trains
    assert AMW_SID not in set(PatchStore.open(plan.config.store).index()["sample_id"])
    _no_staging_left()


def test_an_unreachable_earth_engine_skips_every_detection_with_one_reason(ee_env, parent, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: the connection is refused
    info, _ = service_account_key(f"http://127.0.0.1:{port}/token")
    monkeypatch.setenv("ASGM_EE_SERVICE_ACCOUNT_JSON", json.dumps(info))
    monkeypatch.setenv("ASGM_EE_PROJECT", PROJECT)
    monkeypatch.setenv("ASGM_EE_URL", f"http://127.0.0.1:{port}")
    items.mark(items.store_item("toy", "neg-0003"), "mining")
    _mark_amw("det-7")
    _mark_amw("det-8", LON + 0.5, LAT)
    plan = retrain.prepare(parent, epochs=1, fetch="gee")
    ((reason, n),) = plan.counts["skipped"].items()
    assert n == 2 and reason.startswith("not fetched (gee): cannot reach 127.0.0.1") and "\n" not in reason
    assert plan.counts["reviewed"] == 1
    _no_staging_left()


def test_missing_credentials_leave_nothing_to_train_with_one_clear_line(ee_env, parent, capsys):
    _mark_amw()
    argv = ["labels", "train", "--from-run", parent, "--epochs", "1", "--fetch", "gee"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reviewed item can train" in err[0] and "no Earth Engine credentials" in err[0]
    assert not [s for s in stores_dir().iterdir() if s.name.startswith("toy-reviewed")]
    _no_staging_left()


def test_a_cancel_during_the_fetch_leaves_no_store_and_no_staging(fake_ee, parent):
    items.mark(items.store_item("toy", "neg-0004"), "mining")
    _mark_amw()
    asked = []

    def cancelled() -> bool:  # the cancel arrives once the first patch is fetched
        asked.append(1)
        return len(fake_ee.pixel_requests()) >= 1

    with pytest.raises(retrain.RetrainCancelled):
        retrain.prepare(parent, epochs=1, fetch="gee", cancelled=cancelled)
    assert asked and len(fake_ee.pixel_requests()) == 1
    assert not [s for s in stores_dir().iterdir() if s.name.startswith("toy-reviewed")]
    _no_staging_left()


def test_an_amw_label_is_fetched_through_stac(ee_env, parent, monkeypatch, tmp_path):
    server = LocalServer()
    try:
        api = StacApi(server, tmp_path)
        api.add_scene(area_around([(LON, LAT)], utm_epsg(LON, LAT)), Scene("2022-03-15"), "S2B_T20NQL_20220315_0")
        monkeypatch.setenv("ASGM_STAC_URL", api.url)
        items.mark(items.store_item("toy", "neg-0005"), "mining")
        _mark_amw()
        plan = retrain.prepare(parent, epochs=1, fetch="stac")
    finally:
        server.close()
    assert plan.counts["fetched"] == 1 and plan.counts["skipped"] == {}
    new = PatchStore.open(plan.config.store)
    row = new.index().set_index("sample_id").loc[AMW_SID]
    assert (row["set"], row["source"], row["product_level"], row["date_start"]) == (
        "reviewed",
        "stac",
        "L2A",
        "2022-01-01",
    )
    assert new.read_patch(AMW_SID).data.any()
    rev = pd.read_csv(new.root / "reviewed.csv", dtype={"sample_id": str}).set_index("sample_id")
    assert rev.loc[AMW_SID, "fetched_from"] == "stac" and api.url in rev.loc[AMW_SID, "scenes"]
    _no_staging_left()
