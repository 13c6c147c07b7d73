"""Region scan end to end on SYNTHETIC mosaics with known mine sites, with a fixed-weight detector run
built from the project's CNN (``scan_support``): detections, masked pixels, outputs, resume, cancel,
bad areas, the Dask path on a local cluster, change between two years, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from scan_support import detector_run
from shapely.geometry import Polygon, box

from asgm.cli import main as cli_main
from asgm.errors import AsgmError
from asgm.grid import utm_epsg
from asgm.jobs.dask_client import ClusterError
from asgm.scan import area, driver
from asgm.scan import change as scan_change
from asgm.scan import outputs as scan_outputs
from asgm.scan import tiles as scan_tiles
from asgm.scan import windows as scan_windows
from asgm.sources.synthetic_mosaic import write_mosaic

LON, LAT = -61.8, 6.4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A models dir with the detector run, and two mosaics of the same place: 2021 with 3 mines and a
    masked (cloud) corner, 2022 with the same 3 mines plus one new."""
    root = tmp_path_factory.mktemp("scan")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASGM_MODELS_DIR", str(root / "models"))
        mp.setenv("ASGM_DATA_DIR", str(root / "data"))
        run_id = detector_run()
        m21 = write_mosaic(
            root / "m2021.tif", LON, LAT, size_px=600, n_mines=3, seed=1, year=2021, masked_boxes=[(0.0, 0.0, 0.2, 0.2)]
        )
        m22 = write_mosaic(root / "m2022.tif", LON, LAT, size_px=600, n_mines=4, seed=1, year=2022)
        with rasterio.open(m21.path) as src:
            aoi = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
        yield {"root": root, "run": run_id, "m21": m21, "m22": m22, "aoi": aoi, "models": root / "models"}


@pytest.fixture
def env(world, monkeypatch, tmp_path):
    monkeypatch.setenv("ASGM_MODELS_DIR", str(world["models"]))
    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path / "data"))
    return world


def _scan(env, out, **kw):
    kw.setdefault("source", str(env["m21"].path))
    kw.setdefault("tile_windows", 8)
    aoi, year = kw.pop("aoi", env["aoi"]), kw.pop("year", 2021)
    names = {f.name for f in dataclasses.fields(driver.ScanOptions)}
    options = driver.ScanOptions(**{k: v for k, v in kw.items() if k in names})
    return driver.scan(aoi, year, env["run"], out, options, **{k: v for k, v in kw.items() if k not in names})


def test_detections_land_on_the_known_mines_and_outputs_are_complete(env, tmp_path):
    out = tmp_path / "scan"
    s = _scan(env, out)
    mines = env["m21"].mines.to_crs(env["m21"].epsg)
    det = gpd.read_file(out / "detections.geojson")
    assert det.crs.to_epsg() == 4326 and len(det) == s["detections"] >= 1
    det_utm = det.to_crs(env["m21"].epsg)
    for site, geom in zip(mines["site"], mines.geometry, strict=True):
        assert det_utm.intersects(geom).any(), f"{site} not detected"
    # Bare soil exists only at the mines: every detection touches one (no look-alike fields or sandbars).
    assert all(g.intersects(mines.union_all()) for g in det_utm.geometry)
    assert (det["max_prob"] >= s["thresholds"]["high"]).all() and (det["mean_prob"] <= det["max_prob"]).all()
    assert np.allclose(det["area_ha"], det_utm.area / 1e4, rtol=1e-3)
    # The masked corner: its windows are not scored, its pixels reported.
    assert s["windows_masked"] > 0 and s["pixels_masked"] > 0
    assert s["windows_scored"] + s["windows_masked"] == s["windows_aoi"]
    assert 0.01 < s["masked_pixel_fraction"] < 0.06  # a 120 px square corner, minus the AOI margin, of ~557² px
    fc = json.loads((out / "detections.geojson").read_text())
    assert fc["asgm"]["thresholds"]["high"] == 0.5 and fc["asgm"]["thresholds"]["low"] == 0.3
    assert fc["asgm"]["synthetic"] is True and "SYNTHETIC" in fc["asgm"]["note"]
    with rasterio.open(out / "probability.tif") as src:
        assert src.tags()["high_threshold"] == "0.5" and src.tags()["low_threshold"] == "0.3"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        prob = src.read(1)
        assert src.res == (240.0, 240.0) and src.crs.to_epsg() == env["m21"].epsg
    with np.load(out / "cells.npz") as z:
        assert np.array_equal(np.isnan(prob), np.isnan(z["prob"]))
        assert np.isnan(prob).sum() == s["windows_masked"]
    assert json.loads((out / "summary.json").read_text())["detections"] == s["detections"]
    assert s["warnings"] == []  # a 2021 mosaic scanned as 2021, a synthetic-level model on synthetic imagery
    assert not list(out.rglob(".tmp-*"))


