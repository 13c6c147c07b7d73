"""Threshold rule and metrics on constructed predictions with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from asgm.model.calibration import decide
from asgm.training.evaluate import METRICS, best_threshold, bootstrap_ci, metrics_on_test


def test_threshold_is_the_validation_f1_optimum_under_the_ge_rule():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    t, f1 = best_threshold(y, p)
    # t=0.8 -> F1 .667; t=0.4 -> .5; t=0.35 -> TP2 FP1 -> .8; t=0.1 -> .667
    assert t == pytest.approx(0.35) and f1 == pytest.approx(0.8)
    assert f1_score(y, decide(p, t)) == pytest.approx(f1)
    # The study's strict '>' on test would drop the boundary positive (bug B8).
    assert f1_score(y, (p > t).astype(int)) == pytest.approx(0.5)


def test_decide_is_inclusive():
    assert decide(np.array([0.49, 0.5, 0.51]), 0.5).tolist() == [0, 1, 1]


def test_bootstrap_ci_of_perfect_predictions_is_degenerate():
    y = np.array([0, 1] * 20)
    assert bootstrap_ci(y, y.astype(float), y, "f1") == (1.0, 1.0)
    assert bootstrap_ci(y, y.astype(float), y, "pr_auc") == (1.0, 1.0)


def test_cluster_bootstrap_respects_groups():
    # Every cluster holds one TP and one FP: any resample of clusters has F1 = 2k/(2k+k) = 2/3 exactly,
    # whereas resampling single patches mixes the TP/FP ratio and widens the interval.
    n = 30
    y = np.tile([1, 0], n)
    pred = np.ones(2 * n, int)
    prob = np.tile([0.9, 0.8], n)
    groups = np.repeat(np.arange(n), 2)
    lo, hi = bootstrap_ci(y, prob, pred, "f1", groups=groups)
    assert lo == pytest.approx(2 / 3) and hi == pytest.approx(2 / 3)
    plo, phi = bootstrap_ci(y, prob, pred, "f1")
    assert plo < 2 / 3 < phi


def test_bootstrap_is_seeded_and_matches_a_direct_percentile():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    prob = np.clip(y * 0.4 + rng.random(60) * 0.6, 0, 1)
    pred = decide(prob, 0.5)
    ci = bootstrap_ci(y, prob, pred, "f1", n_boot=500, seed=5)
    assert ci == bootstrap_ci(y, prob, pred, "f1", n_boot=500, seed=5)
    g = np.random.default_rng(5)
    vals = [f1_score(y[i], pred[i], zero_division=0) for i in (g.integers(0, 60, 60) for _ in range(500))]
    assert ci == pytest.approx(tuple(np.percentile(vals, [2.5, 97.5])))


@pytest.mark.parametrize("seed", range(40))
def test_bootstrap_metrics_equal_sklearns(seed: int) -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    y = rng.integers(0, 2, n)
    # Scores rounded to two decimals so that ties (one step of the curve) occur often.
    prob = np.round(np.clip(y * rng.random() + rng.random(n), 0, 1), 2)
    pred = decide(prob, float(rng.random()))
    assert METRICS["f1"](y, pred, prob) == pytest.approx(f1_score(y, pred, zero_division=0), abs=1e-12)
    if y.sum():
        assert METRICS["pr_auc"](y, pred, prob) == pytest.approx(average_precision_score(y, prob), abs=1e-12)
    else:
        assert np.isnan(METRICS["pr_auc"](y, pred, prob))


def test_test_metrics_confusion_layout_and_fields():
    y = np.array([0, 0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.7, 0.2, 0.9, 0.3, 0.8])
    m = metrics_on_test(y, prob, 0.5, clusters=np.arange(6), n_boot=200)
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (2, 1, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    for key in ("f1_ci_patch", "f1_ci_cluster", "pr_auc_ci"):
        lo, hi = m[key]
        assert 0 <= lo <= hi <= 1
    assert len(m["pr_curve"]["precision"]) == len(m["pr_curve"]["recall"]) > 1


def test_best_threshold_needs_positives():
    with pytest.raises(ValueError, match="no positives"):
        best_threshold(np.zeros(5), np.linspace(0, 1, 5))
