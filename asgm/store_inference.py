"""A run's probability of mining for every patch of a store, in one batched pass (the map's colours).

One forward pass over batches of the store's patches, with the input recipe of training
(``asgm.dataset.PatchSource``), so the map's colours, popups and the side panel show the same numbers
as ``asgm.inference.classify`` does one patch at a time. TensorFlow is imported only when a model is
loaded here (callers that hold a loaded model pass it in).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd

from asgm.config import ExperimentConfig
from asgm.dataset import DatasetError, PatchSource, check_store
from asgm.inference import InferenceError, recipe_probabilities, run_temperature, run_threshold
from asgm.store import PatchStore, PatchStoreError

#: Patches per forward pass: small enough that TensorFlow's buffers for the activations stay small (64 x 48 x
#: 48 x 32 float32 per conv output is ~19 MB; 256 would keep ~4x that resident in the app).
BATCH_SIZE = 64
COLUMNS = ["sample_id", "label", "prob", "decision", "error"]


def store_probabilities(run_id: str, store: PatchStore | str, model: Any = None,
                        batch_size: int = BATCH_SIZE) -> pd.DataFrame:
    """Probability, decision (``prob >= threshold``) and true label of every patch of ``store`` under run
    ``run_id``; one row per patch, in the store's sample_id order.

    A patch that cannot be read (missing or corrupt file, missing OSM masks) gets ``prob`` NaN and its
    reason in ``error``; the others are still scored. A run that cannot classify the store at all (no
    threshold, other bands, patch size or OSM layers) raises ``InferenceError`` saying what to do.
    ``frame.attrs`` holds ``threshold`` and ``run_id``."""
    from asgm import runs
    from asgm.evaluate import decide

    info = runs.get_run(run_id)
    threshold = run_threshold(info)
    config = cast(ExperimentConfig, info.config)  # run_threshold refused a run without one
    store = PatchStore.open(store) if isinstance(store, str) else store
    try:
        check_store(store, config)
    except DatasetError as exc:
        raise InferenceError(f"run {run_id!r} cannot classify store {store.name!r}: {exc}") from exc
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    index = store.index().sort_values("sample_id", kind="stable").reset_index(drop=True)
    n = len(index)
    prob = np.full(n, np.nan)
    errors = [""] * n
    if n:
        model = model if model is not None else runs.load_model(run_id)
        # One pass: caching the inputs would only cost memory.
        source = PatchSource(store, config, index["sample_id"].tolist(), cache_limit_mb=0)
        for start in range(0, n, batch_size):
            rows, xs = [], []
            for i in range(start, min(n, start + batch_size)):
                try:
                    xs.append(source.load(i))
                    rows.append(i)
                except (PatchStoreError, DatasetError, OSError, ValueError) as exc:  # one bad file, not the map
                    errors[i] = str(exc)
            if rows:
                # The run's full recipe (test-time D4 averaging, temperature), as for a single click.
                prob[rows] = recipe_probabilities(model, np.stack(xs), config, run_temperature(info.metrics))
    ok = ~np.isnan(prob)
    decision = np.full(n, -1, dtype=np.int64)
    if ok.any():
        decision[ok] = decide(prob[ok], threshold)
    frame = pd.DataFrame({"sample_id": index["sample_id"].astype(str), "label": index["label"].astype(int),
                          "prob": prob, "decision": decision, "error": errors}, columns=COLUMNS)
    frame.attrs.update(threshold=threshold, run_id=run_id, store=store.name)
    return frame
