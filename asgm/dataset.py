"""Dataset assembly from a patch store: row selection, the study's masked-patch filter, model inputs,
and a streaming ``tf.data`` pipeline.

Model input (DEVELOPING.md): Sentinel-2 DN of ``config.bands`` / 10000 clipped to [0, 1], then the OSM
masks (0/1) in ``config.osm_layers`` order. Nothing is fitted to the data, so normalisation cannot leak.

Memory: patches are kept (if at all) as their compact on-disk dtypes (uint16 DN, uint8 masks) and are
only turned into float32 one batch at a time inside the pipeline, so 1,259 patches of 256x256x17 never
sit in memory as float32, let alone twice (the study's in-memory arrays peaked at 10 GB; spec §4).
TensorFlow is imported lazily: row selection and the filter are usable without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from asgm.config import ExperimentConfig
from asgm.errors import AsgmError
from asgm.store import PatchStore

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: DN -> reflectance scale of the study (divide, then clip to [0, 1]).
DN_SCALE = 10000.0
#: Keep compact patch arrays in RAM when they need less than this; stream from disk otherwise.
DEFAULT_CACHE_LIMIT_MB = 1024


class DatasetError(AsgmError):
    """The patch store cannot feed this experiment config; the message says what to change."""


@dataclass
class Assembled:
    """The rows of a store an experiment uses, after the masked-patch filter."""

    store: PatchStore
    config: ExperimentConfig
    rows: pd.DataFrame  # sample_id, label, set, lon, lat, masked_fraction (sorted by sample_id)
    dropped: dict[str, int] = field(default_factory=dict)  # masked filter: positives / negatives dropped

    @property
    def counts(self) -> dict[str, Any]:
        """Counts recorded in the run store."""
        return {
            "selected": int(len(self.rows) + sum(self.dropped.values())),
            "kept": int(len(self.rows)),
            "positives": int((self.rows["label"] == 1).sum()),
            "negatives": int((self.rows["label"] == 0).sum()),
            "dropped_masked": dict(self.dropped),
        }


def check_store(store: PatchStore, config: ExperimentConfig) -> None:
    """Raise ``DatasetError`` when the store lacks the config's bands, size or OSM layers."""
    missing = [b for b in config.bands if b not in store.meta.bands]
    if missing:
        raise DatasetError(
            f"store {store.name!r} has bands {list(store.meta.bands)}; the config asks for {missing} too. "
            f"Choose bands from the store (e.g. --bands {','.join(store.meta.bands)}) or another store."
        )
    if int(store.meta.size) != int(config.patch_size):
        raise DatasetError(
            f"store {store.name!r} holds {store.meta.size}-px patches, the config asks for {config.patch_size} px; "
            f"set patch_size={store.meta.size} or pick a {config.patch_size}-px store."
        )
    if config.osm_layers:
        info = store.osm_info()
        have = tuple((info or {}).get("layers", ()))
        lacking = [x for x in config.osm_layers if x not in have]
        if info is None or lacking:
            raise DatasetError(
                f"store {store.name!r} has no OSM masks for {lacking or list(config.osm_layers)} "
                f"(has: {list(have) or 'none'}); run `asgm osm rasterize` on it or drop those layers."
            )


def select_rows(store: PatchStore, config: ExperimentConfig) -> pd.DataFrame:
    """Positives plus the negatives the config names ('curated': every label-0 set but 'random';
    'random': the 'random' set), sorted by sample_id so nothing depends on file order (bug B1)."""
    df = store.index()
    if df.empty:
        raise DatasetError(f"store {store.name!r} is empty; build or fetch its patches first")
    pos = df[df["label"] == 1]
    neg = df[df["label"] == 0]
    neg = neg[neg["set"] == "random"] if config.negatives == "random" else neg[neg["set"] != "random"]
    if pos.empty:
        raise DatasetError(f"store {store.name!r} has no positives (label 1)")
    if neg.empty:
        sets = sorted(df.loc[df["label"] == 0, "set"].unique())
        raise DatasetError(
            f"store {store.name!r} has no {config.negatives} negatives (negative sets present: {sets or 'none'}); "
            f"choose negatives={'curated' if config.negatives == 'random' else 'random'}"
        )
    rows = pd.concat([pos, neg]).sort_values("sample_id").reset_index(drop=True)
    return rows[["sample_id", "label", "set", "lon", "lat", "masked_fraction"]].copy()


