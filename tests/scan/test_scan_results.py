"""The app's side of region scans without a browser: a scan request checked before anything is written
(``asgm.scan.request``), and finished scans listed, tabulated, exported, re-read window by window and
compared between two years (``asgm.scan.results``). SYNTHETIC mosaics with known mines and the
fixed-weight detector run of ``scan_support``."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from _engine import use_folders
from rasterio.warp import transform_bounds
from scan_support import detector_run
from shapely.geometry import Point, box, mapping

from asgm.errors import AsgmError
from asgm.model import inference, runs
from asgm.scan import area as scan_area
from asgm.scan import driver
from asgm.scan import request as scan_request
from asgm.scan import results as scan_results
from asgm.sources.synthetic_mosaic import write_mosaic

LON, LAT = -61.8, 6.4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data dir with two finished SYNTHETIC scans of the same area (2021: 2 mines, 2022: 3) and the detector."""
    root = tmp_path_factory.mktemp("scan-results")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        run_id = detector_run()
        mosaics = {
            y: write_mosaic(root / f"m{y}.tif", LON, LAT, size_px=400, n_mines=n, seed=1, year=y)
            for y, n in ((2021, 2), (2022, 3))
        }
        with rasterio.open(mosaics[2021].path) as src:
            aoi = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
        for y, m in mosaics.items():
            driver.scan(
                aoi,
                y,
                run_id,
                scan_results.scans_dir() / f"area-{y}",
                driver.ScanOptions(source=str(m.path), tile_windows=8),
            )
        yield {"root": root, "run": run_id, "aoi": aoi, "mosaics": mosaics}


@pytest.fixture
def env(world, monkeypatch):
    use_folders(monkeypatch, world["root"])
    return world


def test_list_scans_and_detections_table(env):
    entries = {e.name: e for e in scan_results.list_scans()}
    assert set(entries) == {"area-2021", "area-2022"}
    e = entries["area-2021"]
    assert e.finished and e.year == 2021 and e.synthetic and e.run_id == env["run"] and "SYNTHETIC" in e.label
    s = scan_results.open_scan("area-2021")
    table = scan_results.detections_table(s)
    assert list(table.columns) == scan_results.TABLE_COLUMNS and len(table) == len(s.detections) == e.detections >= 1
    cells = np.load(s.folder / "cells.npz")["prob"]
    mines = env["mosaics"][2021].mines.union_all()
    for row, geom in zip(table.itertuples(), s.detections.geometry, strict=True):
        i, j = scan_results.parse_window(row.window)
        assert cells[i, j] == pytest.approx(row.max_prob, abs=1e-4)  # the window of the detection's maximum
        assert (
            geom.contains(Point(row.centroid_lon, row.centroid_lat))
            or geom.distance(Point(row.centroid_lon, row.centroid_lat)) < 1e-3
        )
        assert geom.intersects(mines)  # the detector finds bare soil, which only the mines have
    csv = scan_results.table_csv(table, synthetic=True)
    assert csv.startswith(b"# SYNTHETIC")
    back = pd.read_csv(io.BytesIO(csv), comment="#")
    assert back["id"].tolist() == table["id"].tolist() and np.allclose(back["area_ha"], table["area_ha"])
    fc = json.loads(scan_results.detections_geojson(s))
    assert len(fc["features"]) == len(table) and fc["asgm"]["synthetic"] is True


def test_a_window_classified_in_the_viewer_gets_the_scan_probability(env):
    """One inference path: the window re-read from the mosaic and classified like a store patch gives the
    probability the scan recorded for it."""
    s = scan_results.open_scan("area-2021")
    row = scan_results.detections_table(s).iloc[0]
    i, j = scan_results.parse_window(row["window"])
    patch = scan_results.window_patch(s, i, j)
    assert patch.data.shape == (12, 48, 48) and patch.label == -1 and patch.source == "synthetic"
    assert box(*s.aoi.bounds).buffer(0.01).contains(Point(patch.lon, patch.lat))
    info = runs.get_run(env["run"])
    res = inference.classify_patch(runs.load_model(env["run"]), info, patch, None)
    assert res["prob"] == pytest.approx(scan_results.window_probability(s, i, j), abs=1e-4)
    with pytest.raises(scan_results.ScanResultError, match="outside scan"):
        scan_results.window_patch(s, 10_000, 0)
    with pytest.raises(scan_results.ScanResultError, match="row,column"):
        scan_results.parse_window("3;4")


