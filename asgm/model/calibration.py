"""Probability calibration and the metrics that check it: temperature scaling fitted on validation,
expected calibration error (ECE), reliability curve, precision at a fixed recall.

Temperature scaling divides the logit by one scalar T > 0 fitted by minimising the validation
negative log-likelihood; it is monotone, so rankings, PR-AUC and the F1 at the tuned threshold are
unchanged, only what "probability 0.9" means. No TensorFlow here.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def logit(prob: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(prob, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, numerically safe."""
    z = np.asarray(z, np.float64)
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def nll(y: np.ndarray, z: np.ndarray) -> float:
    """Mean binary cross-entropy of labels ``y`` under logits ``z``."""
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    # log(1 + exp(-z)) for y=1, log(1 + exp(z)) for y=0, stably.
    return float(np.mean(np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1 - y)))


def fit_temperature(y: np.ndarray, z: np.ndarray) -> float:
    """The temperature T in [0.05, 20] minimising the NLL of ``sigmoid(z / T)`` on (y, z)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    if len(y) == 0 or y.min() == y.max():
        return 1.0  # one class only: nothing to fit against
    res = minimize_scalar(lambda t: nll(y, z / np.exp(t)), bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def reliability(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Equal-width bins of predicted probability: mean prediction, observed positive rate, count."""
    y = np.asarray(y, np.float64)
    p = np.asarray(prob, np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    out: dict[str, list[float]] = {"mean_prob": [], "frac_pos": [], "count": [], "bin_lo": []}
    for b in range(bins):
        m = which == b
        if m.any():
            out["bin_lo"].append(b / bins)
            out["mean_prob"].append(float(p[m].mean()))
            out["frac_pos"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
    return out


def ece(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: count-weighted mean |observed rate - mean prediction| over bins."""
    r = reliability(y, prob, bins)
    n = sum(r["count"])
    if n == 0:
        return float("nan")
    return float(sum(c * abs(f - m) for c, f, m in zip(r["count"], r["frac_pos"], r["mean_prob"], strict=True)) / n)


def precision_at_recall(y: np.ndarray, prob: np.ndarray, recall: float = 0.9) -> float:
    """The highest precision at any threshold whose recall is at least ``recall``."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y).astype(int)
    if y.sum() == 0:
        return float("nan")
    prec, rec, _ = precision_recall_curve(y, np.asarray(prob, np.float64))
    ok = rec >= recall
    return float(prec[ok].max()) if ok.any() else float("nan")


def decide(prob: np.ndarray, threshold: float) -> np.ndarray:
    """The one decision rule: 1 where ``prob >= threshold``."""
    return (np.asarray(prob, float) >= float(threshold)).astype(int)
