"""The training recipe beyond the study (issue 14), switched by ``ExperimentConfig`` fields:

- ``jitter``: photometric augmentation for chips of different years, regions and cloud thresholds —
  a brightness gain per chip (x0.8-1.25), a gain per band (x0.93-1.07) and, for half the chips, a haze
  veil (blend of up to 25 % towards a grey of reflectance 0.08-0.20);
- ``balance_sets``: sample weights ~ 1/sqrt(size of the chip's set) within each class, both classes
  weighing the same in total, so the large sets do not drown the small ones (but a 20-chip set is not
  blown up 20x either); ``balance_by='confuser'`` groups negatives by confuser class instead of set
  (``balance_groups``), so a class spread over several sets (riverbanks) weighs as one group;
- ``lr_schedule='cosine'``: the learning rate decays from its value to 0 along a cosine over all
  training steps, so the last epochs settle (BatchNorm statistics and weights stop jumping);
- ``tta`` and ``calibrate``: applied in scoring (``asgm.training.scoring.score``): logits averaged over the D4
  symmetries, temperature fitted on validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asgm.config import ExperimentConfig


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


def balance_groups(labels: np.ndarray, sets: np.ndarray, confusers: np.ndarray | None) -> np.ndarray:
    """The groups ``set_weights`` balances for ``balance_by='confuser'``: a negative's confuser class when it has
    one, else (positives, sets without a class) its set."""
    sets = np.asarray(sets).astype(str)
    if confusers is None:
        return sets
    conf = np.asarray(confusers, dtype=object)
    has = (np.asarray(labels).astype(int) == 0) & np.array([isinstance(c, str) and c != "" for c in conf])
    return np.where(has, np.array(["confuser:" + str(c) for c in conf]), sets)


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
