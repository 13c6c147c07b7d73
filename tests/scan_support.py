"""A completed run whose model is the study's CNN with fixed weights: a bare-soil detector for the
SYNTHETIC spectra, so region-scan tests and benchmarks run without training and give the same result
every time.

The network is ``asgm.model.cnn.build_model(48, 12)``; only channel 0 of each layer is used:
conv1_1 averages (3x3) the sum of the red-edge..SWIR reflectances (B4-B8, B11, B12) minus 2.15, which
is > 0 for synthetic bare soil (2.26) and < 0 for every other class (fields 1.99, sandbars 1.98); the
later convs pass channel 0 on (centre tap 1), the pools keep its maximum, dense1 sums the 4 x 4 maxima
and the output is sigmoid(4 * sum - 2): ~0.12 without bare soil, ~0.9 with a pit in the window.
Synthetic mosaics have bare soil only at mine sites, so detections must land on the known mines.
"""

from __future__ import annotations

import numpy as np

from asgm import atomic
from asgm.config import S2_BANDS, ExperimentConfig
from asgm.model.cnn import build_model
from asgm.model.runs import create_run, now

SOIL_BANDS = ("B4", "B5", "B6", "B7", "B8A", "B8", "B11", "B12")


def detector_model(size: int = 48):
    """The fixed-weight CNN (see module docstring)."""
    model = build_model(size, len(S2_BANDS))
    g = 10.0
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        w, b = np.zeros_like(weights[0]), np.zeros_like(weights[1])
        if layer.name == "conv1_1":
            for band in SOIL_BANDS:
                w[:, :, S2_BANDS.index(band), 0] = g / 9.0
            b[0] = -g * 2.15
        elif layer.name.startswith("conv"):
            w[1, 1, 0, 0] = 1.0
        elif layer.name == "dense1":
            w[np.arange(0, w.shape[0], 32), 0] = 1.0  # channel 0 of every flattened 4 x 4 position
        elif layer.name in ("dense2", "dense3"):
            w[0, 0] = 1.0
        elif layer.name == "output":
            w[0, 0], b[0] = 4.0, -2.0
        layer.set_weights([w, b])
    return model


def detector_run(run_id: str = "20260101-000000-scan-detector", size: int = 48, threshold: float = 0.5) -> str:
    """A completed run folder (in ``ASGM_MODELS_DIR``) holding the detector; returns its id."""
    config = ExperimentConfig(
        name="fixed-weight bare-soil detector (tests)", store="synthetic", bands=S2_BANDS, patch_size=size, epochs=1
    )
    folder = create_run(config, run_id, status="running")
    with atomic.atomic_path(folder.model_path) as tmp:
        detector_model(size).save(tmp)
    folder.write_json("metrics.json", {"threshold": threshold, "f1": None, "note": "fixed weights, not trained"})
    folder.set_status("completed", finished=now(), error=None)
    return run_id