def test_dual_threshold_keeps_low_windows_only_next_to_confirmed_ones():
    p = np.array([[0.9, 0.4, 0.0, 0.4], [0.0, 0.0, 0.0, 0.0], [np.nan, 0.45, 0.0, 0.0]], dtype=np.float32)
    detected, confirmed = scan_outputs.dual_threshold(p, high=0.8, low=0.3)
    assert confirmed.sum() == 1
    assert detected.tolist() == [[True, True, False, False], [False, False, False, False], [False, False, False, False]]


def test_resume_and_cancel_keep_finished_tiles(env, tmp_path):
    full = _scan(env, tmp_path / "full")
    out = tmp_path / "part"
    calls = []

    def cancel():
        calls.append(1)
        return len(list((out / "tiles").glob("*.npz"))) >= 3

    with pytest.raises(scan_tiles.ScanCancelled, match="resume"):
        _scan(env, out, cancel=cancel)
    assert len(list((out / "tiles").glob("*.npz"))) == 3 and not (out / "detections.geojson").exists()
    seen = []
    s = _scan(env, out, progress=lambda d, t: seen.append((d, t)))
    assert s["tiles_resumed"] == 3 and seen[0] == (3, 9) and seen[-1] == (9, 9)
    with np.load(tmp_path / "full" / "cells.npz") as a, np.load(out / "cells.npz") as b:
        assert np.array_equal(a["prob"], b["prob"], equal_nan=True)
    assert s["detections"] == full["detections"]


def test_another_scan_in_the_same_folder_is_refused(env, tmp_path):
    out = tmp_path / "scan"
    _scan(env, out)
    with pytest.raises(area.ScanError, match="another scan"):
        _scan(env, out, stride=16)
    assert _scan(env, out, stride=16, overwrite=True)["grid"]["stride_px"] == 16


@pytest.mark.parametrize(
    "aoi, match",
    [
        (Polygon([(-61.81, 6.39), (-61.79, 6.41), (-61.79, 6.39), (-61.81, 6.41)]), "not a valid polygon"),
        (Polygon(), "empty"),
        (box(10.0, 45.0, 10.02, 45.02), "does not reach"),
        (box(-62.3, 6.0, -61.3, 6.9), "over the limit"),
        ("-61.79,6.39,-61.81,6.41", "empty"),
        ("no-such-file.geojson", "neither a GeoJSON file nor a bbox"),
    ],
)
def test_bad_areas_are_refused_and_nothing_is_written(env, tmp_path, aoi, match):
    out = tmp_path / "scan"
    with pytest.raises(area.AoiError, match=match):
        _scan(env, out, aoi=aoi, max_area_km2=500)
    assert not out.exists()


def test_geojson_and_bbox_areas(env, tmp_path):
    path = tmp_path / "aoi.geojson"
    path.write_text(gpd.GeoDataFrame(geometry=[env["aoi"]], crs="EPSG:4326").to_json())
    g1 = area.load_aoi(str(path))
    assert g1.equals_exact(env["aoi"], 1e-9)
    g2 = area.load_aoi("-61.81,6.39,-61.79,6.41")
    assert g2.bounds == (-61.81, 6.39, -61.79, 6.41)


