"""The training and scoring recipe beyond the study (issue 14), switched by ``ExperimentConfig`` fields:

- ``jitter``: photometric augmentation for chips of different years, regions and cloud thresholds —
  a brightness gain per chip (x0.8-1.25), a gain per band (x0.93-1.07) and, for half the chips, a haze
  veil (blend of up to 25 % towards a grey of reflectance 0.08-0.20);
- ``balance_sets``: sample weights ~ 1/sqrt(size of the chip's set) within each class, both classes
  weighing the same in total, so the large sets do not drown the small ones (but a 20-chip set is not
  blown up 20x either);
- ``lr_schedule='cosine'``: the learning rate decays from its value to 0 along a cosine over all
  training steps, so the last epochs settle (BatchNorm statistics and weights stop jumping);
- ``tta`` and ``calibrate``: applied in scoring (``score_split``): logits averaged over the D4
  symmetries, temperature fitted on validation. Both are post-hoc, so each run also records its test
  metrics with each switched off (``metrics['posthoc']``): the effect of each, on the same model.

Scoring also reports the test metrics of the store's Bolívar part (the demo pack's sets) separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from asgm.config import ExperimentConfig
from asgm.evaluate import best_threshold, decide, metrics_on_test

#: Which test rows form a named part of a store, by set (the demo pack: north-east Bolívar, 2019).
PART_SETS: dict[str, tuple[str, ...]] = {"bolivar": ("eg-positives", "eg-negatives", "curated")}
SUMMARY_KEYS = ("val_f1", "f1", "precision", "recall", "pr_auc", "precision_at_recall_0.9", "ece", "f1_ci_cluster",
                "n", "tp", "fp", "fn", "tn")


def set_weights(labels: np.ndarray, sets: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-sample weights ~ n_set^-power, normalised so each class sums to n/2 (mean weight 1)."""
    labels = np.asarray(labels).astype(int)
    sets = np.asarray(sets).astype(str)
    n = len(labels)
    w = np.zeros(n, np.float64)
    for c in (0, 1):
        m = labels == c
        if not m.any():
            continue
        names, inv, counts = np.unique(sets[m], return_inverse=True, return_counts=True)
        wc = counts[inv].astype(np.float64) ** -power
        w[m] = wc / wc.sum() * (n / 2)
    return w.astype(np.float32)


def learning_rate(config: ExperimentConfig, n_train: int) -> Any:
    """The optimizer's learning rate: a float, or a cosine decay over every training step."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    import keras

    steps = max(1, config.epochs * -(-n_train // config.batch_size))
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)


def jitter(x: Any, seed_gen: Any, n_bands: int) -> Any:
    """Brightness, per-band gain and haze jitter on a float batch (B, H, W, C), in-graph; OSM channels
    (after the first ``n_bands``) are left untouched."""
    import keras
    import tensorflow as tf

    b = tf.shape(x)[0]
    bands, rest = x[..., :n_bands], x[..., n_bands:]
    gain = keras.random.uniform((b, 1, 1, 1), 0.8, 1.25, seed=seed_gen)
    band_gain = keras.random.uniform((b, 1, 1, n_bands), 0.93, 1.07, seed=seed_gen)
    hazy = tf.cast(keras.random.uniform((b, 1, 1, 1), seed=seed_gen) < 0.5, x.dtype)
    veil = hazy * keras.random.uniform((b, 1, 1, 1), 0.0, 0.25, seed=seed_gen)
    grey = keras.random.uniform((b, 1, 1, 1), 0.08, 0.20, seed=seed_gen)
    bands = tf.clip_by_value((bands * gain * band_gain) * (1.0 - veil) + veil * grey, 0.0, 1.0)
    return tf.concat([bands, rest], axis=-1)


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m.get(k) for k in SUMMARY_KEYS}


def _score_probs(val: pd.DataFrame, test: pd.DataFrame, z_val: np.ndarray, z_test: np.ndarray, temperature: float,
                 n_boot: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
    from asgm.calibration import sigmoid

    p_val, p_test = sigmoid(z_val / temperature), sigmoid(z_test / temperature)
    threshold, val_f1 = best_threshold(val["label"].to_numpy(), p_val)
    m = metrics_on_test(test["label"].to_numpy(), p_test, threshold, clusters=test["cluster"].to_numpy(),
                        n_boot=n_boot, seed=42)
    m["val_f1"] = val_f1
    return m, p_val, p_test, threshold


def score_split(model: Any, store: Any, config: ExperimentConfig, split: pd.DataFrame, n_boot: int,
                zero_layers: tuple[str, ...] = ()) -> tuple[dict[str, Any], pd.DataFrame]:
    """Predict validation and test rows with the run's recipe (``asgm.inference.recipe_logits``), fit
    the temperature on validation (``calibrate``), tune the threshold on validation, score test.

    Returns (metrics, predictions of val+test rows: sample_id, label, prob, pred, split, cluster, lon, lat)."""
    from asgm.calibration import fit_temperature
    from asgm.dataset import PatchSource
    from asgm.inference import source_logits

    def logits(part: pd.DataFrame, cfg: ExperimentConfig) -> np.ndarray:
        # One pass over each split: caching would only cost memory.
        source = PatchSource(store, cfg, part["sample_id"], cache_limit_mb=0)
        return source_logits(model, source, cfg, batch_size=256, zero_layers=zero_layers)

    val, test = (split[split["split"] == s].sort_values("sample_id").reset_index(drop=True) for s in ("val", "test"))
    z_val, z_test = logits(val, config), logits(test, config)
    temperature = fit_temperature(val["label"].to_numpy(), z_val) if config.calibrate else 1.0
    metrics, p_val, p_test, threshold = _score_probs(val, test, z_val, z_test, temperature, n_boot)
    metrics["temperature"] = temperature
    metrics["recipe"] = {"architecture": config.architecture, "tta": config.tta, "calibrate": config.calibrate,
                         "jitter": config.jitter, "balance_sets": config.balance_sets}

    # Post-hoc parts of the recipe switched off, one at a time, on the very same model.
    posthoc: dict[str, Any] = {}
    if config.calibrate:
        posthoc["no_calibration"] = _summary(_score_probs(val, test, z_val, z_test, 1.0, 0)[0])
    if config.tta:
        plain = config.model_copy(update={"tta": False})
        zv, zt = logits(val, plain), logits(test, plain)
        t_plain = fit_temperature(val["label"].to_numpy(), zv) if config.calibrate else 1.0
        posthoc["no_tta"] = _summary(_score_probs(val, test, zv, zt, t_plain, 0)[0])
    if posthoc:
        metrics["posthoc"] = posthoc

    sets = store.index().set_index("sample_id")["set"]
    test_sets = test["sample_id"].map(sets).to_numpy()
    parts: dict[str, Any] = {}
    for name, members in PART_SETS.items():
        m = np.isin(test_sets, members)
        if m.any() and not m.all() and test.loc[m, "label"].sum() > 0:
            pm = metrics_on_test(test.loc[m, "label"].to_numpy(), p_test[m], threshold,
                                 clusters=test.loc[m, "cluster"].to_numpy(), n_boot=n_boot, seed=42)
            parts[name] = _summary(pm)
    if parts:
        metrics["parts"] = parts

    preds = pd.concat([val.assign(prob=p_val), test.assign(prob=p_test)], ignore_index=True)
    preds["pred"] = decide(preds["prob"].to_numpy(), threshold)
    return metrics, preds[["sample_id", "label", "prob", "pred", "split", "cluster", "lon", "lat"]]
