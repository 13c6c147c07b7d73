"""STAC source end to end against a local STAC API serving small COGs (real HTTP, real GDAL range reads)."""

from __future__ import annotations

import json
import time
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from stac_catalogue import Area, Scene, StacApi, area_around, constant_dn, read_store_patch

from asgm.cli import main as cli_main
from asgm.config import S2_BANDS
from asgm.data.store import PatchStore, StoreMeta
from asgm.grid import patch_grid, utm_epsg
from asgm.sources.common import (
    CloudyCompositeError,
    NoSceneError,
    SourceNetworkError,
    fetch_points,
    open_or_create_store,
    product_level_warning,
)
from asgm.sources.stac import ASSET_KEYS, StacSource

# Two points in Bolívar, 2 km apart, and one far away (no scene there).
POINTS = [("p-0", 1, -61.8123, 6.4021), ("p-1", 0, -61.7941, 6.4102)]
FAR = ("far-0", 0, -62.5, 5.2)
SIZE = 48
BAND_INDEX = {b: i for i, b in enumerate(S2_BANDS)}


def _points(rows: list[tuple[str, int, float, float]]) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows, columns=["sample_id", "label", "lon", "lat"]).assign(set="test")
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


def _cloud_north_of(y_split: float):
    return lambda x, y: np.where(y > y_split, 9, 4)  # SCL 9: cloud, high probability


def _xy(lon: float, lat: float, epsg: int) -> tuple[float, float]:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)


@pytest.fixture
def catalogue(local_server, source_env, tmp_path):
    """Three scenes in 2021 (one with cloud over the north half, one with a shadow square, one with the
    old offset-0 convention), one scene in 2022 that the date range must exclude, and one fully
    clouded scene far away around point ``cloudy``."""
    api = StacApi(local_server, tmp_path)
    epsg = utm_epsg(POINTS[0][2], POINTS[0][3])
    area = area_around([(lon, lat) for _, _, lon, lat in POINTS], epsg)
    x, y = _xy(POINTS[0][2], POINTS[0][3], epsg)
    shadow = lambda xs, ys: np.where((xs < x - 60) & (xs > x - 200) & (ys < y - 60) & (ys > y - 200), 3, 4)  # noqa: E731
    corner = lambda xs, ys: (xs > x + 150) & (xs < x + 300) & (ys > y + 150) & (ys < y + 300)  # noqa: E731 — SCL 8 in all

    def with_corner(f):
        return lambda xs, ys: np.where(corner(xs, ys), 8, f(xs, ys))

    scenes = [
        Scene("2021-02-03", shift=0, scl=with_corner(shadow), cloud_cover=20),
        Scene("2021-06-11", shift=400, offset=0.0, scl=with_corner(lambda xs, ys: np.full(xs.shape, 4)), cloud_cover=5),
        Scene("2021-10-20", shift=800, scl=with_corner(_cloud_north_of(y)), cloud_cover=40),
        Scene("2022-03-01", shift=20000, cloud_cover=0),  # outside [2021-01-01, 2022-01-01)
    ]
    for i, sc in enumerate(scenes):
        api.add_scene(area, sc, f"S2A_T20NQL_{sc.date.replace('-', '')}_{i}")
    # A second area, fully cloudy in every scene.
    cl = ("cloudy-0", 1, -60.9, 7.1)
    c_area = area_around([(cl[2], cl[3])], utm_epsg(cl[2], cl[3]))
    for i in range(2):
        api.add_scene(
            c_area, Scene(f"2021-0{i + 3}-05", scl=lambda xs, ys: np.full(xs.shape, 9), cloud_cover=99), f"cloudy_{i}"
        )
    api.area, api.epsg, api.cloudy_point = area, epsg, cl
    api.masks = {"shadow": shadow, "corner": corner, "cloud_y": y}
    return api


def _source(api: StacApi, **kw) -> StacSource:
    return StacSource(SIZE, "2021-01-01", "2022-01-01", url=api.url, retry_base_delay=0.01, **kw)