def test_dask_local_cluster_gives_the_single_process_result(env, tmp_path):
    from distributed import Client, LocalCluster

    single = _scan(env, tmp_path / "single")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        dist = _scan(env, tmp_path / "dask", scheduler=client)
        assert len(client.scheduler_info()["workers"]) == 2
    with np.load(tmp_path / "single" / "cells.npz") as a, np.load(tmp_path / "dask" / "cells.npz") as b:
        assert np.array_equal(a["prob"], b["prob"], equal_nan=True)
        assert np.array_equal(a["detected"], b["detected"])
    for k in ("detections", "detected_area_ha", "windows_scored", "windows_masked", "pixels_masked"):
        assert dist[k] == single[k], k


def test_unreachable_scheduler_is_a_clear_error(env, tmp_path):
    with pytest.raises(ClusterError, match="dask scheduler"):
        _scan(env, tmp_path / "x", scheduler="tcp://127.0.0.1:9")


def test_change_between_two_years(env, tmp_path):
    _scan(env, tmp_path / "a")
    _scan(env, tmp_path / "b", source=str(env["m22"].path), year=2022)
    r = scan_change.diff_scans(tmp_path / "a", tmp_path / "b", tmp_path / "change")
    assert (r["year_a"], r["year_b"]) == (2021, 2022)
    wrong = _scan(env, tmp_path / "c", source=str(env["m22"].path), year=2023)
    assert any("2022 composite but was scanned as 2023" in w for w in wrong["warnings"])
    assert r["gone_count"] == 0 and r["persistent_count"] == 3
    change = gpd.read_file(tmp_path / "change" / "change.geojson").to_crs(env["m22"].epsg)
    new_mine = env["m22"].mines.to_crs(env["m22"].epsg).geometry.iloc[3]
    new = change[change["change"] == "new"]
    assert r["new_count"] >= 1 and new.intersects(new_mine).any()
    assert r["new_ha"] == pytest.approx(new["area_ha"].sum(), rel=1e-3)
    # The masked corner of 2021 is scanned in 2022 only: anything detected there is "unknown", not "new".
    assert set(change["change"]) <= {"new", "gone", "persistent", "unknown"}


