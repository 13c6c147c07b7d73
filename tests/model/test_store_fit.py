"""One compatibility check between a patch store and an experiment config."""

from __future__ import annotations

import pytest
from _engine import toy_store

from asgm.config import S2_BANDS, ExperimentConfig
from asgm.data.store import PatchStore, StoreMeta
from asgm.model import run_jobs, runs
from asgm.model.store_fit import product_level_note, store_problems


def test_every_problem_is_reported_at_once(tmp_path):
    st = toy_store(tmp_path, n_pos=2, n_neg=2, bands=("B4", "B3", "B2"), osm=("highway",))
    cfg = ExperimentConfig(store=st.name, bands=S2_BANDS, patch_size=256, osm_layers=("highway", "aeroway"))
    problems = store_problems(st, cfg)
    assert len(problems) == 3
    assert "B8" in problems[0] and "256" in problems[1] and "['aeroway']" in problems[2]
    assert "--layers highway aeroway" in problems[2]
    assert store_problems(st, ExperimentConfig(store=st.name, bands=("B4", "B3", "B2"), osm_layers=("highway",))) == []


def test_no_osm_masks_says_how_to_make_them(tmp_path):
    st = toy_store(tmp_path, n_pos=2, n_neg=2)
    (problem,) = store_problems(st, ExperimentConfig(store=st.name, bands=S2_BANDS, osm_layers=("highway",)))
    assert "has no OSM masks" in problem and f"asgm osm rasterize --store {st.name}" in problem


def test_product_level_note_only_across_levels(data_env):
    l1c, l2a, l1c_b = (
        PatchStore.create(StoreMeta(name=n, source="test", bands=("B4",), size=48, product_level=lv))
        for n, lv in [("l1c", "L1C"), ("l2a", "L2A"), ("l1c-b", "L1C")]
    )
    assert "Level-2A" in (product_level_note(l1c, l2a) or "")
    assert product_level_note(l1c, l1c_b) is None


def test_launch_refuses_a_config_the_store_cannot_train(data_env):
    st = toy_store(data_env / "stores", n_pos=2, n_neg=2, bands=("B4", "B3", "B2"))
    with pytest.raises(runs.RunError, match="cannot train this config.*has bands"):
        run_jobs.launch(ExperimentConfig(store=str(st.root), bands=S2_BANDS))
    assert runs.list_runs() == []