def test_patch_values_grid_mask_median_scale_offset(catalogue):
    api, area = catalogue, catalogue.area
    sid, label, lon, lat = POINTS[0]
    patch = _source(api).fetch(sid, label, "test", lon, lat)
    grid = patch_grid(lon, lat, SIZE)
    assert patch.grid == grid and patch.product_level == "L2A" and patch.bands == S2_BANDS
    assert patch.data.shape == (12, SIZE, SIZE) and patch.data.dtype == np.uint16

    # Oracle: the projected centre of every output pixel, and which scenes are clear there.
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    t = grid.transform
    xs, ys = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    assert (xs[SIZE // 2, SIZE // 2], ys[SIZE // 2, SIZE // 2]) == pytest.approx(_xy(lon, lat, api.epsg), abs=1e-6)
    # SCL is 20 m: sample its class at the 20 m pixel centre, as nearest resampling does.
    r20, c20 = area.index(xs, ys, 20)
    x20, y20 = area.x0 + (c20 + 0.5) * 20, area.y0 - (r20 + 0.5) * 20
    corner = api.masks["corner"](x20, y20)
    clear = np.stack(
        [
            ~corner & (api.masks["shadow"](x20, y20) == 4),
            ~corner,
            ~corner & (y20 <= api.masks["cloud_y"]),
        ]
    )
    assert clear[0].sum() < clear[1].sum() and clear[2].sum() < clear[1].sum() and corner.any()  # the design bites

    # Grid alignment: the encoded bands name the source pixel each output pixel was sampled from.
    r10, c10 = area.index(xs, ys, 10)
    _, c20b = area.index(xs, ys, 20)
    r60, _ = area.index(xs, ys, 60)
    # stored DN = (2000 + index) * 1e-4 - 0.1, times 1e4 = 1000 + index, where any scene is clear
    for band, expected in (("B2", 1000 + c10), ("B3", 1000 + r10), ("B5", 1000 + c20b), ("B1", 1000 + r60)):
        got = patch.data[BAND_INDEX[band]]
        np.testing.assert_array_equal(got[~corner], expected[~corner], err_msg=band)
        assert (got[corner] == 0).all()

    # The point itself: the centre pixel was sampled from the 10 m source pixel containing the point.
    px, py = _xy(lon, lat, api.epsg)
    assert patch.data[BAND_INDEX["B2"], SIZE // 2, SIZE // 2] == 1000 + int((px - area.x0) // 10)
    assert patch.data[BAND_INDEX["B3"], SIZE // 2, SIZE // 2] == 1000 + int((area.y0 - py) // 10)

    # Median of the clear scenes, scale/offset applied per asset (scene 1 uses offset 0 and lower DN).
    shifts = np.array([0, 400, 800])
    for band in ("B4", "B8", "B11", "B12", "B9", "B8A"):
        i = list(ASSET_KEYS).index(band)
        per_scene = np.array([constant_dn(i, s) - 1000 for s in shifts], dtype=float)[:, None, None] * np.ones(
            (3, SIZE, SIZE)
        )
        per_scene[~clear] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (the corner)
            expected = np.nanmedian(per_scene, axis=0)
        expected = np.nan_to_num(np.rint(expected), nan=0).astype(np.uint16)
        np.testing.assert_array_equal(patch.data[BAND_INDEX[band]], expected, err_msg=band)
    # The 2022 scene (shift 20000) was never used.
    assert patch.data.max() < 5000
    assert 0 < patch.masked_fraction == pytest.approx(corner.mean())


def test_only_the_patch_window_is_read(catalogue, local_server):
    sid, label, lon, lat = POINTS[0]
    _source(catalogue).fetch(sid, label, "test", lon, lat)
    served = sum(len(r.body) for r in local_server.requests("GET", r"^/cogs/"))  # request bodies are empty
    ranges = [r.headers.get("range") for r in local_server.requests("GET", r"^/cogs/")]
    assert ranges and all(ranges), "every COG request must be a range request"
    total_bytes = sum(int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 for r in ranges)
    file_bytes = sum(len(v) for k, v in local_server.files.items() if k.startswith("/cogs/S2A_T20NQL_"))
    assert served == 0 and total_bytes < file_bytes  # windows, not whole files


def test_far_point_and_fully_cloudy_point_are_reported_not_written(catalogue):
    src = _source(catalogue)
    with pytest.raises(NoSceneError, match="no sentinel-2-c1-l2a scene covers"):
        src.fetch(*FAR[:2], "test", *FAR[2:])
    cl = catalogue.cloudy_point
    with pytest.raises(CloudyCompositeError, match="cloudy"):
        src.fetch(cl[0], cl[1], "test", cl[2], cl[3])

    meta = StoreMeta(
        name="stac-test",
        source="stac",
        bands=S2_BANDS,
        size=SIZE,
        product_level="L2A",
        date_start=src.start,
        date_end=src.end,
        extra=src.store_extra(),
    )
    store = open_or_create_store(meta)
    report = fetch_points(src, _points([*POINTS, FAR, cl]), store, workers=2)
    assert sorted(report.written) == ["p-0", "p-1"], report.failed
    assert set(report.failed) == {"far-0", "cloudy-0"}
    assert "Check the coordinates" in report.failed["far-0"] and "Widen the date range" in report.failed["cloudy-0"]
    assert sorted(store.index()["sample_id"]) == ["p-0", "p-1"]
    assert not (store.root / "patches" / "far-0.tif").exists()
    idx = store.index().set_index("sample_id")
    assert idx.loc["p-0", "product_level"] == "L2A" and idx.loc["p-0", "masked_fraction"] > 0
    assert report.masked_fraction["p-0"] == pytest.approx(idx.loc["p-0", "masked_fraction"], abs=1e-6)


def test_resume_after_network_loss_writes_each_patch_once(catalogue, local_server):
    pts = [*POINTS, ("p-2", 1, -61.805, 6.398), ("p-3", 0, -61.80, 6.405)]
    src = _source(catalogue, retry_attempts=2)
    meta = StoreMeta(
        name="stac-resume",
        source="stac",
        bands=S2_BANDS,
        size=SIZE,
        product_level="L2A",
        date_start=src.start,
        date_end=src.end,
        extra=src.store_extra(),
    )
    store = open_or_create_store(meta)

    # The search endpoint fails (503) from the third search on: the run stops after two patches.
    calls = {"n": 0}
    original = catalogue._search

    def flaky(req):
        calls["n"] += 1
        catalogue.drop_search = calls["n"] > 2
        return original(req)

    local_server.handlers = [(m, p, flaky if h == original else h) for m, p, h in local_server.handlers]
    with pytest.raises(SourceNetworkError, match="run the same command again to resume"):
        fetch_points(src, _points(pts), store, workers=1)
    first = {
        sid: (store.patch_path(sid).stat().st_ino, store.patch_path(sid).stat().st_mtime_ns)
        for sid in store.sample_ids()
    }
    assert sorted(first) == ["p-0", "p-1"]

    catalogue.drop_search = False
    local_server.handlers = [(m, p, original if h == flaky else h) for m, p, h in local_server.handlers]
    before = len(local_server.requests("POST", "^/search$")) + len(local_server.requests("GET", "^/search$"))
    report = fetch_points(_source(catalogue), _points(pts), PatchStore.open("stac-resume"), workers=2)
    after = len(local_server.requests("POST", "^/search$")) + len(local_server.requests("GET", "^/search$"))
    assert report.skipped == 2 and sorted(report.written) == ["p-2", "p-3"] and not report.failed
    assert after - before == 2  # no request at all for the stored points
    for sid, stat in first.items():  # untouched: same file, never rewritten
        assert (store.patch_path(sid).stat().st_ino, store.patch_path(sid).stat().st_mtime_ns) == stat
    idx = PatchStore.open("stac-resume").index()
    assert list(idx["sample_id"]) == ["p-0", "p-1", "p-2", "p-3"]


def test_neighbouring_utm_zone_scene_is_reprojected(local_server, source_env, tmp_path):
    # Point in zone 20 (EPSG:32620), just east of -66°, the only scene is in zone 19 (EPSG:32619).
    lon, lat = -65.996, 6.5
    assert utm_epsg(lon, lat) == 32620
    api = StacApi(local_server, tmp_path)
    area19 = area_around([(lon, lat)], 32619)
    api.add_scene(area19, Scene("2021-05-01", epsg=32619), "zone19")
    patch = _source(api).fetch("z-0", 1, "test", lon, lat)
    assert patch.grid.epsg == 32620
    x19, y19 = _xy(lon, lat, 32619)
    # the centre pixel samples the zone-19 pixel holding the point (GDAL's approximate transformer
    # may move a sample by a fraction of a pixel, so allow the neighbouring index)
    assert abs(int(patch.data[BAND_INDEX["B2"], SIZE // 2, SIZE // 2]) - (1000 + int((x19 - area19.x0) // 10))) <= 1
    assert abs(int(patch.data[BAND_INDEX["B3"], SIZE // 2, SIZE // 2]) - (1000 + int((area19.y0 - y19) // 10))) <= 1
    assert patch.masked_fraction == 0.0


def test_unreachable_stac_api_fails_fast(source_env):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(SourceNetworkError, match="cannot reach the STAC API"):
        StacSource(SIZE, url=f"http://127.0.0.1:{port}").fetch("x", 0, "t", -61.8, 6.4)
    assert time.monotonic() - t0 < 5


def test_cli_fetch_and_list_with_study_points(local_server, source_env, tmp_path, monkeypatch, capsys):
    if not __import__("os").environ.get("ASGM_DATA_MIRROR"):
        pytest.skip("needs ASGM_DATA_MIRROR for the study points")
    from asgm.data.points import load_points

    pts = load_points(["positives"]).sort_values("sample_id").head(3)
    api = StacApi(local_server, tmp_path)
    epsg = utm_epsg(float(pts.lon.iloc[0]), float(pts.lat.iloc[0]))
    area = area_around(list(zip(pts.lon, pts.lat, strict=True)), epsg)
    for i, d in enumerate(("2021-01-15", "2021-07-15")):
        api.add_scene(area, Scene(d, shift=200 * i), f"study_{i}")
    argv = [
        "patches",
        "fetch",
        "--source",
        "stac",
        "--points",
        "positives",
        "--limit",
        "3",
        "--stac-url",
        api.url,
        "--size",
        "48",
        "--no-progress",
        "--json",
    ]
    assert cli_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == list(pts.sample_id) and report["product_level"] == "L2A"
    assert cli_main(argv) == 0  # resume: nothing left to do
    again = json.loads(capsys.readouterr().out)
    assert again["skipped"] == 3 and again["written"] == []

    assert cli_main(["patches", "list", "--store", "stac-48", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["sample_id"] for p in listing["patches"]] == list(pts.sample_id)
    assert listing["summary"]["product_level"] == "L2A" and listing["extra"]["collection"] == "sentinel-2-c1-l2a"
    for p in listing["patches"]:
        data, transform, tags = read_store_patch(PatchStore.open("stac-48").root, p["sample_id"])
        grid = patch_grid(p["lon"], p["lat"], 48)
        assert transform == grid.transform and tags["product_level"] == "L2A" and tags["sample_id"] == p["sample_id"]
        x, y = _xy(p["lon"], p["lat"], epsg)
        assert data[BAND_INDEX["B2"], 24, 24] == 1000 + int((x - area.x0) // 10)

    # A different date range into the same store is refused with the fix.
    assert cli_main([*argv[:-1], "--start", "2020-01-01", "--json"]) == 1
    assert "Use another --store name" in capsys.readouterr().err


def test_product_level_warning():
    assert product_level_warning("L1C", "L1C") is None
    assert product_level_warning("", "L2A") is None and product_level_warning("L1C", None) is None
    msg = product_level_warning("L1C", "L2A")
    assert msg and "Level-1C" in msg and "Level-2A" in msg
    assert "Level-2A" in product_level_warning("L2A", "L1C-RGB-8bit")  # type: ignore[operator]


def test_area_oracle_sanity():
    a = Area(32620, 1000.0, 2000.0, 600.0)
    r, c = a.index(np.array([1005.0, 1019.9]), np.array([1995.0, 1980.1]), 10)
    assert list(r) == [0, 1] and list(c) == [0, 1]
