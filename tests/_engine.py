"""Helpers for the training-engine tests: tiny patch stores with controlled content.

Stores are written through the real ``PatchStore`` API (GeoTIFFs on exact UTM grids), never mocked.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from asgm.config import S2_BANDS
from asgm.data.store import Patch, PatchStore, StoreMeta
from asgm.grid import patch_grid


def use_folders(mp: Any, root: Path) -> None:
    """Point ``ASGM_DATA_DIR`` and ``ASGM_MODELS_DIR`` at ``root/data`` and ``root/models`` (``mp``: a
    ``pytest.MonkeyPatch``, so they are restored after the test or fixture)."""
    mp.setenv("ASGM_DATA_DIR", str(root / "data"))
    mp.setenv("ASGM_MODELS_DIR", str(root / "models"))


def cli_json(argv: list[str], data_dir: Path) -> dict[str, Any]:
    """Run ``asgm ARGV`` in-process with ``ASGM_DATA_DIR=data_dir`` (restored afterwards, so module-scoped
    fixtures can use it) and return its ``--json`` report; a non-zero exit fails the caller."""
    old = os.environ.get("ASGM_DATA_DIR")
    os.environ["ASGM_DATA_DIR"] = str(data_dir)
    out = io.StringIO()
    try:
        from asgm.cli import main

        with contextlib.redirect_stdout(out):
            code = main(argv)
    finally:
        if old is None:
            os.environ.pop("ASGM_DATA_DIR")
        else:
            os.environ["ASGM_DATA_DIR"] = old
    if code != 0:
        raise AssertionError(f"asgm {' '.join(argv)} exited {code}: {out.getvalue()[-500:]}")
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def toy_store(
    root: Path,
    name: str = "toy",
    n_pos: int = 12,
    n_neg: int = 18,
    n_random: int = 0,
    size: int = 48,
    bands: tuple[str, ...] = S2_BANDS,
    osm: tuple[str, ...] = (),
    seed: int = 0,
    masked: dict[str, float] | None = None,
    origin: tuple[float, float] = (-63.0, 6.0),
) -> PatchStore:
    """A small learnable store: positives carry a bright square (and a 'highway' line when OSM is on),
    negatives are plain. Points are spread ~0.05° apart so DBSCAN at 3 km yields many clusters.
    ``masked`` maps sample_id -> share of pixels set to 0 DN (to exercise the masked-patch filter).
    The points fill a 1° x 1° grid from ``origin`` (lon, lat), by default inside Bolívar."""
    rng = np.random.default_rng(seed)
    store = PatchStore.create(
        StoreMeta(name=name, source="synthetic", bands=bands, size=size, product_level="synthetic", synthetic=True),
        root=root,
        overwrite=True,
    )
    specs = [("pos", 1, "positives")] * n_pos + [("neg", 0, "curated")] * n_neg + [("rnd", 0, "random")] * n_random
    cells = rng.permutation(400)[: len(specs)]
    counters: dict[str, int] = {}
    for (prefix, label, set_name), cell in zip(specs, cells, strict=True):
        k = counters[prefix] = counters.get(prefix, -1) + 1
        sid = f"{prefix}-{k:04d}"
        lon, lat = origin[0] + 0.05 * (cell % 20), origin[1] + 0.05 * (cell // 20)
        data = rng.integers(800, 1600, size=(len(bands), size, size)).astype(np.uint16)
        if label == 1:
            r, c = rng.integers(4, size - 20, 2)
            data[:, r : r + 16, c : c + 16] = 3500
        frac = (masked or {}).get(sid, 0.0)
        if frac:
            flat = data.reshape(len(bands), -1)
            flat[:, : int(round(frac * size * size))] = 0
        store.write_patch(
            Patch(
                sid,
                label,
                set_name,
                lon,
                lat,
                patch_grid(lon, lat, size),
                data,
                bands,
                source="synthetic",
                product_level="synthetic",
            )
        )
        if osm:
            masks = np.zeros((len(osm), size, size), np.uint8)
            for i, layer in enumerate(osm):
                if layer == "highway" and label == 1:
                    masks[i, size // 2, :] = 1
                else:
                    masks[i] = rng.random((size, size)) < 0.02
            store.write_osm(sid, masks, osm)
    if osm:
        store.write_osm_info({"layers": list(osm)})
    return store


def wait_until(pred: Callable[[], Any], timeout: float = 240.0, step: float = 0.5) -> Any:
    """Poll until ``pred()`` is truthy and return it (a deadline against hangs, not a timing assertion)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached before the deadline")


def toy_parent(root: Path) -> str:
    """A toy store ``toy`` (12 mining, 18 not) under ``root/data/stores`` and a run trained 1 epoch on it (the parent
    of the review tests); the data and models folders must point at ``root`` already (``use_folders``)."""
    from asgm.config import ExperimentConfig
    from asgm.training.train import train

    toy_store(root / "data" / "stores", n_pos=12, n_neg=18)
    return train(ExperimentConfig(name="parent", store="toy", bands=S2_BANDS, epochs=1, batch_size=8), n_boot=20)