def test_change_between_the_two_years(env):
    entries = {e.name: e for e in scan_results.list_scans()}
    assert scan_results.comparable(entries["area-2021"], entries["area-2022"])
    report, gdf = scan_results.change("area-2021", "area-2022")
    assert report["new_count"] >= 1 and report["new_ha"] > 0 and report["persistent_count"] >= 2
    assert set(gdf["change"]) <= {"new", "gone", "persistent", "unknown"}
    table = scan_results.change_table(report).set_index("change")
    assert table.loc["new", "area_ha"] == report["new_ha"] and table.loc["new", "polygons"] == report["new_count"]
    new_mine = env["mosaics"][2022].mines.geometry.iloc[-1]  # the one mine 2021 lacks
    assert gdf[gdf["change"] == "new"].intersects(new_mine).any()
    assert (scan_results.scans_dir() / "_changes" / "area-2021__area-2022" / "change.json").is_file()
    assert "_changes" not in {e.name for e in scan_results.list_scans()}  # outputs of a diff are not a scan


def test_unfinished_and_unknown_scans_are_clear_errors(env):
    with pytest.raises(scan_results.ScanResultError, match="no scan named"):
        scan_results.open_scan("nope")
    with pytest.raises(scan_results.ScanResultError, match="not a scan name"):
        scan_results.open_scan("../area-2021")
    half = scan_results.scans_dir() / "half"
    half.mkdir()
    (half / "request.json").write_text("{}")
    try:
        assert not {e.name: e for e in scan_results.list_scans()}["half"].finished
        with pytest.raises(scan_results.ScanResultError, match="not finished"):
            scan_results.open_scan("half")
    finally:
        (half / "request.json").unlink()
        half.rmdir()


# -- requests ------------------------------------------------------------------------------------------
def _req(env, name="req", source="synthetic", year=2021):
    return scan_request.ScanRequest(name=name, year=year, run_id=env["run"], source=source)


def test_bad_requests_are_refused_before_anything_is_written(env):
    bowtie = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-61.8, 6.4], [-61.7, 6.5], [-61.7, 6.4], [-61.8, 6.5], [-61.8, 6.4]]],
                },
            }
        ],
    }
    with pytest.raises(scan_area.AoiError, match="not a valid polygon"):
        scan_request.aoi_from_drawing(bowtie)
    with pytest.raises(scan_area.AoiError, match="no area drawn"):
        scan_request.aoi_from_drawing(None)
    with pytest.raises(scan_area.AoiError, match="^area.geojson is not readable GeoJSON"):
        scan_request.aoi_from_upload("area.geojson", b"not json")
    with pytest.raises(scan_area.AoiError, match="^area.geojson is not UTF-8 text .* save it as UTF-8"):
        scan_request.aoi_from_upload("area.geojson", b"\xff not json")
    with pytest.raises(scan_area.AoiError, match="^pts.geojson: .*Point; a scan needs a Polygon"):
        scan_request.aoi_from_upload("pts.geojson", json.dumps(mapping(Point(-61.8, 6.4))).encode())
    with pytest.raises(scan_area.ScanError, match="not usable"):
        scan_request.check(_req(env, name="../x"), env["aoi"])
    far = box(10, 10, 10.05, 10.05)  # a real mosaic that does not reach the area
    with pytest.raises(scan_area.AoiError, match="does not reach"):
        scan_request.check(_req(env, source=str(env["mosaics"][2021].path)), far)
    with pytest.raises(scan_area.AoiError, match="over the limit"):
        scan_request.aoi_from_drawing({"type": "Feature", "geometry": mapping(box(-62.5, 6, -61.5, 7))}, 100)
    with pytest.raises(scan_request.ScanRequestError, match="SYNTHETIC demo mosaic is limited"):
        scan_request.check(_req(env), box(-62.1, 6.2, -61.8, 6.5))
    with pytest.raises(AsgmError, match="no run .no-such-run."):
        scan_request.check(scan_request.ScanRequest("x", 2021, "no-such-run", "stac"), env["aoi"])
    assert not (scan_results.scans_dir() / "req").exists() and not (scan_results.scans_dir() / "x").exists()


