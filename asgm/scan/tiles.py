"""One tile of a scan: the model on workers, windows gathered in batches from one strided view, scored,
and the next tile read while the current one is scored.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asgm.config import ExperimentConfig
from asgm.grid import PatchGrid
from asgm.scan.area import ScanError

DEFAULT_TILE_WINDOWS = 32
DEFAULT_BATCH = 256
#: Windows with more masked pixels than this share are not scored (the study dropped positives > 10 %).
DEFAULT_MAX_MASKED = 0.10

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class ScanCancelled(ScanError):
    """The scan was cancelled; the tiles done so far are kept and a rerun resumes."""


# -- the model on workers ------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A run's model file as bytes (so Dask workers need no shared models folder) and its config."""

    sha256: str
    data: bytes
    config_json: str
    #: The run's fitted temperature (``asgm.model.inference.run_temperature``): scan probabilities are the run's
    #: calibrated ones, on the same scale as its threshold.
    temperature: float = 1.0

    @property
    def config(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate_json(self.config_json)

    @classmethod
    def from_file(cls, path: Path, config: ExperimentConfig, temperature: float = 1.0) -> ModelSpec:
        data = Path(path).read_bytes()
        return cls(hashlib.sha256(data).hexdigest(), data, config.to_json(), float(temperature))


_forward_cache: dict[str, Any] = {}
_forward_lock = threading.Lock()


def forward_fn(spec: ModelSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The run's probabilities for a batch of windows, cached per process: the model compiled once for any
    batch size, through the one inference path (``asgm.model.inference.recipe_probabilities``: test-time D4
    averaging when the run uses it, the run's temperature)."""
    key = f"{spec.sha256}:{spec.temperature}"
    with _forward_lock:
        if key in _forward_cache:
            return _forward_cache[key]
        from asgm.model.inference import CompiledModel, recipe_probabilities
        from asgm.model.runs import load_keras_model

        with tempfile.TemporaryDirectory(prefix="asgm-scan-model-") as tmp:
            path = Path(tmp) / "model.keras"
            path.write_bytes(spec.data)
            model = CompiledModel(load_keras_model(path), batch=None)
        config = spec.config

        def forward(x: np.ndarray) -> np.ndarray:
            return recipe_probabilities(model, x, config, spec.temperature)

        _forward_cache.clear()  # one model per worker at a time: scans run one run
        _forward_cache[key] = forward
        return forward


# -- one tile ------------------------------------------------------------------------------------
@dataclass
class TileJob:
    """What a worker needs for one tile."""

    ti: int
    tj: int
    grid: PatchGrid
    rows: int  # windows in this tile (edge tiles are smaller)
    cols: int
    stride: int
    cells: np.ndarray  # (rows, cols) bool: windows to score (in the AOI)
    aoi_wkb: bytes  # AOI in the scan CRS, for counting masked pixels inside it


@dataclass
class TileResult:
    """Probabilities (NaN = not scored) and counts of one tile."""

    ti: int
    tj: int
    prob: np.ndarray
    windows_aoi: int
    windows_scored: int
    windows_masked: int
    pixels_aoi: int
    pixels_masked: int
    seconds: float

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            prob=self.prob,
            counts=np.array(
                [
                    self.ti,
                    self.tj,
                    self.windows_aoi,
                    self.windows_scored,
                    self.windows_masked,
                    self.pixels_aoi,
                    self.pixels_masked,
                ]
            ),
            seconds=np.array([self.seconds]),
        )
        return buf.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> TileResult:
        with np.load(path, allow_pickle=False) as z:
            ti, tj, w_aoi, w_scored, w_masked, px_aoi, px_masked = (int(v) for v in z["counts"])
            return cls(
                ti,
                tj,
                z["prob"].astype(np.float32),
                w_aoi,
                w_scored,
                w_masked,
                px_aoi,
                px_masked,
                float(z["seconds"][0]),
            )


def window_masked_share(masked: np.ndarray, window: int, stride: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) share of masked pixels in each window, from an integral image (no per-window loop)."""
    ii = np.zeros((masked.shape[0] + 1, masked.shape[1] + 1), dtype=np.int64)
    ii[1:, 1:] = masked.astype(np.int64).cumsum(0).cumsum(1)
    r = np.arange(rows) * stride
    c = np.arange(cols) * stride
    total = (
        ii[np.ix_(r + window, c + window)] - ii[np.ix_(r, c + window)] - ii[np.ix_(r + window, c)] + ii[np.ix_(r, c)]
    )
    return total / float(window * window)


def window_batches(
    x: np.ndarray, window: int, stride: int, ii: np.ndarray, jj: np.ndarray, batch_size: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """(slice into ``ii``/``jj``, contiguous (n, window, window, C) batch) of the windows at grid positions
    (ii, jj) of an (H, W, C) image: one copy per batch, gathered from a strided view (no per-window loop,
    no transposed intermediate)."""
    from numpy.lib.stride_tricks import sliding_window_view

    # (rows, cols, window, window, C) view: window (i, j) is x[i*stride : i*stride+window, j*stride : ...].
    views = sliding_window_view(x, (window, window, x.shape[2]))[::stride, ::stride, 0]
    for b in range(0, len(ii), batch_size):
        sel = slice(b, b + batch_size)
        yield sel, views[ii[sel], jj[sel]]  # advanced indexing: a new C-contiguous array


def read_tile(job: TileJob, composite: Any) -> np.ndarray | None:
    """The tile's DN (bands, H, W), or None when none of its windows is in the AOI (nothing to read)."""
    return composite.read(job.grid) if job.cells.any() else None


def score_tile(
    job: TileJob,
    dn: np.ndarray | None,
    bands: Sequence[str],
    model: ModelSpec,
    max_masked: float = DEFAULT_MAX_MASKED,
    batch_size: int = DEFAULT_BATCH,
    cancel: Cancel | None = None,
) -> TileResult:
    """Mask, count and score the windows of one tile already read (``read_tile``) in batches."""
    from rasterio.features import rasterize
    from shapely import wkb

    from asgm.data.store import MASKED_DN
    from asgm.model.inputs import prepare_input

    t0 = time.monotonic()
    config = model.config
    w, s, stride = config.patch_size, job.grid.size, job.stride
    prob = np.full((job.rows, job.cols), np.nan, dtype=np.float32)
    n_aoi = int(job.cells.sum())
    if n_aoi == 0 or dn is None:
        return TileResult(job.ti, job.tj, prob, 0, 0, 0, 0, 0, time.monotonic() - t0)
    # The store's rule (asgm.data.store.masked_fraction); float32 sums of uint16 bands are exact, so this equals
    # the mean of a float32 copy without making one.
    masked = dn.mean(axis=0, dtype=np.float32) < MASKED_DN
    # Masked pixels are counted inside the AOI and the tile's own cells (overlaps belong to neighbours).
    off = (w - stride) // 2
    core = (slice(off, off + job.rows * stride), slice(off, off + job.cols * stride))
    inside = rasterize(
        [(wkb.loads(job.aoi_wkb), 1)], out_shape=(s, s), transform=job.grid.transform, fill=0, dtype="uint8"
    ).astype(bool)[core]
    pixels_aoi = int(inside.sum())
    pixels_masked = int((masked[core] & inside).sum())
    share = window_masked_share(masked, w, stride, job.rows, job.cols)
    todo = job.cells & (share <= max_masked)
    n_masked = int((job.cells & ~todo).sum())
    if todo.any():
        x = prepare_input(dn, bands, None, config)  # (H, W, C) float32, the training recipe
        del dn
        ii, jj = np.nonzero(todo)
        forward = forward_fn(model)
        out = np.empty(len(ii), dtype=np.float32)
        for sel, batch in window_batches(x, w, stride, ii, jj, batch_size):
            if cancel is not None and cancel():
                raise ScanCancelled("scan cancelled")
            out[sel] = forward(batch)
        prob[ii, jj] = out
    return TileResult(
        job.ti,
        job.tj,
        prob,
        n_aoi,
        int(todo.sum()),
        n_masked,
        pixels_aoi,
        pixels_masked,
        round(time.monotonic() - t0, 3),
    )


def scan_tile(
    job: TileJob,
    composite: Any,
    model: ModelSpec,
    max_masked: float = DEFAULT_MAX_MASKED,
    batch_size: int = DEFAULT_BATCH,
    cancel: Cancel | None = None,
) -> TileResult:
    """Read one tile of the composite and score its windows in batches (a Dask task)."""
    return score_tile(job, read_tile(job, composite), composite.bands, model, max_masked, batch_size, cancel)


def read_ahead(jobs: Sequence[TileJob], composite: Any) -> Iterator[tuple[TileJob, np.ndarray | None]]:
    """(job, its DN) in order, the next tile read in a thread while the caller scores this one: reading is
    single-threaded GDAL (it releases the GIL), so it overlaps the model instead of leaving a core idle.
    Two tiles are in memory at most."""
    from concurrent.futures import ThreadPoolExecutor

    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="asgm-scan-read") as pool:
        pending = pool.submit(read_tile, jobs[0], composite)
        try:
            for k, job in enumerate(jobs):
                dn = pending.result()
                if k + 1 < len(jobs):
                    pending = pool.submit(read_tile, jobs[k + 1], composite)
                yield job, dn
                del dn
        finally:
            pending.cancel()
