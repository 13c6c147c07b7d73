"""Shared fixtures: temp data/model folders, the real demo pack (from the mirror), synthetic stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Files only the tests read (real recorded service answers), beside every file of ``asgm.registry``:
#: relpath in the upstream layout -> sha256 (as listed in the data mirror's README).
TEST_ONLY_FILES = {
    "DinoTools/python-overpy/a8acf84e7182e2e315fd3627529b238f8688ee77/tests/json/remark-runtime-error-01.json": "aeb3867344cd0d23ae40107ec6d5c089236182bcb949a25c465d610248b41a11",  # noqa: E501
    "DinoTools/python-overpy/a8acf84e7182e2e315fd3627529b238f8688ee77/tests/response/bad-request.html": "4c2b9d0876b06ab279b008c43522211f5aa1ad54ca54a02c2cb6cb754b8aca4e",  # noqa: E501
}


def _test_mirror() -> Path:
    """The folder of real upstream files the tests read. ``ASGM_DATA_MIRROR`` when set (CI: ../shared/data),
    else a ``shared/data`` beside the checkout, else a cache filled once from the pinned URLs
    (``ASGM_DATA_BASE_URL`` may name another server; ``ASGM_TEST_DATA_CACHE`` the folder). An empty
    ``ASGM_DATA_MIRROR`` skips the first two."""
    value = os.environ.get("ASGM_DATA_MIRROR")
    if value:
        if not Path(value).is_dir():
            pytest.exit(
                f"ASGM_DATA_MIRROR={value} is not a folder: point it at the data mirror or unset it to "
                "download the pinned files",
                returncode=4,
            )
        return Path(value)
    if value is None and (REPO.parent / "shared" / "data").is_dir():
        return REPO.parent / "shared" / "data"
    from asgm import registry

    cache = Path(os.environ.get("ASGM_TEST_DATA_CACHE") or Path.home() / ".cache" / "asgm-test-data")
    try:
        return registry.fill_mirror(cache, TEST_ONLY_FILES)
    except registry.DataFetchError as exc:
        pytest.exit(f"the tests need the pinned upstream data files; {exc}", returncode=4)


def pytest_configure(config: pytest.Config) -> None:
    os.environ["ASGM_DATA_MIRROR"] = str(_test_mirror())


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """Per-test ``ASGM_DATA_DIR`` and ``ASGM_MODELS_DIR`` under tmp_path; returns tmp_path."""
    from _engine import use_folders

    use_folders(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real upstream files, in their upstream layout (see ``_test_mirror``)."""
    return Path(os.environ["ASGM_DATA_MIRROR"])


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory, mirror) -> Path:
    """Stores root holding the real demo pack, built once per session."""
    from asgm.sources import demo

    root = tmp_path_factory.mktemp("demo-stores")
    demo.build(progress=False, root=root)
    return root


@pytest.fixture(scope="session")
def demo_store(demo_root):
    """The real demo pack (491 patches of Earth Genome's Sentinel-2 RGB chips). Treat as read-only."""
    from asgm.data.store import PatchStore

    return PatchStore.open("demo", root=demo_root)


@pytest.fixture(scope="session")
def synthetic_store_factory(tmp_path_factory):
    """Build small seeded synthetic stores: ``factory(n_pos=8, n_neg=16, size=48, seed=0, ...)``.

    Stores with the same arguments are built once per session and shared (treat as read-only).
    """
    from asgm.sources import synthetic

    built: dict[tuple, object] = {}

    def factory(
        n_pos: int = 8, n_neg: int = 16, n_random: int = 0, size: int = 48, seed: int = 0, name: str = "synthetic"
    ):
        key = (n_pos, n_neg, n_random, size, seed, name)
        if key not in built:
            root = tmp_path_factory.mktemp("synthetic-stores")
            built[key] = synthetic.build_store(name, n_pos, n_neg, n_random, size, seed, root=root)
        return built[key]

    return factory


@pytest.fixture(scope="session")
def _toy_osm_training(tmp_path_factory):
    """One 1-epoch run on a 22-patch toy store with two OSM layers, trained once per session."""
    from _engine import toy_store, use_folders

    from asgm.config import S2_BANDS, ExperimentConfig
    from asgm.training.train import train

    root = tmp_path_factory.mktemp("toy-osm-run")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        st = toy_store(root / "stores", n_pos=10, n_neg=12, osm=("highway", "waterway"))
        cfg = ExperimentConfig(
            store=str(st.root), bands=S2_BANDS, osm_layers=("waterway", "highway"), epochs=1, batch_size=8
        )
        run_id = train(cfg, n_boot=50)
    return root, run_id, st, cfg


@pytest.fixture
def osm_run(_toy_osm_training, monkeypatch):
    """``(run_id, store, config)`` of the shared toy OSM run, with the data/model folders pointing at it."""
    from _engine import use_folders

    root, run_id, st, cfg = _toy_osm_training
    use_folders(monkeypatch, root)
    return run_id, st, cfg