def test_a_request_with_the_spatial_prior_passes_it_to_the_scan(env):
    aoi = env["aoi"]
    req = scan_request.ScanRequest(
        name="prior-2021", year=2021, run_id=env["run"], source="synthetic", spatial_prior=True
    )
    pl = scan_request.check(req, aoi)
    assert pl.prior is not None and pl.thresholds["spatial_prior"]["t_main"] == 0.43
    folder = scan_results.scans_dir() / "prior-2021"
    try:
        scan_cmd = scan_request.prepare(req, pl)[-1]
        assert "--spatial-prior" in scan_cmd
        assert json.loads((folder / "request.json").read_text())["spatial_prior"] is True
        # the same place without the prior is another request; a request without it records no such key
        with pytest.raises(scan_request.ScanRequestError, match="exists already"):
            scan_request.check(_req(env, name="prior-2021"), aoi)
        plain = _req(env, name="plain-2021")
        assert "--spatial-prior" not in scan_request.prepare(plain, scan_request.check(plain, aoi))[-1]
        assert "spatial_prior" not in json.loads((scan_results.scans_dir() / "plain-2021" / "request.json").read_text())
    finally:
        for r in (req, _req(env, name="plain-2021")):
            scan_request.discard(r)


def test_prepare_writes_the_request_and_builds_the_commands(env):
    aoi, km2 = scan_request.aoi_from_upload(
        "a.geojson", json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(env["aoi"])}).encode()
    )
    assert km2 > 1
    req = _req(env, name="demo-2021")
    pl = scan_request.check(req, aoi)
    steps = scan_request.prepare(req, pl)
    folder = scan_results.scans_dir() / "demo-2021"
    try:
        assert (folder / "aoi.geojson").is_file() and json.loads((folder / "request.json").read_text())["year"] == 2021
        mosaic_cmd, scan_cmd = steps
        assert mosaic_cmd[:4] == ["-m", "asgm", "synthetic", "mosaic"] and "--size-px" in mosaic_cmd
        assert scan_cmd[:4] == ["-m", "asgm", "scan", "run"]
        assert scan_cmd[scan_cmd.index("--source") + 1] == str(folder / scan_request.SYNTHETIC_MOSAIC)
        assert scan_cmd[scan_cmd.index("--out") + 1] == str(folder)
        scan_request.check(req, aoi)  # the same request again: a resume
        with pytest.raises(scan_request.ScanRequestError, match="exists already"):
            scan_request.check(_req(env, name="demo-2021", year=2022), aoi)
        stac = scan_request.check(_req(env, name="s", source="stac"), aoi)  # no network: coverage is the job's
        assert stac.windows > 0 and not (scan_results.scans_dir() / "s").exists()
        scan_request.discard(req)
        assert not folder.exists()
    finally:
        if folder.exists():
            import shutil

            shutil.rmtree(folder)


def test_window_osm_from_a_fetch_cache_that_covers_it(env):
    """No cache: say so with the command; a bbox cache fetched (local Overpass stand-in) around the window:
    its features rasterized on the window grid."""
    import shutil

    from overpass_standin import FakeOverpass, serve_overpass

    from asgm.config import OSM_LAYERS
    from asgm.osm import fetch as F
    from asgm.osm import queries as Q

    s = scan_results.open_scan("area-2021")
    i, j = scan_results.parse_window(scan_results.detections_table(s).iloc[0]["window"])
    patch = scan_results.window_patch(s, i, j)
    osm, note = scan_results.window_osm(patch)
    assert osm is None and "No OSM fetch cache covers this window" in note and "asgm osm fetch --bbox" in note
    lon, lat = patch.lon, patch.lat
    track = [
        {"type": "node", "id": 1, "lat": lat, "lon": lon - 0.01},
        {"type": "node", "id": 2, "lat": lat, "lon": lon + 0.01},
        {"type": "way", "id": 10, "nodes": [1, 2], "tags": {"highway": "track"}},
    ]
    try:
        with serve_overpass(FakeOverpass(track)) as fake:
            F.fetch(
                Q.bbox_query(lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02),
                overpass_url=fake.url,
                runway=False,
                backoff_s=0,
            )
        osm, note = scan_results.window_osm(patch)
        assert osm is not None and "OSM overlays from the cache bbox-" in note
        masks, layers = osm
        assert layers == OSM_LAYERS and masks.shape == (len(OSM_LAYERS), 48, 48)
        assert masks[layers.index("highway")][24].all()  # the track crosses the window through its centre row
        assert masks.sum() == masks[layers.index("highway")].sum()
        assert F.find_cache_covering(box(lon + 0.1, lat, lon + 0.11, lat + 0.01)) is None  # beyond the cache
    finally:
        shutil.rmtree(F.osm_dir(), ignore_errors=True)
