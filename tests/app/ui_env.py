"""A complete app environment for the UI tests (AppTest and browser): real stores and really trained runs.

- ``demo``: a copy of the real demo pack (Earth Genome's Sentinel-2 RGB chips), built from the mirror;
- ``toy``: a tiny 12-band store with OSM masks written through ``PatchStore.write_osm`` (positives carry a
  'highway' line), from the engine tests' ``toy_store`` helper; labelled synthetic;
- runs trained with ``asgm.train.train``: RGB on the demo pack (2 epochs), all five OSM layers on ``toy``.
Nothing is mocked: the pages read these through ``asgm``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent


def page(name: str) -> str:
    """Absolute path of app.py or a page script."""
    return str(REPO / name)


def page_script(title: str) -> str:
    """The script of the menu page titled ``title`` (``asgm.app.page.MENU``), relative to the repository: page
    files are named in that one table, so renumbering them touches no test."""
    from asgm.app.page import MENU

    for spec in MENU:
        if spec.title == title:
            return spec.script
    raise KeyError(f"no page titled {title!r} in asgm.app.page.MENU: {[s.title for s in MENU]}")


@dataclass
class UiEnv:
    root: Path
    data: Path
    models: Path
    demo_run: str
    osm_run: str

    def environ(self) -> dict[str, str]:
        return {"ASGM_DATA_DIR": str(self.data), "ASGM_MODELS_DIR": str(self.models)}


@contextlib.contextmanager
def env_vars(values: dict[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (session fixtures cannot use monkeypatch)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_ui_env(root: Path, demo_root: Path) -> UiEnv:
    """Stores and two trained runs under ``root`` (takes ~60 s on 2 cores, once per session)."""
    from _engine import toy_store

    from asgm.config import OSM_LAYERS, S2_BANDS, ExperimentConfig
    from asgm.training.train import train

    data, models = root / "data", root / "models"
    stores = data / "stores"
    stores.mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo_root / "demo", stores / "demo")
    toy_store(stores, name="toy", n_pos=30, n_neg=30, osm=OSM_LAYERS)
    with env_vars({"ASGM_DATA_DIR": str(data), "ASGM_MODELS_DIR": str(models)}):
        demo_run = train(ExperimentConfig(name="ui-demo-rgb", store="demo", epochs=2), n_boot=50)
        # Enough steps that the model reacts to the 'highway' channel (its output moves by ~1e-3 when the
        # channel is zeroed), so turning the layer off visibly changes the prediction.
        osm_run = train(
            ExperimentConfig(
                name="ui-toy-osm",
                store="toy",
                bands=S2_BANDS,
                osm_layers=OSM_LAYERS,
                epochs=12,
                learning_rate=1e-3,
                batch_size=8,
                augment=False,
            ),
            n_boot=50,
        )
    return UiEnv(root, data, models, demo_run, osm_run)


_SHARED: dict[Path, UiEnv] = {}


def shared_ui_env(tmp_path_factory, demo_root: Path) -> UiEnv:
    """One UiEnv per test run, shared by tests/app and tests/e2e and by every xdist worker (training it once per
    worker would cost ~60 s each). Tests must not change it; those that add runs use their own models folder."""
    from _shared import once_per_run

    if demo_root not in _SHARED:

        def build(folder: Path) -> dict[str, str]:
            env = build_ui_env(folder, demo_root)
            return {"demo_run": env.demo_run, "osm_run": env.osm_run}

        root, facts = once_per_run(tmp_path_factory, "ui-env", build)
        _SHARED[demo_root] = UiEnv(root, root / "data", root / "models", facts["demo_run"], facts["osm_run"])
    return _SHARED[demo_root]
