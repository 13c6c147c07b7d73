"""Fixtures for the AppTest page tests: a session-wide app environment with trained runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_env import UiEnv, shared_ui_env


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory, demo_root) -> UiEnv:
    """Stores (real demo pack + toy store with OSM masks) and two runs trained for 2 epochs."""
    return shared_ui_env(tmp_path_factory, demo_root)


@pytest.fixture
def app_env(ui_env, monkeypatch) -> UiEnv:
    """Point the app at the session environment; fresh Streamlit caches; no first-start auto training."""
    import streamlit as st

    for k, v in ui_env.environ().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    st.cache_data.clear()
    st.cache_resource.clear()
    return ui_env


@pytest.fixture
def empty_env(tmp_path, monkeypatch) -> Path:
    """An app environment with no stores and no runs."""
    import streamlit as st

    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASGM_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    st.cache_data.clear()
    st.cache_resource.clear()
    return tmp_path
