"""Inference for training's scoring, the CLI (``asgm predict``) and the app: inputs, the run's full
recipe (test-time D4 averaging, temperature), batched store prediction, OSM layer ablation (Grad-CAM:
``asgm.model.explain``).

The input recipe is ``asgm.model.inputs.prepare_input`` (the one used in training), so app and training
cannot drift apart. Keras/TensorFlow are imported inside the functions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from asgm.config import ExperimentConfig
from asgm.data.store import Patch, PatchStore
from asgm.errors import AsgmError
from asgm.model.inputs import DatasetError, validate_pixels
from asgm.model.inputs import prepare_input as _prepare

if TYPE_CHECKING:
    import pandas as pd

    from asgm.model.runs import RunInfo
    from asgm.model.spatial_prior import SpatialPrior

#: Loaded models kept by ``classify`` (bounded: each 256-px model holds ~4 MB of weights plus graphs).
MODEL_CACHE_SIZE = 4
_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()


class InferenceError(AsgmError):
    """A patch or model that cannot be used as asked; the message says what to do."""


def prepare_input(patch: Patch, osm: tuple[np.ndarray, Sequence[str]] | None, config: ExperimentConfig) -> np.ndarray:
    """(H, W, C) float32 model input: config bands /10000 clipped to [0, 1], then OSM channels in
    ``config.osm_layers`` order. Missing bands or OSM layers raise ``DatasetError``."""
    if patch.data.shape[1] != config.patch_size or patch.data.shape[2] != config.patch_size:
        raise DatasetError(
            f"patch {patch.sample_id!r}: {patch.data.shape[2]}x{patch.data.shape[1]} px, the model takes "
            f"{config.patch_size}x{config.patch_size} px; re-fetch or rebuild it (`asgm patches check` lists every "
            "such file)"
        )
    validate_pixels(patch.sample_id, patch.data)
    return _prepare(patch.data, patch.bands, osm, config)


def _zero(x: np.ndarray, zero_layers: Sequence[str], config: ExperimentConfig | None) -> np.ndarray:
    if not zero_layers:
        return x
    if config is None:
        raise InferenceError("zero_layers needs the run config to know which channel holds which layer")
    unknown = [z for z in zero_layers if z not in config.osm_layers]
    if unknown:
        raise InferenceError(f"the model has no OSM layer(s) {unknown}; its layers are {list(config.osm_layers)}")
    x = np.array(x, dtype=np.float32, copy=True)
    for z in zero_layers:
        x[..., len(config.bands) + config.osm_layers.index(z)] = 0.0
    return x


#: Batches read ahead (and threads reading them) while the model predicts (``source_logits``).
READ_AHEAD = 4
#: The 8 symmetries of the square as (transpose, flip rows, flip cols) on (B, H, W, C) batches.
D4 = tuple((bool(c & 1), bool(c & 4), bool(c & 2)) for c in range(8))


def _d4_batch(x: np.ndarray, code: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, flip_rows, flip_cols = code
    if transpose:
        x = x.transpose(0, 2, 1, 3)
    if flip_rows:
        x = x[:, ::-1]
    if flip_cols:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x)


def recipe_logits(
    model: Any, x: np.ndarray, config: ExperimentConfig | None = None, zero_layers: Sequence[str] = ()
) -> np.ndarray:
    """Logits of a (B, H, W, C) batch under the run's recipe: OSM ``zero_layers`` set to 0, then the
    model's logit averaged over the 8 D4 symmetries when ``config.tta`` (else the plain logit).

    This is the one inference function: training's validation/test scoring, ``asgm predict``, the
    app's click and the patch viewer all go through it (then ``sigmoid(logit / temperature)``)."""
    from asgm.model.calibration import logit

    x = _zero(np.asarray(x, np.float32), zero_layers, config)
    expected = tuple(model.input_shape[1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise InferenceError(f"input of shape {x.shape[1:]} does not fit the model's {expected}")
    views = D4 if config is not None and config.tta else D4[:1]
    # One forward pass per view (not one stacked batch): single-patch callers may hold a model
    # compiled for batch size 1. Direct calls, not model.predict: no tf.data pipeline to build.
    z = [logit(np.asarray(model(_d4_batch(x, v), training=False)).reshape(-1)) for v in views]
    return np.mean(z, axis=0)


def recipe_probabilities(
    model: Any,
    x: np.ndarray,
    config: ExperimentConfig | None = None,
    temperature: float = 1.0,
    zero_layers: Sequence[str] = (),
) -> np.ndarray:
    """Probabilities of mining for a (B, H, W, C) batch: ``sigmoid(recipe_logits / temperature)``."""
    from asgm.model.calibration import sigmoid

    return sigmoid(recipe_logits(model, x, config, zero_layers) / float(temperature))


def predict(
    model: Any,
    x: np.ndarray,
    zero_layers: Sequence[str] = (),
    config: ExperimentConfig | None = None,
    temperature: float = 1.0,
) -> float:
    """Probability of mining for one (H, W, C) input under the run's recipe (``recipe_probabilities``)."""
    x = np.asarray(x, np.float32)
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape) != expected:
        raise InferenceError(f"input of shape {x.shape} does not fit the model's {expected}")
    return float(recipe_probabilities(model, x[None], config, temperature, zero_layers)[0])


def source_logits(
    model: Any,
    source: Any,
    config: ExperimentConfig,
    batch_size: int = 256,
    zero_layers: Sequence[str] = (),
    progress: bool = False,
    errors: list[str] | None = None,
) -> np.ndarray:
    """``recipe_logits`` of every row of a ``asgm.model.inputs.PatchSource``, in order, batched.

    Batches are read by a few threads, up to ``READ_AHEAD`` batches ahead of the model (reading a
    GeoTIFF per patch, not the model, bounds the rate otherwise; rasterio releases the GIL).
    With ``errors`` (a list of one "" per row), a row that cannot be read gets a NaN logit and its
    reason in ``errors[i]`` and the others are still scored; without it the first bad row raises."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    n = len(source.sample_ids)
    out = np.full(n, np.nan, np.float64)
    batches = [np.arange(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]
    load = source.load_batch if errors is None else (lambda idx: _load_tolerant(source, idx, errors))
    with ThreadPoolExecutor(max_workers=READ_AHEAD) as pool:
        pending: deque = deque()
        nxt = 0
        for idx in tqdm(batches, desc="predict", unit="batch", disable=not progress):
            while nxt < len(batches) and len(pending) < READ_AHEAD:
                pending.append(pool.submit(load, batches[nxt]))
                nxt += 1
            rows, x = (idx, pending.popleft().result()) if errors is None else pending.popleft().result()
            if len(rows):
                out[rows] = recipe_logits(model, x, config, zero_layers)
    return out


def _load_tolerant(source: Any, idx: np.ndarray, errors: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The readable rows of ``idx`` and their stacked inputs; each unreadable row's reason goes to ``errors``."""
    from asgm.data.store import PatchStoreError

    try:
        return idx, source.load_batch(idx)
    except (PatchStoreError, DatasetError, OSError, ValueError):
        pass  # one bad file in the batch: read row by row to isolate it
    rows, xs = [], []
    for i in idx.tolist():
        try:
            xs.append(source.load_batch(np.array([i]))[0])
            rows.append(i)
        except (PatchStoreError, DatasetError, OSError, ValueError) as exc:
            errors[i] = str(exc)
    return np.array(rows, dtype=np.int64), (np.stack(xs) if xs else np.empty((0, *source.shape), np.float32))


def run_temperature(metrics: dict[str, Any] | None) -> float:
    """The run's fitted temperature (1.0 when it was trained without calibration)."""
    return float((metrics or {}).get("temperature") or 1.0)


def predict_store(
    run_id: str,
    store: PatchStore | str,
    sample_ids: Sequence[str] | None = None,
    batch_size: int = 256,
    progress: bool = False,
    model: Any = None,
    tolerant: bool = False,
    spatial_prior: SpatialPrior | None = None,
) -> pd.DataFrame:
    """Every patch of ``store`` (or the given ids) through the run's full recipe, batched.

    Returns sample_id, probability, decision (``probability >= threshold``) and, where known, label;
    ``frame.attrs`` holds ``threshold``, ``run_id`` and ``store``. ``model`` is the run's loaded model
    (default: loaded and cached here). ``tolerant`` (the map): a patch that cannot be read gets
    probability NaN, decision -1 and its reason in an ``error`` column, and the others are still
    scored; otherwise the first bad patch raises. A run that cannot classify the store at all (no
    threshold, other bands, patch size or OSM layers) raises ``InferenceError`` saying what to do."""
    import pandas as pd

    from asgm.model import runs
    from asgm.model.calibration import decide, sigmoid
    from asgm.model.inputs import PatchSource, check_store

    info = runs.get_run(run_id)
    threshold = run_threshold(info)
    config = cast(ExperimentConfig, info.config)  # run_threshold refused a run without one
    store = PatchStore.open(store) if isinstance(store, str) else store
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    try:
        check_store(store, config)
    except DatasetError as exc:
        raise InferenceError(f"run {run_id!r} cannot classify store {store.name!r}: {exc}") from exc
    index = store.index()
    if sample_ids is not None:
        missing = sorted(set(sample_ids) - set(index["sample_id"]))
        if missing:
            raise InferenceError(f"store {store.name!r} has no patches {missing[:5]}")
        index = index.set_index("sample_id").loc[list(sample_ids)].reset_index()
    if index.empty and not tolerant:
        raise InferenceError(f"store {store.name!r} has no patches to predict")
    errors = [""] * len(index) if tolerant else None
    prob = np.full(len(index), np.nan)
    if len(index):
        # One pass: caching the inputs would only cost memory.
        source = PatchSource(store, config, index["sample_id"].tolist(), cache_limit_mb=0)
        z = source_logits(
            model if model is not None else _cached_model(run_id),
            source,
            config,
            batch_size,
            progress=progress,
            errors=errors,
        )
        prob = sigmoid(z / run_temperature(info.metrics))
    ok = ~np.isnan(prob)
    decision = np.full(len(index), -1, dtype=np.int64)
    prior_columns: dict[str, np.ndarray] = {}
    if spatial_prior is not None:
        from asgm.model.spatial_prior import apply_prior, lonlat_xyz

        d = apply_prior(lonlat_xyz(index["lon"].to_numpy(float), index["lat"].to_numpy(float)), prob, spatial_prior)
        decision[ok] = d.decision[ok]
        prior_columns = {"isolated": d.isolated.astype(int), "neighbours": d.neighbours}
    elif ok.any():
        decision[ok] = decide(prob[ok], threshold)
    out = pd.DataFrame(
        {
            "sample_id": index["sample_id"].astype(str).to_numpy(),
            "probability": prob,
            "decision": decision,
            **prior_columns,
        }
    )
    if "label" in index:
        out["label"] = index["label"].to_numpy().astype(int)
    if errors is not None:
        out["error"] = errors
    out.attrs.update(threshold=threshold, run_id=run_id, store=store.name)
    if spatial_prior is not None:
        out.attrs["spatial_prior"] = {**spatial_prior.describe(), **d.counts()}
    return out


def _cached_model(run_id: str) -> Any:
    from asgm.model import runs

    with _cache_lock:
        if run_id in _cache:
            _cache.move_to_end(run_id)
            return _cache[run_id]
    model = runs.load_model(run_id)
    with _cache_lock:
        _cache[run_id] = model
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    """Forget the loaded models (e.g. after a run folder was deleted)."""
    with _cache_lock:
        _cache.clear()


def run_threshold(info: RunInfo) -> float:
    """The run's decision threshold; a run without one (not completed) is an ``InferenceError``."""
    if info.config is None or not info.metrics or "threshold" not in info.metrics:
        raise InferenceError(f"run {info.run_id!r} is {info.status} and has no threshold; pick a completed run")
    try:
        value = float(info.metrics["threshold"])
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InferenceError(
            f"run {info.run_id!r} has no valid threshold ({info.metrics['threshold']!r} in "
            f"metrics.json); rerun `asgm evaluate {info.run_id}`"
        )
    return value


def classify(run_id: str, store: PatchStore | str, sample_id: str, zero_layers: Sequence[str] = ()) -> dict[str, Any]:
    """Probability, the run's threshold, decision (``prob >= threshold``) and true label of one patch."""
    from asgm.model import runs

    info = runs.get_run(run_id)
    run_threshold(info)  # before touching the store: a run without a threshold is the problem to report
    store = PatchStore.open(store) if isinstance(store, str) else store
    patch = store.read_patch(sample_id)
    osm = store.read_osm(sample_id) if info.config is not None and info.config.osm_layers else None
    return classify_patch(_cached_model(run_id), info, patch, osm, zero_layers)


def classify_patch(
    model: Any,
    info: RunInfo,
    patch: Patch,
    osm: tuple[np.ndarray, Sequence[str]] | None,
    zero_layers: Sequence[str] = (),
) -> dict[str, Any]:
    """``classify`` for a model and patch already at hand (the app passes its cached ones): ``info`` is
    the run's ``asgm.model.runs.RunInfo``; the decision is ``prob >= threshold``."""
    from asgm.model.calibration import decide

    threshold = run_threshold(info)
    config = cast(ExperimentConfig, info.config)  # run_threshold refused a run without one
    x = prepare_input(patch, osm, config)
    prob = predict(model, x, zero_layers, config, run_temperature(info.metrics))
    return {
        "prob": prob,
        "threshold": threshold,
        "decision": int(decide(np.array([prob]), threshold)[0]),
        "label": int(patch.label),
        "sample_id": patch.sample_id,
    }


class CompiledModel:
    """A Keras model's forward pass compiled once with ``tf.function``: for single patches (``batch=1``,
    the app's click) or batches of any size (``batch=None``, the region scan).

    ``predict`` calls ``model(x, training=False)``: eagerly that costs ~35 ms per patch on 2 CPU cores,
    compiled ~4 ms, same numbers. It quacks like the model for ``recipe_logits`` (``input_shape``,
    ``__call__``); Grad-CAM still gets the real model."""

    def __init__(self, model: Any, batch: int | None = 1):
        import tensorflow as tf

        self.model = model
        self.input_shape = model.input_shape

        def forward(x: Any) -> Any:
            return model(x, training=False)

        spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
        self._forward = tf.function(forward, input_signature=[spec], autograph=False)
        self._tf = tf

    def __call__(self, x: Any, training: bool = False) -> Any:
        return self._forward(self._tf.convert_to_tensor(x, self._tf.float32))


def layer_ablation(model: Any, x: np.ndarray, config: ExperimentConfig, temperature: float = 1.0) -> dict[str, float]:
    """Probability with each OSM layer zeroed in turn (key ``'none'``: nothing zeroed)."""
    out = {"none": predict(model, x, (), config, temperature)}
    for layer in config.osm_layers:
        out[layer] = predict(model, x, (layer,), config, temperature)
    return out


__all__ = [
    "prepare_input",
    "predict",
    "recipe_logits",
    "recipe_probabilities",
    "source_logits",
    "predict_store",
    "run_temperature",
    "classify",
    "classify_patch",
    "run_threshold",
    "CompiledModel",
    "layer_ablation",
    "InferenceError",
    "DatasetError",
    "clear_cache",
]
