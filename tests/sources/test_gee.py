"""Earth Engine source at the transport boundary: a local stand-in for the EE REST API and the OAuth
token endpoint, driven by the real earthengine-api and google-auth clients."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time

import ee_fake
import numpy as np
import pytest
from ee_fake import (
    PROJECT,
    band_values,
    error,
    npy_structured,
    service_account_key,
    walk_expression,
)

from asgm.cli import main as cli_main
from asgm.config import S2_BANDS
from asgm.data.store import PatchStore, StoreMeta
from asgm.grid import patch_grid
from asgm.sources import gee, gee_fetch
from asgm.sources.common import (
    CloudyCompositeError,
    NoSceneError,
    SourceAuthError,
    SourceError,
    SourceNetworkError,
    SourceProjectError,
    SourceQuotaError,
    fetch_points,
    open_or_create_store,
)

LON, LAT = -61.8123, 6.4021


@pytest.fixture(autouse=True)
def _fresh_ee_state():
    gee.reset()
    yield
    gee.reset()


@pytest.fixture
def fake_ee(local_server, source_env, monkeypatch):
    """The fake API plus a service-account key in the environment, as a user would configure it."""
    return ee_fake.configured(local_server, monkeypatch)


def _source(**kw) -> gee_fetch.GeeSource:
    kw.setdefault("retry_base_delay", 0.01)
    return gee_fetch.GeeSource(48, "2021-01-01", "2022-01-01", **kw)


def test_request_is_the_study_recipe_on_an_exact_utm_grid(fake_ee):
    fake_ee.field_order = sorted(S2_BANDS)  # the server's field order must not matter
    patch = _source().fetch("pos-0001", 1, "positives", LON, LAT)

    reqs = fake_ee.pixel_requests()
    assert len(reqs) == 1
    req = reqs[0]
    assert f"/projects/{PROJECT}/image:computePixels" in req.path
    assert req.headers["authorization"] == "Bearer ya29.local-test-token"
    body = req.json()
    grid = patch_grid(LON, LAT, 48)
    t = grid.transform
    assert body["fileFormat"] == "NPY"  # NUMPY_NDARRAY on the wire
    assert body["bandIds"] == list(S2_BANDS)
    assert body["grid"] == {
        "dimensions": {"width": 48, "height": 48},
        "affineTransform": {
            "scaleX": 10.0,
            "shearX": 0.0,
            "translateX": t.c,
            "shearY": 0.0,
            "scaleY": -10.0,
            "translateY": t.f,
        },
        "crsCode": "EPSG:32620",
    }
    # centre pixel centre == the point
    cx, cy = t.c + 24.5 * 10, t.f - 24.5 * 10
    from pyproj import Transformer

    assert (cx, cy) == pytest.approx(Transformer.from_crs(4326, 32620, always_xy=True).transform(LON, LAT), abs=1e-6)

    names, consts = walk_expression(body["expression"])
    assert "COPERNICUS/S2_HARMONIZED" in consts and "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED" in consts
    assert ["cs_cdf"] in consts and 0.75 in consts
    assert "2021-01-01" in consts and "2022-01-01" in consts
    for fn in (
        "ImageCollection.load",
        "Image.linkCollection",
        "Image.updateMask",
        "Image.gte",
        "reduce.median",
        "Filter.intersects",
        "Image.unmask",
        "Image.toUint16",
    ):
        assert fn in names, fn
    # filterBounds to the patch footprint, given in the patch's UTM CRS (not a lon/lat bbox)
    assert "GeometryConstructors.Rectangle" in names and "Filter.dateRangeContains" in names
    assert list(grid.bounds) in consts and "EPSG:32620" in consts and False in consts  # geodesic=False

    # The answer is written in the study's band order, whatever order the server used.
    for i in range(12):
        np.testing.assert_array_equal(patch.data[i], band_values(i, 48))
    assert patch.product_level == "L1C" and patch.source == "gee" and patch.grid == grid

    # The service-account JWT was signed with the key and asked for the Earth Engine scope.
    assert fake_ee.jwt_claims and "earthengine" in fake_ee.jwt_claims[0]["scope"]


def test_429_is_retried_with_backoff_then_succeeds(fake_ee):
    quota = error(429, "Too many concurrent aggregations.", "RESOURCE_EXHAUSTED")
    fake_ee.script = [quota, error(503, "Service unavailable.", "UNAVAILABLE"), quota]
    src = _source()
    t0 = time.monotonic()
    patch = src.fetch("pos-0002", 1, "positives", LON, LAT)
    assert len(fake_ee.pixel_requests()) == 4  # 3 failures + success: ee's own retries are off, ours count
    assert patch.data.any()
    assert time.monotonic() - t0 < 10


def test_quota_still_exceeded_is_a_clear_error(fake_ee):
    fake_ee.script = [error(429, "Quota exceeded for quota metric 'requests'.", "RESOURCE_EXHAUSTED")] * 3
    with pytest.raises(SourceQuotaError, match="Run again later"):
        _source(retry_attempts=3).fetch("pos-0003", 1, "positives", LON, LAT)
    assert len(fake_ee.pixel_requests()) == 3


def test_fully_cloudy_and_no_scene(fake_ee):
    fake_ee.zero_pixels = True
    with pytest.raises(CloudyCompositeError, match="lower --clear-threshold"):
        _source().fetch("cur-0001", 0, "curated", LON, LAT)
    fake_ee.zero_pixels = False
    fake_ee.script = [
        error(400, "Image.select: Pattern 'B1' did not match any bands. Available bands: []", "INVALID_ARGUMENT")
    ]
    with pytest.raises(NoSceneError, match="no Sentinel-2 scene covers"):
        _source().fetch("cur-0002", 0, "curated", LON, LAT)


def test_no_credentials_fails_fast_with_setup_steps(source_env, capsys):
    t0 = time.monotonic()
    with pytest.raises(SourceAuthError) as exc:
        _source().connect()
    assert time.monotonic() - t0 < 3
    msg = str(exc.value)
    assert "service account" in msg and "GOOGLE_APPLICATION_CREDENTIALS" in msg and "secrets.toml" in msg
    # through the CLI: exit status 1, one clear line, and no store half-created
    assert (
        cli_main(["patches", "fetch", "--source", "gee", "--points", "positives", "--limit", "1", "--no-progress"]) == 1
    )
    assert "no Earth Engine credentials found" in capsys.readouterr().err
    assert not (source_env / "data" / "stores" / "gee-48").exists()


def test_key_file_missing_or_not_json(source_env, monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    with pytest.raises(SourceAuthError, match="does not exist"):
        _source().connect()
    bad = tmp_path / "key.json"
    bad.write_text("-----BEGIN PRIVATE KEY----- not json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bad))
    with pytest.raises(SourceAuthError, match="not a JSON key file") as exc:
        _source().connect()
    assert "BEGIN PRIVATE KEY" not in str(exc.value)  # never echo key material


def test_rejected_key(fake_ee):
    fake_ee.token_error = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    with pytest.raises(SourceAuthError, match="create a new key") as exc:
        _source().connect()
    assert "PRIVATE KEY" not in str(exc.value)


def test_project_not_registered(fake_ee):
    fake_ee.algorithms_error = (403, "Earth Engine API has not been used in project 123456 before or it is disabled.")
    with pytest.raises(SourceProjectError, match="code.earthengine.google.com/register"):
        _source().connect()


def test_no_project_configured(fake_ee, monkeypatch):
    info, pub = service_account_key(fake_ee.url + "/token", project_id=None)
    fake_ee.public_key = pub
    monkeypatch.setenv("ASGM_EE_SERVICE_ACCOUNT_JSON", json.dumps(info))
    monkeypatch.delenv("ASGM_EE_PROJECT")
    with pytest.raises(SourceProjectError, match="ASGM_EE_PROJECT"):
        _source().connect()
    assert not fake_ee.server.log  # nothing was sent


def test_network_down_fails_fast(fake_ee, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("ASGM_EE_URL", f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(SourceNetworkError, match="cannot reach"):
        _source().connect()
    assert time.monotonic() - t0 < 5
    status = gee.check(probe_timeout=1)
    assert status["ok"] is False and "cannot reach" in status["message"]


def test_settings_from_streamlit_secrets_file(fake_ee, monkeypatch, source_env):
    for var in ("ASGM_EE_SERVICE_ACCOUNT_JSON", "ASGM_EE_PROJECT", "ASGM_EE_URL"):
        monkeypatch.delenv(var)
    (source_env / ".streamlit").mkdir()
    lines = [f'EE_PROJECT = "{PROJECT}"', f'ASGM_EE_URL = "{fake_ee.url}"', "", "[ee_service_account]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in fake_ee.key_info.items()]
    (source_env / ".streamlit" / "secrets.toml").write_text("\n".join(lines) + "\n")
    settings = gee.load_settings()
    assert settings.project == PROJECT and settings.key_source == "Streamlit secret [ee_service_account]"
    assert "PRIVATE" not in repr(settings)
    assert gee.check()["ok"] is True


def test_initialization_is_lazy_once_and_thread_safe(fake_ee):
    errors: list[BaseException] = []

    def go() -> None:
        try:
            gee.initialize()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(fake_ee.server.requests("GET", r"/algorithms$")) == 1
    _source().fetch("pos-0004", 1, "positives", LON, LAT)
    assert len(fake_ee.server.requests("GET", r"/algorithms$")) == 1


def test_resume_after_interruption_and_cli(fake_ee, capsys):
    import os

    if not os.environ.get("ASGM_DATA_MIRROR"):
        pytest.skip("needs ASGM_DATA_MIRROR for the study points")
    from asgm.data.points import load_points

    pts = load_points(["positives"]).sort_values("sample_id").head(4)
    src = _source(retry_attempts=2)
    meta = StoreMeta(
        name="gee-48",
        source="gee",
        bands=S2_BANDS,
        size=48,
        product_level="L1C",
        date_start=src.start,
        date_end=src.end,
        extra=src.store_extra(),
    )
    store = open_or_create_store(meta, compare_extra=("clear_threshold",))
    # The service fails for good on the third request: the run stops after two patches.
    fail = error(500, "Internal error.", "INTERNAL")
    original = fake_ee._pixels
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return fail if calls["n"] > 2 else original(req)

    fake_ee.server.handlers = [(m, p, flaky if h == original else h) for m, p, h in fake_ee.server.handlers]
    with pytest.raises(SourceNetworkError, match="resume"):
        fetch_points(src, pts, store, workers=1)
    first = {sid: store.patch_path(sid).stat().st_ino for sid in store.sample_ids()}
    assert sorted(first) == list(pts.sample_id[:2])
    fake_ee.server.handlers = [(m, p, original if h == flaky else h) for m, p, h in fake_ee.server.handlers]

    before = len(fake_ee.pixel_requests())
    argv = ["patches", "fetch", "--source", "gee", "--points", "positives", "--limit", "4", "--no-progress", "--json"]
    assert cli_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == 2 and report["written"] == list(pts.sample_id[2:])
    assert len(fake_ee.pixel_requests()) - before == 2
    for sid, ino in first.items():
        assert store.patch_path(sid).stat().st_ino == ino  # never rewritten
    opened = PatchStore.open("gee-48")
    assert opened.meta.extra["clear_threshold"] == 0.75 and opened.meta.product_level == "L1C"
    assert list(opened.index()["sample_id"]) == list(pts.sample_id)
    # each stored patch sits on its own point's grid
    for row in opened.index().itertuples():
        assert opened.read_patch(row.sample_id).grid == patch_grid(row.lon, row.lat, 48)
    # another threshold into the same store is refused
    assert cli_main([*argv[:-1], "--clear-threshold", "0.6"]) == 1
    assert "Use another --store name" in capsys.readouterr().err


def test_pixels_in_the_shape_gdal_records_for_the_service():
    """GDAL's Earth Engine driver test (OSGeo/gdal ``autotest/gdrivers/eedai.py``, ``test_eedai_2``) serves the
    answer to ``{"fileFormat": "NPY", "bandIds": ["B1", "B9"], "grid": {... "width": 38, "height": 39}}`` as an
    NPY 1.0 file: header ``{'descr': [('B1', '<u2'), ('B9', '<u2')], 'fortran_order': False, 'shape': (39, 38), }``
    (rows first, no padding), then 38 x 39 records of B1 = 12345, B9 = 23456. The stand-in writes exactly
    those bytes, earthengine-api's converter loads them, and the source takes the bands by name and the
    shape as (rows, columns)."""
    header = b"{'descr': [('B1', '<u2'), ('B9', '<u2')], 'fortran_order': False, 'shape': (39, 38), }"
    recorded = (
        b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + struct.pack("<HH", 12345, 23456) * (38 * 39)
    )
    answer = npy_structured({"B1": np.full((39, 38), 12345, "<u2"), "B9": np.full((39, 38), 23456, "<u2")})
    assert answer == recorded
    from ee.image_converter import NumPyConverter

    arr = NumPyConverter().do_conversion(answer)
    data = gee_fetch.pixels_to_bands(arr, 39, 38, bands=("B9", "B1"))
    assert data.shape == (2, 39, 38) and data.dtype == np.uint16
    assert (data[0] == 23456).all() and (data[1] == 12345).all()
    with pytest.raises(SourceError, match=r"\(rows, columns\), expected \(38, 39\)"):
        gee_fetch.pixels_to_bands(arr, 38, 39, bands=("B1", "B9"))  # a transposed grid is refused, not reshaped
    with pytest.raises(SourceError, match="missing"):
        gee_fetch.pixels_to_bands(np.load(io.BytesIO(answer)), 39, 38)  # the 12 study bands are not all there


def test_the_wire_request_asks_for_npy_on_the_patch_grid(fake_ee):
    """The wire request asks for ``NPY`` (as GDAL's does; the stand-in refuses anything else) on the patch's
    grid, whose dimensions give the answer's (rows, columns)."""
    _source().composite_dn(patch_grid(LON, LAT, 48), "p")
    (req,) = fake_ee.pixel_requests()
    body = req.json()
    assert body["fileFormat"] == "NPY" and body["bandIds"] == list(S2_BANDS)
    assert body["grid"]["dimensions"] == {"width": 48, "height": 48}
