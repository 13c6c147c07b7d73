"""Shared fixtures: temp data/model folders, the real demo pack (from the mirror), synthetic stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests read real upstream files from the local mirror, never the network. CI sets ASGM_DATA_MIRROR;
# from a checkout next to shared/ the default finds it.
if not os.environ.get("ASGM_DATA_MIRROR") and (REPO.parent / "shared" / "data").is_dir():
    os.environ["ASGM_DATA_MIRROR"] = str(REPO.parent / "shared" / "data")


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """Per-test ``ASGM_DATA_DIR`` and ``ASGM_MODELS_DIR`` under tmp_path; returns tmp_path."""
    from _engine import use_folders

    use_folders(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local mirror of upstream files (required: tests never touch the network)."""
    value = os.environ.get("ASGM_DATA_MIRROR")
    if not value or not Path(value).is_dir():
        pytest.fail("ASGM_DATA_MIRROR must point at the data mirror (e.g. ../shared/data); see README")
    return Path(value)


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

    def factory(n_pos: int = 8, n_neg: int = 16, n_random: int = 0, size: int = 48, seed: int = 0, name: str = "synthetic"):
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
        cfg = ExperimentConfig(store=str(st.root), bands=S2_BANDS, osm_layers=("waterway", "highway"), epochs=1,
                               batch_size=8)
        run_id = train(cfg, n_boot=50)
    return root, run_id, st, cfg


@pytest.fixture
def osm_run(_toy_osm_training, monkeypatch):
    """``(run_id, store, config)`` of the shared toy OSM run, with the data/model folders pointing at it."""
    from _engine import use_folders

    root, run_id, st, cfg = _toy_osm_training
    use_folders(monkeypatch, root)
    return run_id, st, cfg
