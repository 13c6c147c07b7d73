"""Dataset assembly: row selection, the masked-patch filter, input scaling, the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _engine import toy_store

from asgm.config import S2_BANDS, ExperimentConfig
from asgm.model.inputs import (
    DatasetError,
    PatchSource,
    assemble,
    check_store,
    masked_filter,
    prepare_input,
    select_rows,
)
from asgm.training.dataset import augmenter, class_weights, make_tf_dataset


def _cfg(store, **kw):
    return ExperimentConfig(store=str(store.root), bands=kw.pop("bands", S2_BANDS), **kw)


def test_negatives_selection(tmp_path):
    st = toy_store(tmp_path, n_pos=4, n_neg=5, n_random=6)
    cur = select_rows(st, _cfg(st))
    rnd = select_rows(st, _cfg(st, negatives="random"))
    assert sorted(cur.loc[cur.label == 0, "set"].unique()) == ["curated"] and (cur.label == 0).sum() == 5
    assert sorted(rnd.loc[rnd.label == 0, "set"].unique()) == ["random"] and (rnd.label == 0).sum() == 6
    assert (cur.label == 1).sum() == (rnd.label == 1).sum() == 4
    assert cur["sample_id"].is_monotonic_increasing


def test_missing_random_negatives_is_a_clear_error(tmp_path):
    st = toy_store(tmp_path, n_pos=3, n_neg=3)
    with pytest.raises(DatasetError, match="no random negatives"):
        select_rows(st, _cfg(st, negatives="random"))


def test_masked_patch_filter_counts(tmp_path):
    masked = {
        "pos-0000": 0.09,
        "pos-0001": 0.11,
        "pos-0002": 0.15,
        "neg-0000": 0.59,
        "neg-0001": 0.61,
        "neg-0002": 0.70,
    }
    st = toy_store(tmp_path, n_pos=5, n_neg=5, masked=masked)
    data = assemble(st, _cfg(st))
    kept = set(data.rows["sample_id"])
    assert data.dropped == {"positives": 2, "negatives": 2}  # >= 10 % and >= 60 % are dropped
    assert {"pos-0000", "neg-0000"} <= kept and not ({"pos-0001", "pos-0002", "neg-0001", "neg-0002"} & kept)
    assert data.counts["kept"] == 6 and data.counts["selected"] == 10


def test_masked_filter_boundaries_are_inclusive():
    rows = pd.DataFrame(
        {"sample_id": list("abcd"), "label": [1, 1, 0, 0], "masked_fraction": [0.0999, 0.10, 0.5999, 0.60]}
    )
    kept, dropped = masked_filter(rows, 0.10, 0.60)
    assert kept["sample_id"].tolist() == ["a", "c"] and dropped == {"positives": 1, "negatives": 1}


def test_store_checks(tmp_path):
    st = toy_store(tmp_path, n_pos=2, n_neg=2, bands=("B4", "B3", "B2"))
    with pytest.raises(DatasetError, match="bands"):
        check_store(st, _cfg(st))
    with pytest.raises(DatasetError, match="256"):
        check_store(st, _cfg(st, bands=("B4", "B3", "B2"), patch_size=256))
    with pytest.raises(DatasetError, match="OSM"):
        check_store(st, _cfg(st, bands=("B4", "B3", "B2"), osm_layers=("highway",)))


def test_prepare_input_scaling_band_order_and_osm_order():
    data = np.zeros((3, 4, 4), np.uint16)
    data[0], data[1], data[2] = 5000, 20000, 100  # B4, B3, B2
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[0, 0, 0] = 1  # waterway
    masks[1, 1, 1] = 1  # highway
    cfg = ExperimentConfig(bands=("B2", "B4"), osm_layers=("waterway", "highway"), patch_size=48)
    x = prepare_input(data, ("B4", "B3", "B2"), (masks, ("waterway", "highway")), cfg)
    assert x.shape == (4, 4, 4) and x.dtype == np.float32
    assert np.allclose(x[..., 0], 0.01) and np.allclose(x[..., 1], 0.5)
    # config keeps OSM_LAYERS order: highway before waterway
    assert x[1, 1, 2] == 1 and x[0, 0, 3] == 1 and x[..., 2:].sum() == 2
    x2 = prepare_input(data, ("B4", "B3", "B2"), None, ExperimentConfig(bands=("B3",)))
    assert np.allclose(x2, 1.0)  # 20000 DN clipped
    with pytest.raises(DatasetError, match="OSM"):
        prepare_input(data, ("B4", "B3", "B2"), None, cfg)


def test_class_weights_formula():
    w = class_weights(np.array([0, 0, 0, 1]))
    assert w[0] == pytest.approx(4 / 6) and w[1] == pytest.approx(2.0)


@pytest.mark.parametrize("cache_limit_mb", [1024, 0])  # in-RAM compact cache, and streaming from disk
def test_pipeline_batches_every_row_once_with_real_batch_size(tmp_path, cache_limit_mb):
    st = toy_store(tmp_path, n_pos=9, n_neg=11, osm=("highway", "aeroway"))
    cfg = _cfg(st, osm_layers=("highway", "aeroway"), batch_size=8)
    rows = select_rows(st, cfg)
    src = PatchSource(st, cfg, rows["sample_id"], cache_limit_mb=cache_limit_mb)
    assert src.cached is (cache_limit_mb > 0)
    ds = make_tf_dataset(
        src,
        rows["label"].to_numpy(),
        cfg.batch_size,
        training=True,
        seed=1,
        weights={0: 0.5, 1: 2.0},
        augment=augmenter(cfg, len(cfg.bands), 1),
    )
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [8, 8, 4]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    assert x.shape == (20, 48, 48, 14) and sorted(y) == sorted(rows["label"].astype(float))
    assert np.allclose(w, np.where(y == 1, 2.0, 0.5))
    # Sums over a sample are invariant to flips/transposes: match each output to its source row.
    ref = np.stack([src.load(i) for i in range(len(rows))])
    assert sorted(np.round(x.sum(axis=(1, 2, 3)), 2)) == sorted(np.round(ref.sum(axis=(1, 2, 3)), 2))


def test_augmentation_is_d4_and_keeps_osm_binary(tmp_path):
    st = toy_store(tmp_path, n_pos=2, n_neg=2, osm=("highway",))
    cfg = _cfg(st, osm_layers=("highway",))
    src = PatchSource(st, cfg, ["pos-0000"])
    x = src.load(0)
    sym = [np.rot90(v, k, axes=(0, 1)) for v in (x, x[::-1]) for k in range(4)]
    aug = augmenter(cfg, len(cfg.bands), seed=3)
    out = np.asarray(aug(np.repeat(x[None], 16, axis=0)))
    seen = set()
    for o in out:
        hits = [i for i, s in enumerate(sym) if np.array_equal(o, s)]
        assert hits, "augmented patch is not a flip/90° rotation of the input"
        seen.add(hits[0])
    assert len(seen) > 1
    cfg_aff = _cfg(st, osm_layers=("highway",), affine_augment=True)
    out = np.asarray(augmenter(cfg_aff, len(cfg.bands), seed=3)(np.repeat(x[None], 8, axis=0)))
    assert set(np.unique(out[..., -1])) <= {0.0, 1.0}
    assert not np.allclose(out[..., :-1], x[None, ..., :-1])  # the affine really moved pixels


def test_partial_cache_and_fused_d4_match_the_plain_inputs(tmp_path):
    st = toy_store(tmp_path, n_pos=5, n_neg=5, osm=("highway", "aeroway"))
    cfg = _cfg(st, osm_layers=("highway", "aeroway"), batch_size=4)
    rows = select_rows(st, cfg)
    ref = np.stack([prepare_input(st.read_patch(s).data, S2_BANDS, st.read_osm(s), cfg) for s in rows["sample_id"]])
    per_row_mb = 48 * 48 * (2 * 12 + 2) / 1e6
    src = PatchSource(st, cfg, rows["sample_id"], cache_limit_mb=3.5 * per_row_mb)  # 3 rows cached, 7 streamed
    assert src.capacity == 3 and not src.cached
    for _ in range(2):  # cold, then from the cache
        assert np.array_equal(src.load_batch(np.arange(len(rows))), ref)
    # The D4 code is applied while copying: bit 0 transpose, bit 1 horizontal flip, bit 2 vertical flip.
    for code in range(8):
        want = ref.transpose(0, 2, 1, 3) if code & 1 else ref
        want = want[:, :, ::-1] if code & 2 else want
        want = want[:, ::-1] if code & 4 else want
        assert np.array_equal(src.load_batch(np.arange(len(rows)), np.full(len(rows), code)), want)
    # Through the pipeline: every output is a D4 image of its own row, and the draws vary.
    ds = make_tf_dataset(src, rows["label"].to_numpy(), 4, training=True, seed=2, augment=augmenter(cfg, 12, 5))
    x = np.concatenate([b[0] for b in ds.as_numpy_iterator()])
    syms = [[np.rot90(v, k, axes=(0, 1)) for v in (r, r[::-1]) for k in range(4)] for r in ref]
    rows_seen, used = [], set()
    for o in x:
        hits = [(i, j) for i, sym in enumerate(syms) for j, s in enumerate(sym) if np.array_equal(o, s)]
        assert hits, "output is not a flip/90° rotation of any input row"
        rows_seen.append(hits[0][0])
        used.add(hits[0][1])
        assert set(np.unique(o[..., 12:])) <= {0.0, 1.0}
    assert sorted(rows_seen) == list(range(len(rows))) and len(used) > 1
