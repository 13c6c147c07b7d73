"""Batched probabilities of a whole store: same numbers as single-patch classify, bad files isolated."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _engine import toy_store

from asgm.maps.probabilities import store_probabilities
from asgm.model import inference


def test_batched_probabilities_match_single_patch_classify(osm_run):
    run_id, st, _ = osm_run
    table = store_probabilities(run_id, st, batch_size=5)  # 22 patches: batches of 5, 5, 5, 5, 2
    assert list(table["sample_id"]) == sorted(st.sample_ids())
    assert table.attrs["threshold"] == inference.classify(run_id, st, "pos-0001")["threshold"]
    for row in table.itertuples():
        one = inference.classify(run_id, st, row.sample_id)
        assert row.prob == pytest.approx(one["prob"], abs=1e-5)
        assert (row.decision, row.label) == (one["decision"], one["label"])
    again = store_probabilities(run_id, st, batch_size=256)
    np.testing.assert_allclose(again["prob"], table["prob"], atol=1e-6)


def test_a_corrupt_patch_is_reported_and_the_rest_scored(osm_run, tmp_path):
    run_id, st, _ = osm_run
    copy = tmp_path / st.root.name
    shutil.copytree(st.root, copy)
    from asgm.data.store import PatchStore

    broken = PatchStore.open(copy.name, root=tmp_path)
    broken.patch_path("neg-0002").write_bytes(b"not a tiff")
    table = store_probabilities(run_id, broken).set_index("sample_id")
    assert np.isnan(table.loc["neg-0002", "prob"]) and table.loc["neg-0002", "decision"] == -1
    assert "corrupt" in table.loc["neg-0002", "error"]
    others = table.drop(index="neg-0002")
    assert others["prob"].between(0, 1).all() and (others["error"] == "").all()


def test_a_store_the_run_cannot_read_says_what_to_do(osm_run, tmp_path):
    run_id, _, _ = osm_run
    rgb = toy_store(tmp_path, name="rgb-only", n_pos=2, n_neg=2, bands=("B2", "B3", "B4"))
    with pytest.raises(inference.InferenceError, match="cannot classify store 'rgb-only'"):
        store_probabilities(run_id, rgb)
