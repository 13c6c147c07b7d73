"""The training recipe beyond the study (issue 14), switched by ``ExperimentConfig`` fields:

- ``jitter``: photometric augmentation for chips of different years, regions and cloud thresholds —
  a brightness gain per chip (x0.8-1.25), a gain per band (x0.93-1.07) and, for half the chips, a haze
  veil (blend of up to 25 % towards a grey of reflectance 0.08-0.20);
- ``balance_sets``: sample weights ~ 1/sqrt(size of the chip's set) within each class, both classes
  weighing the same in total, so the large sets do not drown the small ones (but a 20-chip set is not
  blown up 20x either); ``balance_by='confuser'`` groups negatives by confuser class instead of set
  (``balance_groups``), so a class spread over several sets (riverbanks) weighs as one group;
- ``hard_negatives_from``: hard-negative mining — the training negatives that a first-pass run calls mining
  (at its own threshold) weigh ``hard_negative_weight`` times more (``hard_negative_weights``); only training
  chips are scored, so validation and test stay untouched;
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


def hard_negative_weights(
    config: ExperimentConfig, train_ids: list[str], labels: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """``weights`` (ones when None) with the training negatives that ``config.hard_negatives_from`` (a finished
    run) calls mining multiplied by ``config.hard_negative_weight``, and what was mined (for counts.json)."""
    from asgm.errors import AsgmError
    from asgm.model.inference import predict_store
    from asgm.model.runs import RunError

    first = str(config.hard_negatives_from)
    labels = np.asarray(labels).astype(int)
    neg_ids = [sid for sid, y in zip(train_ids, labels, strict=True) if y == 0]
    try:
        pred = predict_store(first, config.store, sample_ids=neg_ids)
    except AsgmError as exc:
        raise RunError(f"hard negatives from run {first!r}: {exc}") from exc
    called = set(pred.loc[pred["decision"] == 1, "sample_id"].astype(str))
    hard = np.array([sid in called for sid in train_ids]) & (labels == 0)
    base = np.ones(len(train_ids), np.float32) if weights is None else np.asarray(weights, np.float32)
    out = np.where(hard, base * np.float32(config.hard_negative_weight), base).astype(np.float32)
    info = {
        "from_run": first,
        "threshold": float(pred.attrs["threshold"]),
        "negatives_scored": len(neg_ids),
        "hard": int(hard.sum()),
        "weight": float(config.hard_negative_weight),
    }
    return out, info


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