def masked_filter(rows: pd.DataFrame, limit_pos: float = 0.10, limit_neg: float = 0.60) -> tuple[pd.DataFrame, dict[str, int]]:
    """The study's ``filter_black``: drop positives with a masked share >= ``limit_pos`` and negatives
    with >= ``limit_neg``. Returns the kept rows and how many of each class were dropped."""
    frac = rows["masked_fraction"].astype(float)
    limit = np.where(rows["label"].to_numpy() == 1, limit_pos, limit_neg)
    drop = frac.to_numpy() >= limit
    dropped = {
        "positives": int((drop & (rows["label"].to_numpy() == 1)).sum()),
        "negatives": int((drop & (rows["label"].to_numpy() == 0)).sum()),
    }
    return rows[~drop].reset_index(drop=True), dropped


def assemble(store: PatchStore, config: ExperimentConfig) -> Assembled:
    """Check the store against the config, select rows and apply the masked-patch filter."""
    check_store(store, config)
    rows, dropped = masked_filter(select_rows(store, config), config.masked_limit_pos, config.masked_limit_neg)
    if (rows["label"] == 1).sum() == 0:
        raise DatasetError(f"every positive of store {store.name!r} was dropped by the masked-patch filter")
    return Assembled(store=store, config=config, rows=rows, dropped=dropped)


def prepare_input(data: np.ndarray, bands: Sequence[str], osm: tuple[np.ndarray, Sequence[str]] | None,
                  config: ExperimentConfig) -> np.ndarray:
    """One model input (H, W, C) float32 from a (bands, H, W) DN array and optional OSM masks."""
    try:
        idx = [list(bands).index(b) for b in config.bands]
    except ValueError:
        raise DatasetError(f"patch has bands {list(bands)}, the model needs {list(config.bands)}") from None
    x = np.clip(np.asarray(data)[idx].astype(np.float32) / DN_SCALE, 0.0, 1.0)
    if config.osm_layers:
        if osm is None:
            raise DatasetError(
                f"the model needs OSM layers {list(config.osm_layers)} but this patch has no OSM masks; "
                "run `asgm osm rasterize` on the store"
            )
        masks, names = osm
        lacking = [x for x in config.osm_layers if x not in names]
        if lacking:
            raise DatasetError(f"OSM masks lack layers {lacking} (have {list(names)}); rerun `asgm osm rasterize`")
        m = np.asarray(masks)[[list(names).index(x) for x in config.osm_layers]]
        # Masks are 0/1 by construction; clip guards against 0/255 encodings.
        x = np.concatenate([x, np.clip(m, 0, 1).astype(np.float32)], axis=0)
    return np.ascontiguousarray(x.transpose(1, 2, 0))


