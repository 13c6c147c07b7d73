"""AppTest of the Data page: uploads validated with a clear message and nothing written, the owner passcode
gate of a public deployment, the store cap, and a fetch job against an unreachable STAC API that fails with
its reason shown in the jobs panel."""

from __future__ import annotations

import json
import socket
import time

from streamlit.testing.v1 import AppTest
from ui_env import page, page_script

from asgm.jobs import runner as jobs

TIMEOUT = 120
UPLOAD = "Upload GeoJSON / CSV"


def _page(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(page(page_script("Data")), default_timeout=TIMEOUT)
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "info", "warning", "error", "success") for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _geojson(features: list[tuple[float, float, dict]]) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}
                for lon, lat, props in features
            ],
        }
    ).encode()


def test_bad_upload_says_what_is_wrong_and_writes_nothing(empty_env):
    at = _page()
    assert not at.exception
    at.radio[0].set_value(UPLOAD).run()
    at.file_uploader[0].set_value(("sites.csv", b"x,y,label\n-61.8,6.4,1\n", "text/csv")).run()
    assert "sites.csv: no lon or lat column" in _texts(at) and "Nothing was saved" in _texts(at)
    assert "/tmp" not in _texts(at)  # the message names the upload, not a temporary path
    _button(at, "Fetch patches").click().run()
    assert "Cannot fetch: choose a point set or upload a valid points file" in _texts(at)
    assert not (empty_env / "data" / "points").exists() and jobs.list_jobs() == []


def test_upload_without_labels_asks_for_one(empty_env):
    at = _page()
    at.radio[0].set_value(UPLOAD).run()
    at.file_uploader[0].set_value(
        ("mine.geojson", _geojson([(-61.8, 6.4, {}), (-61.7, 6.5, {})]), "application/geo+json")
    ).run()
    assert "no 'label' column; add one" in _texts(at)
    at.selectbox[0].set_value("1 (mining)").run()
    assert "mine.geojson: 2 points (2 mining, 0 not mining)" in _texts(at)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_from_an_unreachable_stac_api_fails_with_the_reason(empty_env, monkeypatch):
    monkeypatch.setenv("ASGM_STAC_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    at = _page()
    at.radio[0].set_value(UPLOAD).run()
    at.file_uploader[0].set_value(
        ("two.geojson", _geojson([(-61.8, 6.4, {"label": 1}), (-61.7, 6.5, {"label": 0})]), "application/geo+json")
    ).run()
    _button(at, "Fetch patches").click().run()
    assert "Started job" in _texts(at), _texts(at)
    saved = empty_env / "data" / "points" / "uploads" / "two.geojson"
    assert saved.is_file()
    [job] = jobs.list_jobs()
    assert "--points-file" in job.command and str(saved) in job.command
    deadline = time.monotonic() + 90
    while jobs.get_job(job.job_id).active:
        assert time.monotonic() < deadline, jobs.get_job(job.job_id).log_tail()
        time.sleep(0.3)
    done = jobs.get_job(job.job_id)
    assert done.status == "failed" and "cannot reach the STAC API" in done.error
    assert "Patches already in the store are kept" in done.error  # a fetch says what it keeps; a scan does not
    at.run()
    assert f"Job **{job.job_id}**" in _texts(at) and "cannot reach the STAC API" in _texts(at)
    _button(at, f"Resume {job.job_id}").click().run()  # the same command again (a fetch resumes)
    again = next(j for j in jobs.list_jobs() if j.job_id != job.job_id)
    assert again.command == job.command and again.kind == "patches"
    while jobs.get_job(again.job_id).active:
        assert time.monotonic() < deadline + 90
        time.sleep(0.3)


def test_public_deployment_needs_the_owner_passcode(empty_env):
    secret = "correct horse 42"
    at = _page({"owner_passcode": secret})
    assert not at.exception
    assert "public deployment" in _texts(at)
    assert _button(at, "Fetch patches").disabled
    at.text_input(key="_owner_passcode_input").input("wrong")
    _button(at, "Unlock jobs").click().run()
    assert "Wrong passcode" in _texts(at) and _button(at, "Fetch patches").disabled
    at.text_input(key="_owner_passcode_input").input(secret)
    _button(at, "Unlock jobs").click().run()
    assert not _button(at, "Fetch patches").disabled and "Owner mode" in _texts(at)
    everything = _texts(at) + "".join(str(w.value) for w in at.text_input)
    assert secret not in everything


def test_public_deployment_caps_the_store_size(empty_env):
    at = _page({"owner_passcode": "pw", "max_store_patches": 5})
    at.text_input(key="_owner_passcode_input").input("pw")
    _button(at, "Unlock jobs").click().run()
    at.multiselect[0].set_value(["positives"]).run()
    _button(at, "Fetch patches").click().run()
    assert "caps a store at 5 patches" in _texts(at) and "at most 5" in _texts(at)
    assert jobs.list_jobs() == []


def test_earth_engine_is_offered_only_with_credentials_naming_project_and_account_never_the_key(empty_env, monkeypatch):
    for var in ("ASGM_EE_PROJECT", "EE_PROJECT", "ASGM_EE_SERVICE_ACCOUNT_JSON", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    at = _page()
    source = next(r for r in at.radio if r.label == "Source")
    assert source.disabled and "Earth Engine: no credentials found" in _texts(at)
    key = {
        "type": "service_account",
        "project_id": "asgm-test-project",
        "private_key_id": "abc123",
        "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n",
        "client_email": "explorer@asgm-test-project.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:1/token",
    }
    at = _page({"ee_service_account": key})
    source = next(r for r in at.radio if r.label == "Source")
    assert not source.disabled
    text = _texts(at)
    assert "project `asgm-test-project`" in text and "explorer@asgm-test-project.iam.gserviceaccount.com" in text
    assert "SECRETKEYMATERIAL" not in text and "abc123" not in text
