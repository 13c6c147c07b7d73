"""Threshold selection and test metrics, with bootstrap confidence intervals.

Fixes of the study (spec §5, B5, B8):
- one decision rule everywhere: a patch is positive when ``prob >= threshold`` (the rule
  ``precision_recall_curve`` uses), on validation and on test alike;
- CIs for PR-AUC as well as F1, and a cluster-level (block) bootstrap besides the study's patch-level
  one, since neighbouring patches are correlated.
Metrics follow scikit-learn's definitions (F1 and average precision in numpy for the bootstrap's
sake, checked against scikit-learn in the tests); scoring a model on a run's split (under the run's recipe) is
``asgm.training.scoring``. No TensorFlow at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from asgm.model.calibration import decide

N_BOOT = 1000
BOOT_SEED = 42


def best_threshold(y_true: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 on validation; candidates are the distinct scores, the first
    maximum (lowest threshold) wins. Under ``decide`` the validation F1 equals the value returned."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, float)
    if y.sum() == 0:
        raise ValueError("validation set has no positives; cannot tune a threshold")
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    i = int(np.argmax(f1))
    return float(thresholds[i]), float(f1[i])


def _f1(y: np.ndarray, pred: np.ndarray, prob: np.ndarray) -> float:
    """F1 of fixed binary predictions; 0 when there are neither positives nor predicted positives
    (scikit-learn's ``f1_score(zero_division=0)``)."""
    tp = int(np.sum((y == 1) & (pred == 1)))
    wrong = int(np.sum(y != pred))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def _ap(y: np.ndarray, pred: np.ndarray, prob: np.ndarray) -> float:
    """Average precision as scikit-learn's ``average_precision_score`` computes it (tied scores form one
    step). In numpy because the bootstrap calls it a thousand times per CI, where scikit-learn's input
    validation costs more than the arithmetic; ``tests/training/test_evaluate.py`` checks it equals
    scikit-learn's."""
    positives = int(y.sum())
    if positives == 0:
        return float("nan")  # AP is undefined without positives; such resamples are skipped
    order = np.argsort(-prob, kind="mergesort")
    score, truth = prob[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # the last index of each distinct score
    tps = np.cumsum(truth)[last]
    precision = tps / (last + 1)
    recall = tps / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {"f1": _f1, "pr_auc": _ap}


def bootstrap_ci(
    y_true: np.ndarray,
    prob: np.ndarray,
    pred: np.ndarray,
    metric: str = "f1",
    groups: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``metric`` ('f1' or 'pr_auc'). Resamples patches with replacement
    (the study's way), or whole groups (clusters) with replacement when ``groups`` is given. The
    binary predictions stay fixed (threshold from validation). Resamples where the metric is
    undefined (no positives, for PR-AUC) are skipped."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, float)
    d = np.asarray(pred).astype(int)
    fn = METRICS[metric]
    rng = np.random.default_rng(seed)
    n = len(y)
    if n == 0:
        raise ValueError("no predictions to bootstrap")
    if groups is None:
        members = None
    else:
        g = np.asarray(groups)
        uniq, inv = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    values = np.empty(n_boot)
    for b in range(n_boot):
        if members is None:
            idx = rng.integers(0, n, n)
        else:
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[k] for k in pick])
        values[b] = fn(y[idx], d[idx], p[idx])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [alpha, 100 - alpha])
    return float(lo), float(hi)


def metrics_on_test(
    y_true: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    clusters: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """Every test metric of the run store's ``metrics.json`` (threshold applied with ``decide``),
    incl. precision at recall 0.9 and the calibration error (ECE, 10 bins) with its reliability curve."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_curve,
        precision_score,
        recall_score,
    )

    from asgm.model.calibration import ece, precision_at_recall, reliability

    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, float)
    pred = decide(p, threshold)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    has_pos = bool(y.sum() > 0)
    prec_c, rec_c, _ = precision_recall_curve(y, p) if has_pos else (np.array([]), np.array([]), None)
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "decision_rule": "prob >= threshold",
        "n": int(len(y)),
        "f1": _f1(y, pred, p),
        "f1_ci_patch": list(bootstrap_ci(y, p, pred, "f1", None, n_boot, seed)),
        "f1_ci_cluster": list(bootstrap_ci(y, p, pred, "f1", clusters, n_boot, seed)) if clusters is not None else None,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "pr_auc": float(average_precision_score(y, p)) if has_pos else None,
        "pr_auc_ci": list(bootstrap_ci(y, p, pred, "pr_auc", None, n_boot, seed)) if has_pos else None,
        "pr_auc_ci_cluster": (
            list(bootstrap_ci(y, p, pred, "pr_auc", clusters, n_boot, seed))
            if has_pos and clusters is not None
            else None
        ),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "confusion": [[tn, fp], [fn, tp]],
        "pr_curve": {"precision": [float(v) for v in prec_c], "recall": [float(v) for v in rec_c]},
        "bootstrap": {"resamples": int(n_boot), "seed": int(seed), "level": 0.95},
        "precision_at_recall_0.9": precision_at_recall(y, p, 0.9) if has_pos else None,
        "ece": ece(y, p),
        "reliability": reliability(y, p),
    }
    return out
