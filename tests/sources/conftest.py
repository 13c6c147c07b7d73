"""Fixtures of the source tests: a local HTTP server and an isolated environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localhttp import LocalServer


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def source_env(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh data dir, no Earth Engine settings or user credentials from the machine, no proxy."""
    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in (
        "ASGM_EE_PROJECT",
        "EE_PROJECT",
        "ASGM_EE_SERVICE_ACCOUNT_JSON",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "ASGM_EE_URL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml unless a test writes one
    return tmp_path