class PatchSource:
    """Loads model inputs by row position, from a compact in-RAM cache or straight from disk."""

    def __init__(self, store: PatchStore, config: ExperimentConfig, sample_ids: Sequence[str],
                 cache_limit_mb: float = DEFAULT_CACHE_LIMIT_MB):
        self.store, self.config = store, config
        self.sample_ids = list(sample_ids)
        size = int(config.patch_size)
        bytes_per = size * size * (2 * len(config.bands) + len(config.osm_layers))
        self.cached = bytes_per * len(self.sample_ids) <= cache_limit_mb * 1e6
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.config.patch_size), int(self.config.patch_size), len(self.config.channels))

    def _compact(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i in self._cache:
            return self._cache[i]
        sid = self.sample_ids[i]
        patch = self.store.read_patch(sid)
        idx = [list(patch.bands).index(b) for b in self.config.bands]
        dn = patch.data[idx]  # uint16, only the bands used
        masks = None
        if self.config.osm_layers:
            osm = self.store.read_osm(sid)
            if osm is None:
                raise DatasetError(f"patch {sid!r} has no OSM masks; rerun `asgm osm rasterize` on {self.store.name!r}")
            arr, names = osm
            lacking = [x for x in self.config.osm_layers if x not in names]
            if lacking:
                raise DatasetError(f"OSM masks of {sid!r} lack layers {lacking}")
            masks = np.clip(arr[[list(names).index(x) for x in self.config.osm_layers]], 0, 1).astype(np.uint8)
        item = (dn, masks)
        if self.cached:
            self._cache[i] = item
        return item

    def load(self, i: int) -> np.ndarray:
        """Model input (H, W, C) float32 of row ``i``."""
        dn, masks = self._compact(i)
        x = np.clip(dn.astype(np.float32) / DN_SCALE, 0.0, 1.0)
        if masks is not None:
            x = np.concatenate([x, masks.astype(np.float32)], axis=0)
        return x.transpose(1, 2, 0)

    def load_batch(self, idx: np.ndarray) -> np.ndarray:
        """Stacked inputs (B, H, W, C) float32 of the given row positions."""
        out = np.empty((len(idx), *self.shape), dtype=np.float32)
        for k, i in enumerate(np.asarray(idx).tolist()):
            out[k] = self.load(int(i))
        return out

    def warm(self) -> None:
        """Fill the compact cache up front (no-op when streaming from disk)."""
        if self.cached:
            for i in range(len(self.sample_ids)):
                self._compact(i)


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """sklearn's 'balanced' weights w_c = n / (2 n_c), computed on the labels given (the training split)."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels).astype(int)
    classes = np.array([0, 1])
    if set(np.unique(labels)) != {0, 1}:
        raise DatasetError("class weighting needs both classes in the training split")
    w = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(v) for c, v in zip(classes, w, strict=True)}


def augmenter(config: ExperimentConfig, n_bands: int, seed: int) -> Any:
    """Keras preprocessing layers for training batches: D4 symmetry (random horizontal and vertical
    flips plus a random transpose = all flips and 90° rotations), optionally a small affine (shift,
    zoom) whose output OSM channels are re-binarised so masks are never blurred (bug B7)."""
    import keras

    layers = [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomFlip("vertical", seed=seed + 1),
    ]
    if config.affine_augment:
        layers += [
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="reflect", seed=seed + 3),
            keras.layers.RandomZoom(0.1, 0.1, fill_mode="reflect", seed=seed + 4),
        ]
    pipe = keras.Sequential(layers, name="augment")
    n_osm = len(config.osm_layers)
    transpose_seed = keras.random.SeedGenerator(seed + 2)

    def apply(x: tf.Tensor) -> tf.Tensor:
        import tensorflow as tf

        # Keras has no 90-degree rotation layer: a per-sample transpose on top of the two independent
        # flips generates all 8 symmetries of the square (rotations by k*90° included), exactly.
        coin = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), seed=transpose_seed) < 0.5
        x = tf.where(coin, tf.transpose(x, [0, 2, 1, 3]), x)
        y = pipe(x, training=True)
        if config.affine_augment and n_osm:
            # Interpolation mixes neighbouring mask pixels: snap the OSM channels back to 0/1.
            y = tf.concat([y[..., :n_bands], tf.cast(y[..., n_bands:] >= 0.5, y.dtype)], axis=-1)
        return y

    return apply


def make_tf_dataset(source: PatchSource, labels: np.ndarray, batch_size: int, *, training: bool = False,
                    seed: int = 7, weights: dict[int, float] | None = None,
                    augment: Any = None) -> tf.data.Dataset:
    """A streaming ``tf.data`` pipeline of (x, y[, sample_weight]) batches.

    Shuffles row positions (reshuffled each epoch, seeded) when ``training``; loads each batch with one
    numpy call (compact cache or disk), converts to float32 there, augments with Keras layers in-graph,
    and prefetches so loading overlaps the previous step."""
    import tensorflow as tf

    labels = np.asarray(labels, dtype=np.float32)
    n = len(labels)
    idx = tf.data.Dataset.from_tensor_slices(np.arange(n, dtype=np.int64))
    if training:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    idx = idx.batch(batch_size)
    shape = source.shape
    label_t = tf.constant(labels)
    w_t = tf.constant([weights.get(0, 1.0), weights.get(1, 1.0)], dtype=tf.float32) if weights else None

    def load(batch_idx: tf.Tensor) -> tuple:
        x = tf.numpy_function(source.load_batch, [batch_idx], tf.float32, stateful=False)
        x.set_shape((None, *shape))
        y = tf.gather(label_t, batch_idx)
        if w_t is not None:
            return x, y, tf.gather(w_t, tf.cast(y, tf.int32))
        return x, y

    ds = idx.map(load, num_parallel_calls=2 if not source.cached else 1, deterministic=True)
    if training and augment is not None:
        if w_t is not None:
            ds = ds.map(lambda x, y, w: (augment(x), y, w), num_parallel_calls=1)
        else:
            ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=1)
    return ds.prefetch(2)