def test_cli_scan_run_and_diff(env, tmp_path, capsys):
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(gpd.GeoDataFrame(geometry=[env["aoi"]], crs="EPSG:4326").to_json())
    base = [
        "scan",
        "run",
        "--aoi",
        str(aoi),
        "--run",
        env["run"],
        "--tile-windows",
        "8",
        "--scheduler",
        "none",
        "--json",
    ]
    assert cli_main([*base, "--year", "2021", "--source", str(env["m21"].path), "--out", str(tmp_path / "a")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["detections"] >= 3 and rep["synthetic"] is True
    assert cli_main([*base, "--year", "2022", "--source", str(env["m22"].path), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert cli_main(["scan", "diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["persistent_count"] == 3
    assert (
        cli_main(
            [
                "scan",
                "run",
                "--aoi",
                "1,2,3",
                "--run",
                env["run"],
                "--year",
                "2021",
                "--source",
                str(env["m21"].path),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 1
    )
    assert "bbox" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_unusable_runs_and_settings_are_refused_before_writing(env, tmp_path, monkeypatch):
    from asgm.config import S2_BANDS, ExperimentConfig
    from asgm.model.runs import RunFolder, create_run
    from asgm.scan import driver

    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    folder = create_run(
        ExperimentConfig(store="synthetic", bands=S2_BANDS, osm_layers=("highway",)),
        "20260101-000000-osm-run",
        status="completed",
    )
    folder.write_json("metrics.json", {"threshold": 0.5})
    # A real model archive: the run is usable as a model (not 'corrupt'), so its OSM layers are what is refused.
    folder.model_path.write_bytes(RunFolder.of(detector_run()).model_path.read_bytes())
    osm = folder.run_id
    running = create_run(
        ExperimentConfig(store="synthetic", bands=S2_BANDS), "20260101-000000-busy-run", status="running"
    ).run_id
    out = tmp_path / "scan"
    for run_id, kw, match in [
        (osm, {}, "OSM layers"),
        (running, {}, "is running"),
        (detector_run(), {"high": 0.3, "low": 0.6}, "low <= high"),
        (detector_run(), {"stride": 0}, "stride"),
        (detector_run(), {"source": str(tmp_path / "missing.tif")}, "no mosaic file"),
    ]:
        kw.setdefault("source", str(env["m21"].path))
        with pytest.raises(AsgmError, match=match):
            driver.scan(env["aoi"], 2021, run_id, out, driver.ScanOptions(tile_windows=8, **kw))
        assert not out.exists(), match


def test_window_batches_are_the_windows_in_order_one_contiguous_copy_each():
    rng = np.random.default_rng(3)
    x = rng.random((130, 118, 5), dtype=np.float32)
    w, stride = 48, 24
    rows, cols = (x.shape[0] - w) // stride + 1, (x.shape[1] - w) // stride + 1
    ii, jj = np.nonzero(rng.random((rows, cols)) > 0.3)
    seen = []
    for sel, batch in scan_tiles.window_batches(x, w, stride, ii, jj, batch_size=3):
        assert batch.flags.c_contiguous and batch.dtype == np.float32 and len(batch) <= 3
        assert not np.shares_memory(batch, x)  # a copy: the model may keep it, the tile may go
        for k, i, j in zip(range(len(batch)), ii[sel], jj[sel], strict=True):
            assert np.array_equal(batch[k], x[i * stride : i * stride + w, j * stride : j * stride + w])
        seen += list(range(len(ii)))[sel]
    assert seen == list(range(len(ii)))


def test_read_ahead_yields_every_tile_as_read_in_order_and_stops_cleanly(env):
    import threading

    from asgm.sources.composite import open_composite

    composite = open_composite(str(env["m21"].path), 2021, None)
    geom, _ = area.check_aoi(env["aoi"])
    epsg = utm_epsg(*geom.centroid.coords[0])
    grid = scan_windows.make_grid(area._to_utm(geom, epsg), epsg, 48, 24, 8)
    cells = np.ones((grid.ny, grid.nx), bool)
    cells[grid.tile_slices(0, 1)] = False  # a tile outside the AOI is not read
    jobs = []
    for ti, tj in grid.tiles:
        rs, cs = grid.tile_slices(ti, tj)
        jobs.append(
            scan_tiles.TileJob(
                ti, tj, grid.tile_grid(ti, tj), rs.stop - rs.start, cs.stop - cs.start, 24, cells[rs, cs], b""
            )
        )
    got = list(scan_tiles.read_ahead(jobs, composite))
    assert [j for j, _ in got] == jobs
    for job, dn in got:
        if (job.ti, job.tj) == (0, 1):
            assert dn is None
        else:
            assert np.array_equal(dn, composite.read(job.grid))
    before = {t.name for t in threading.enumerate()}
    for _ in scan_tiles.read_ahead(jobs, composite):
        break  # the caller stops (cancel, error): the pending read is dropped, its thread ends
    assert not any(t.name.startswith("asgm-scan-read") for t in threading.enumerate() if t.name not in before)


def test_local_workers_share_the_cores_among_tensorflow_threads():
    from asgm.jobs.dask_client import dask_client, worker_env, worker_threads

    assert (worker_threads(2, 2), worker_threads(2, 8), worker_threads(3, 2), worker_threads(1, 4)) == (1, 4, 1, 4)
    env = worker_env(2, 8)
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "4" and env["TF_NUM_INTEROP_THREADS"] == "1"
    with dask_client("local", workers=2) as client:
        seen = client.run(os.getenv, "TF_NUM_INTRAOP_THREADS")  # (a bound os.environ.get would travel as a copy)
        profiling = client.run(_worker_profiling)
    assert list(seen.values()) == [str(worker_threads(2))] * 2
    assert list(profiling.values()) == [False, False]  # the profiler's sampling is not paid for in scans


def _worker_profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def _plant(out, grid_tile_windows, i, j, value):
    """Set window (i, j)'s probability in its saved tile result (what the scan reads back to resume)."""
    ti, tj = i // grid_tile_windows, j // grid_tile_windows
    path = out / "tiles" / f"r{ti:04d}_c{tj:04d}.npz"
    r = scan_tiles.TileResult.from_file(path)
    r.prob[i - ti * grid_tile_windows, j - tj * grid_tile_windows] = value
    path.write_bytes(r.to_bytes())


def test_spatial_prior_drops_an_isolated_window_and_keeps_the_mines(env, tmp_path, capsys):
    from asgm.model.spatial_prior import SpatialPrior

    out = tmp_path / "scan"
    _scan(env, out, high=0.5, low=0.3)
    with np.load(out / "cells.npz") as z:
        prob, detected = z["prob"], z["detected"]
    # a scored window whose 5 x 5 neighbourhood is scored and quiet
    quiet = np.nan_to_num(prob, nan=1.0) < 0.2
    ii, jj = np.nonzero(quiet)
    i, j = next(
        (a, b)
        for a, b in zip(ii, jj, strict=True)
        if 2 <= a < prob.shape[0] - 2 and 2 <= b < prob.shape[1] - 2 and quiet[a - 2 : a + 3, b - 2 : b + 3].all()
    )
    _plant(out, 8, i, j, 0.6)
    # without the prior the lone 0.6 window is a detection of its own (0.6 >= high)
    plain = _scan(env, out, high=0.5, low=0.3)
    with np.load(out / "cells.npz") as z:
        assert z["detected"][i, j] and plain["detections"] == len(_detection_ids(detected)) + 1
    prior = _scan(env, out, spatial_prior=SpatialPrior())
    assert prior["tiles_resumed"] == prior["tiles"]  # the rule is applied to the saved probabilities
    sp = prior["spatial_prior"]
    assert sp["t_main"] == 0.43 and sp["t_iso"] == 0.75 and sp["k"] == 5 and sp["radius_m"] == 3000.0
    assert prior["thresholds"]["high"] == 0.75 and prior["thresholds"]["low"] == 0.43
    with np.load(out / "cells.npz") as z:
        assert z["isolated"][i, j] and not z["detected"][i, j]
        kept = z["detected"]
    assert sp["dropped_isolated"] >= 1 and sp["kept"] == int(kept.sum())
    assert json.loads((out / "summary.json").read_text())["spatial_prior"] == sp
    # the known mines are still found: the windows over them have candidates next to them
    assert (kept & detected).sum() >= 0.5 * detected.sum() and prior["detections"] >= 3
    # a lone window that clears t_iso is kept (the CLI, same folder: only the rule changes)
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(gpd.GeoDataFrame(geometry=[env["aoi"]], crs="EPSG:4326").to_json())
    assert (
        cli_main(
            [
                "scan",
                "run",
                "--aoi",
                str(aoi),
                "--run",
                env["run"],
                "--tile-windows",
                "8",
                "--scheduler",
                "none",
                "--year",
                "2021",
                "--source",
                str(env["m21"].path),
                "--out",
                str(out),
                "--json",
                "--spatial-prior",
                "--t-iso",
                "0.55",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["spatial_prior"]["t_iso"] == 0.55
    with np.load(out / "cells.npz") as z:
        assert z["isolated"][i, j] and z["detected"][i, j]
    with pytest.raises(area.ScanError, match="not both"):
        _scan(env, out, high=0.5, spatial_prior=SpatialPrior())


def _detection_ids(mask):
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    return list(range(1, n + 1))
