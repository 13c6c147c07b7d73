"""The streaming ``tf.data`` training pipeline over a ``PatchSource``: class weights, D4 and photometric
augmentation, batching. TensorFlow is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from asgm.config import ExperimentConfig

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf
from asgm.model.inputs import DatasetError, PatchSource


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """sklearn's 'balanced' weights w_c = n / (2 n_c), computed on the labels given (the training split)."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels).astype(int)
    classes = np.array([0, 1])
    if set(np.unique(labels)) != {0, 1}:
        raise DatasetError("class weighting needs both classes in the training split")
    w = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(v) for c, v in zip(classes, w, strict=True)}


class Augmenter:
    """Training-time augmentation: the D4 symmetry group of the square (all flips and 90° rotations,
    uniformly, independently per sample), optionally followed by a small affine (shift, zoom) after
    which the OSM channels are re-binarised so masks are never blurred (bug B7).

    Calling it on a float batch (B, H, W, C) applies everything in-graph (Keras layers).
    ``make_tf_dataset`` instead draws a D4 code per sample from a seeded ``tf.data`` random stream and
    lets ``PatchSource.load_batch`` apply it while copying the patch into the batch (no extra pass over
    the data); only the affine part, if any, then runs on the float batch. Both give the same
    distribution: each of the 8 symmetries with probability 1/8 per sample, new draws every epoch."""

    def __init__(self, config: ExperimentConfig, n_bands: int, seed: int):
        import keras

        self.seed, self.n_bands = int(seed), int(n_bands)
        self.n_osm = len(config.osm_layers)
        self.affine = bool(config.affine_augment)
        self._flips = keras.Sequential(
            [
                keras.layers.RandomFlip("horizontal", seed=seed),
                keras.layers.RandomFlip("vertical", seed=seed + 1),
            ],
            name="augment_d4",
        )
        self._transpose_seed = keras.random.SeedGenerator(seed + 2)
        self.jitter = bool(config.jitter)
        self._jitter_seed = keras.random.SeedGenerator(seed + 5)
        self._affine = (
            keras.Sequential(
                [
                    keras.layers.RandomTranslation(0.05, 0.05, fill_mode="reflect", seed=seed + 3),
                    keras.layers.RandomZoom(0.1, 0.1, fill_mode="reflect", seed=seed + 4),
                ],
                name="augment_affine",
            )
            if self.affine
            else None
        )

    def d4(self, x: tf.Tensor) -> tf.Tensor:
        """Random D4 symmetry per sample of a float batch, in-graph."""
        import keras
        import tensorflow as tf

        # Keras has no 90-degree rotation layer: a per-sample transpose on top of the two independent
        # flips generates all 8 symmetries of the square (rotations by k*90° included), exactly.
        coin = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), seed=self._transpose_seed) < 0.5
        x = tf.where(coin, tf.transpose(x, [0, 2, 1, 3]), x)
        return self._flips(x, training=True)

    def affine_part(self, x: tf.Tensor) -> tf.Tensor:
        """The optional small affine, with OSM channels snapped back to 0/1, then the optional photometric
        jitter (``asgm.training.recipe.jitter``); identity without either."""
        import tensorflow as tf

        if self.jitter:
            from asgm.training.recipe import jitter

            x = jitter(x, self._jitter_seed, self.n_bands)
        if self._affine is None:
            return x
        y = self._affine(x, training=True)
        if self.n_osm:
            # Interpolation mixes neighbouring mask pixels: snap the OSM channels back to 0/1.
            y = tf.concat([y[..., : self.n_bands], tf.cast(y[..., self.n_bands :] >= 0.5, y.dtype)], axis=-1)
        return y

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return self.affine_part(self.d4(x))


def augmenter(config: ExperimentConfig, n_bands: int, seed: int) -> Augmenter:
    """The training augmentation of ``config`` (see ``Augmenter``)."""
    return Augmenter(config, n_bands, seed)


def make_tf_dataset(
    source: PatchSource,
    labels: np.ndarray,
    batch_size: int,
    *,
    training: bool = False,
    seed: int = 7,
    weights: dict[int, float] | None = None,
    augment: Any = None,
    sample_weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A streaming ``tf.data`` pipeline of (x, y[, sample_weight]) batches.

    Shuffles row positions (reshuffled each epoch, seeded) when ``training``; loads each batch with one
    numpy call (compact cache or disk) that converts to float32 and, for an ``Augmenter``, applies the
    per-sample D4 symmetry during that same copy; any other augmentation (the affine part, or a plain
    callable) runs in-graph on the batch; prefetches so loading overlaps the previous step.
    ``sample_weights`` (one per row) are multiplied into the class weights, if any."""
    import tensorflow as tf

    labels = np.asarray(labels, dtype=np.float32)
    n = len(labels)
    idx = tf.data.Dataset.from_tensor_slices(np.arange(n, dtype=np.int64))
    if training:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    fused = training and isinstance(augment, Augmenter)
    if fused:
        # One D4 code (0-7, uniform) per sample from a seeded stream that is redrawn every epoch.
        codes = tf.data.Dataset.random(seed=augment.seed, rerandomize_each_iteration=True).map(
            lambda r: tf.math.floormod(r, 8)
        )
        idx = tf.data.Dataset.zip(idx, codes)
    else:
        idx = idx.map(lambda i: (i, tf.zeros((), tf.int64)))
    idx = idx.batch(batch_size)
    shape = source.shape
    label_t = tf.constant(labels)
    w_t = tf.constant([weights.get(0, 1.0), weights.get(1, 1.0)], dtype=tf.float32) if weights else None
    sw_t = None if sample_weights is None else tf.constant(np.asarray(sample_weights, np.float32))

    def load(batch_idx: tf.Tensor, batch_codes: tf.Tensor) -> tuple:
        if fused:
            x = tf.numpy_function(source.load_batch, [batch_idx, batch_codes], tf.float32, stateful=False)
        else:
            x = tf.numpy_function(source.load_batch, [batch_idx], tf.float32, stateful=False)
        x.set_shape((None, *shape))
        y = tf.gather(label_t, batch_idx)
        if w_t is None and sw_t is None:
            return x, y
        w = tf.ones_like(y) if w_t is None else tf.gather(w_t, tf.cast(y, tf.int32))
        return x, y, w if sw_t is None else w * tf.gather(sw_t, batch_idx)

    # Reading GeoTIFFs releases the GIL: two batches in flight when streaming; copying from the
    # compact cache is cheap enough for one.
    ds = idx.map(load, num_parallel_calls=2 if not source.cached else 1, deterministic=True)
    extra = (
        augment.affine_part
        if fused and (augment.affine or augment.jitter)
        else (augment if training and not fused else None)
    )
    if extra is not None:
        if w_t is not None or sw_t is not None:
            ds = ds.map(lambda x, y, w: (extra(x), y, w), num_parallel_calls=1)
        else:
            ds = ds.map(lambda x, y: (extra(x), y), num_parallel_calls=1)
    return ds.prefetch(2)
