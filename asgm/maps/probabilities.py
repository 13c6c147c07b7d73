"""A run's probability of mining for every patch of a store, in one batched pass (the map's colours).

``asgm.model.inference.predict_store`` in its tolerant form (a bad file costs its own row, not the map),
in the store's sample_id order and with the map's column names, so the map's colours, popups and the
side panel show the same numbers as ``asgm predict`` and ``asgm.model.inference.classify``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from asgm.data.store import PatchStore
from asgm.model.inference import predict_store

#: Patches per forward pass: small enough that TensorFlow's buffers for the activations stay small (64 x 48 x
#: 48 x 32 float32 per conv output is ~19 MB; 256 would keep ~4x that resident in the app).
BATCH_SIZE = 64
COLUMNS = ["sample_id", "label", "prob", "decision", "error"]


def store_probabilities(
    run_id: str, store: PatchStore | str, model: Any = None, batch_size: int = BATCH_SIZE
) -> pd.DataFrame:
    """Probability, decision (``prob >= threshold``) and true label of every patch of ``store`` under run
    ``run_id``; one row per patch, in the store's sample_id order.

    A patch that cannot be read (missing or corrupt file, missing OSM masks) gets ``prob`` NaN, decision
    -1 and its reason in ``error``; the others are still scored. A run that cannot classify the store at
    all raises ``InferenceError`` saying what to do. ``frame.attrs`` holds ``threshold`` and ``run_id``."""
    store = PatchStore.open(store) if isinstance(store, str) else store
    ids = sorted(store.index()["sample_id"].astype(str))
    frame = predict_store(run_id, store, sample_ids=ids, batch_size=batch_size, model=model, tolerant=True)
    out = frame.rename(columns={"probability": "prob"}).reindex(columns=COLUMNS)
    out.attrs.update(frame.attrs)
    return out
