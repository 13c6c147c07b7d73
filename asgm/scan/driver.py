"""Region scan: slide a trained run's classifier over a Sentinel-2 composite of an area of interest.

An AOI (GeoJSON polygon file, bbox, or a shapely geometry from the app) + a year + a run id give:

    <out>/scan.json            the manifest: AOI, year, run, model checksum, source, scan grid (identity)
    <out>/tiles/r<i>_c<j>.npz  one result per tile, written atomically as it completes (resume)
    <out>/probability.tif      COG, float32, one cell per window (NaN = not scanned)
    <out>/cells.npz            the window-probability grid and the detection mask (for ``diff_scans``)
    <out>/detections.geojson   dissolved detection polygons: area_ha, max_prob, mean_prob, windows, ...
    <out>/summary.json         counts, masked pixels, thresholds, timings, warnings

The scan grid is a 10 m grid in the UTM zone of the AOI's centroid. Windows of the run's patch size
step by ``stride`` (default half a window); window (i, j) covers pixels [i*stride, i*stride + size).
Each window is represented by its central stride x stride *cell*, so the cells tile the plane, the
probability raster has one cell per window, and overlapping windows are never counted twice in areas.

Tiles are blocks of ``tile_windows`` x ``tile_windows`` windows read with the overlap the windows
need, so memory is bounded by the tile size, not the area. Tiles run in this process or as tasks of a
Dask ``distributed`` client (a ``LocalCluster`` or a real scheduler): the model file travels to the
workers as bytes, so workers need no shared folder for it (a mosaic path must be readable by them).

Windows whose share of masked pixels (band mean < ``asgm.store.MASKED_DN``) exceeds ``max_masked``
are not scored; masked pixels inside the AOI are counted and reported.

Dual threshold (as Earth Genome's Amazon Mining Watch): a window is a detection when its probability
is >= ``high``, or >= ``low`` and it touches (8-neighbour on the window grid, i.e. overlaps) a window
>= ``high``. Both thresholds are recorded in the outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from asgm import atomic
from asgm.cluster import dask_client
from asgm.config import ExperimentConfig
from asgm.errors import AsgmError
from asgm.grid import RESOLUTION_M, PatchGrid, utm_epsg

log = logging.getLogger(__name__)

#: Largest AOI a scan accepts by default (km²): 50 x 50 km, about 43,000 windows at 48 px / 24.
DEFAULT_MAX_AREA_KM2 = 2500.0
DEFAULT_TILE_WINDOWS = 32
DEFAULT_BATCH = 256
#: Windows with more masked pixels than this share are not scored (the study dropped positives > 10 %).
DEFAULT_MAX_MASKED = 0.10
MANIFEST_VERSION = 1

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class ScanError(AsgmError):
    """A scan that cannot run as asked; the message says what to do."""


class AoiError(ScanError):
    """The area of interest is unusable (empty, invalid, outside the imagery, too large)."""


class ScanCancelled(ScanError):
    """The scan was cancelled; the tiles done so far are kept and a rerun resumes."""


# -- areas of interest ---------------------------------------------------------------------------
def load_aoi(value: Any) -> Any:
    """A shapely geometry in lon/lat from a geometry, a (west, south, east, north) bbox, a
    ``"w,s,e,n"`` string, or the path of a GeoJSON file (FeatureCollection, Feature or geometry)."""
    from shapely.geometry.base import BaseGeometry

    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return _bbox(*value)
    text = str(value).strip()
    parts = text.split(",")
    if len(parts) == 4 and not Path(text).exists():
        try:
            return _bbox(*(float(p) for p in parts))
        except ValueError:
            pass
    path = Path(text).expanduser()
    if not path.is_file():
        raise AoiError(f"{text!r} is neither a GeoJSON file nor a bbox 'west,south,east,north' in degrees")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AoiError(f"{path} is not readable GeoJSON ({type(exc).__name__}: {exc}); export the area as GeoJSON") from None
    return aoi_from_geojson(raw, str(path))


def aoi_from_geojson(raw: Any, where: str = "the area") -> Any:
    """A shapely geometry from parsed GeoJSON (FeatureCollection, Feature or geometry; several features are
    merged), e.g. the Map page's drawn shapes; ``where`` names the input in the ``AoiError``."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    try:
        feats = raw.get("features") if raw.get("type") == "FeatureCollection" else [raw]
        geoms = [shape(f["geometry"] if f.get("type") == "Feature" else f) for f in feats if f]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AoiError(f"{where} is not readable GeoJSON ({type(exc).__name__}: {exc}); export the area as GeoJSON") from None
    if not geoms:
        raise AoiError(f"{where} holds no geometry; draw or export a polygon")
    return unary_union(geoms) if len(geoms) > 1 else geoms[0]


def _bbox(w: float, s: float, e: float, n: float) -> Any:
    from shapely.geometry import box

    if not (w < e and s < n):
        raise AoiError(f"bbox {w},{s},{e},{n} is empty: give west,south,east,north with west < east and south < north")
    return box(w, s, e, n)


def check_aoi(geom: Any, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> tuple[Any, float]:
    """Validate an AOI in lon/lat; returns it (polygonal part) and its area in km². Raises ``AoiError``."""
    from shapely.validation import explain_validity

    if geom is None or geom.is_empty:
        raise AoiError("the area of interest is empty; draw or give a polygon")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise AoiError(f"the area of interest is a {geom.geom_type}; a scan needs a Polygon or MultiPolygon")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise AoiError(f"the area's coordinates {geom.bounds} are not lon/lat degrees; give it in EPSG:4326 (lon, lat)")
    if not geom.is_valid:
        raise AoiError(f"the area of interest is not a valid polygon ({explain_validity(geom)}); fix it, e.g. remove "
                       "the self-intersection in a GIS, and try again")
    if e - w > 6:
        raise AoiError(f"the area spans {e - w:.1f}° of longitude; scans are limited to one UTM zone (6°)")
    epsg = utm_epsg(*geom.centroid.coords[0])
    area = _to_utm(geom, epsg).area / 1e6
    if area <= 0:
        raise AoiError("the area of interest has no area; draw a polygon, not a line")
    if area > max_area_km2:
        raise AoiError(f"the area is {area:,.0f} km², over the limit of {max_area_km2:,.0f} km²; split it or raise "
                       "the limit (--max-area-km2)")
    return geom, float(area)


def _to_utm(geom: Any, epsg: int) -> Any:
    from pyproj import Transformer
    from shapely.ops import transform

    return transform(Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform, geom)


# -- the scan grid -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanGrid:
    """Windows of ``window`` px every ``stride`` px on a 10 m UTM grid; (x0, y0) is window (0, 0)'s corner."""

    epsg: int
    x0: float
    y0: float
    window: int
    stride: int
    ny: int
    nx: int
    tile_windows: int

    @property
    def offset(self) -> int:
        """Pixels from a window's corner to its central cell."""
        return (self.window - self.stride) // 2

    @property
    def cell_transform(self) -> Affine:
        """Transform of the window-probability raster (one stride x stride cell per window)."""
        r, o = RESOLUTION_M, self.offset
        return Affine(self.stride * r, 0.0, self.x0 + o * r, 0.0, -self.stride * r, self.y0 - o * r)

    @property
    def tiles(self) -> list[tuple[int, int]]:
        k = self.tile_windows
        return [(ti, tj) for ti in range(math.ceil(self.ny / k)) for tj in range(math.ceil(self.nx / k))]

    def tile_slices(self, ti: int, tj: int) -> tuple[slice, slice]:
        """The tile's block of the window grid."""
        k = self.tile_windows
        return slice(ti * k, min(self.ny, (ti + 1) * k)), slice(tj * k, min(self.nx, (tj + 1) * k))

    def pixel_grid(self, i: int, j: int, size: int) -> PatchGrid:
        """The ``size`` px square pixel grid whose corner is window (i, j)'s corner."""
        r = RESOLUTION_M
        return PatchGrid(self.epsg, Affine(r, 0.0, self.x0 + j * self.stride * r, 0.0, -r,
                                           self.y0 - i * self.stride * r), size)

    def tile_grid(self, ti: int, tj: int) -> PatchGrid:
        """The square pixel grid a tile reads: its windows plus the overlap they need."""
        k = self.tile_windows
        return self.pixel_grid(ti * k, tj * k, k * self.stride + self.window - self.stride)

    def window_grid(self, i: int, j: int) -> PatchGrid:
        """The pixel grid of window (i, j): what the model scored there."""
        return self.pixel_grid(i, j, self.window)


def make_grid(aoi_utm: Any, epsg: int, window: int, stride: int, tile_windows: int) -> ScanGrid:
    """The scan grid whose cells cover the AOI's bounds (cell corners on the 10 m grid)."""
    if not 1 <= stride <= window:
        raise ScanError(f"stride {stride} must be between 1 and the window size {window} px")
    if tile_windows < 1:
        raise ScanError("tile_windows must be at least 1")
    r = RESOLUTION_M
    w, s, e, n = aoi_utm.bounds
    cx0, cy0 = math.floor(w / r) * r, math.ceil(n / r) * r
    cell = stride * r
    nx, ny = max(1, math.ceil((e - cx0) / cell)), max(1, math.ceil((cy0 - s) / cell))
    off = (window - stride) // 2
    return ScanGrid(epsg, cx0 - off * r, cy0 + off * r, window, stride, ny, nx, tile_windows)


def cells_in_aoi(grid: ScanGrid, aoi_utm: Any) -> np.ndarray:
    """(ny, nx) bool: cells touching the AOI (their windows are scanned)."""
    from rasterio.features import rasterize

    return rasterize([(aoi_utm, 1)], out_shape=(grid.ny, grid.nx), transform=grid.cell_transform, fill=0,
                     dtype="uint8", all_touched=True).astype(bool)


# -- the model on workers ------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A run's model file as bytes (so Dask workers need no shared models folder) and its config."""

    sha256: str
    data: bytes
    config_json: str
    #: The run's fitted temperature (``asgm.inference.run_temperature``): scan probabilities are the run's
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
    batch size, through the one inference path (``asgm.inference.recipe_probabilities``: test-time D4
    averaging when the run uses it, the run's temperature)."""
    key = f"{spec.sha256}:{spec.temperature}"
    with _forward_lock:
        if key in _forward_cache:
            return _forward_cache[key]
        from asgm.inference import CompiledModel, recipe_probabilities
        from asgm.runs import load_keras_model

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
        np.savez(buf, prob=self.prob, counts=np.array([self.ti, self.tj, self.windows_aoi, self.windows_scored,
                                                       self.windows_masked, self.pixels_aoi, self.pixels_masked]),
                 seconds=np.array([self.seconds]))
        return buf.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> TileResult:
        with np.load(path, allow_pickle=False) as z:
            ti, tj, w_aoi, w_scored, w_masked, px_aoi, px_masked = (int(v) for v in z["counts"])
            return cls(ti, tj, z["prob"].astype(np.float32), w_aoi, w_scored, w_masked, px_aoi, px_masked,
                       float(z["seconds"][0]))


def window_masked_share(masked: np.ndarray, window: int, stride: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) share of masked pixels in each window, from an integral image (no per-window loop)."""
    ii = np.zeros((masked.shape[0] + 1, masked.shape[1] + 1), dtype=np.int64)
    ii[1:, 1:] = masked.astype(np.int64).cumsum(0).cumsum(1)
    r = np.arange(rows) * stride
    c = np.arange(cols) * stride
    total = (ii[np.ix_(r + window, c + window)] - ii[np.ix_(r, c + window)] - ii[np.ix_(r + window, c)]
             + ii[np.ix_(r, c)])
    return total / float(window * window)


def window_batches(x: np.ndarray, window: int, stride: int, ii: np.ndarray, jj: np.ndarray,
                   batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
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


def score_tile(job: TileJob, dn: np.ndarray | None, bands: Sequence[str], model: ModelSpec,
               max_masked: float = DEFAULT_MAX_MASKED, batch_size: int = DEFAULT_BATCH,
               cancel: Cancel | None = None) -> TileResult:
    """Mask, count and score the windows of one tile already read (``read_tile``) in batches."""
    from rasterio.features import rasterize
    from shapely import wkb

    from asgm.dataset import prepare_input
    from asgm.store import MASKED_DN

    t0 = time.monotonic()
    config = model.config
    w, s, stride = config.patch_size, job.grid.size, job.stride
    prob = np.full((job.rows, job.cols), np.nan, dtype=np.float32)
    n_aoi = int(job.cells.sum())
    if n_aoi == 0 or dn is None:
        return TileResult(job.ti, job.tj, prob, 0, 0, 0, 0, 0, time.monotonic() - t0)
    # The store's rule (asgm.store.masked_fraction); float32 sums of uint16 bands are exact, so this equals
    # the mean of a float32 copy without making one.
    masked = dn.mean(axis=0, dtype=np.float32) < MASKED_DN
    # Masked pixels are counted inside the AOI and the tile's own cells (overlaps belong to neighbours).
    off = (w - stride) // 2
    core = (slice(off, off + job.rows * stride), slice(off, off + job.cols * stride))
    inside = rasterize([(wkb.loads(job.aoi_wkb), 1)], out_shape=(s, s), transform=job.grid.transform, fill=0,
                       dtype="uint8").astype(bool)[core]
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
    return TileResult(job.ti, job.tj, prob, n_aoi, int(todo.sum()), n_masked, pixels_aoi, pixels_masked,
                      round(time.monotonic() - t0, 3))


def scan_tile(job: TileJob, composite: Any, model: ModelSpec, max_masked: float = DEFAULT_MAX_MASKED,
              batch_size: int = DEFAULT_BATCH, cancel: Cancel | None = None) -> TileResult:
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


# -- the run -------------------------------------------------------------------------------------
@dataclass
class RunModel:
    """A completed run as the scan uses it."""

    run_id: str
    config: ExperimentConfig
    threshold: float | None
    product_level: str | None
    spec: ModelSpec


def load_run(run_id: str) -> RunModel:
    """The run's config, tuned threshold, training product level and model bytes (``ScanError`` if unusable)."""
    from asgm import runs
    from asgm.store import PatchStore

    info = runs.get_run(run_id)
    if info.status != "completed" or info.config is None:
        raise ScanError(f"run {run_id!r} is {info.status}; scan with a completed run (`asgm runs list`)")
    config = info.config
    if config.osm_layers:
        raise ScanError(f"run {run_id!r} uses OSM layers {list(config.osm_layers)}; region scans feed imagery only, "
                        "so pick a run trained on bands alone")
    path = info.path / "model.keras"
    if not path.is_file():
        raise ScanError(f"run {run_id!r} has no model.keras; retrain it with `asgm train`")
    threshold = (info.metrics or {}).get("threshold")
    level = None
    try:
        level = PatchStore.open(config.store).meta.product_level
    except AsgmError:
        pass  # the training store may be gone; then no product-level warning
    from asgm.inference import run_temperature

    return RunModel(run_id, config, None if threshold is None else float(threshold), level,
                    ModelSpec.from_file(path, config, run_temperature(info.metrics)))


def thresholds(run: RunModel, high: float | None, low: float | None) -> dict[str, Any]:
    """The dual threshold: ``high`` defaults to the run's validation-tuned threshold (0.5 without one),
    ``low`` to 0.6 x high."""
    high_from = "given" if high is not None else ("run threshold (validation F1)" if run.threshold is not None else
                                                  "default 0.5 (the run has no tuned threshold)")
    hi = float(high if high is not None else (run.threshold if run.threshold is not None else 0.5))
    lo = float(low if low is not None else round(0.6 * hi, 4))
    if not 0.0 < lo <= hi <= 1.0:
        raise ScanError(f"thresholds must satisfy 0 < low <= high <= 1 (got low={lo}, high={hi})")
    return {"high": hi, "low": lo, "high_from": high_from, "low_from": "given" if low is not None else "0.6 x high",
            "rule": "window prob >= high, or >= low when it touches (8-neighbour) a window >= high"}


# -- driver --------------------------------------------------------------------------------------
def _tile_path(out: Path, ti: int, tj: int) -> Path:
    return out / "tiles" / f"r{ti:04d}_c{tj:04d}.npz"


@dataclass
class ScanPlan:
    """A checked scan request: the AOI, the run, the thresholds, the composite and the scan grid."""

    geom: Any
    area_km2: float
    run: RunModel
    thresholds: dict[str, Any]
    composite: Any
    aoi_utm: Any
    grid: ScanGrid
    cells: np.ndarray  # (ny, nx) bool: windows in the AOI

    @property
    def windows(self) -> int:
        """Windows the scan will score (at most: masked ones are skipped)."""
        return int(self.cells.sum())


def plan(aoi: Any, year: int, run_id: str, *, source: Any, stac_url: str | None = None, stride: int | None = None,
         high: float | None = None, low: float | None = None, tile_windows: int = DEFAULT_TILE_WINDOWS,
         max_masked: float = DEFAULT_MAX_MASKED, max_area_km2: float = DEFAULT_MAX_AREA_KM2,
         check_coverage: bool = True) -> ScanPlan:
    """Every check ``scan`` makes before it writes anything (AOI, run, thresholds, source, bands, coverage),
    without writing; raises ``AoiError`` / ``ScanError`` / the source's error. ``check_coverage=False`` skips
    the imagery-coverage check, the one that contacts STAC / Earth Engine (an app checking a request
    before it starts the scan as a job)."""
    from asgm.sources.composite import open_composite

    geom, area_km2 = check_aoi(load_aoi(aoi), max_area_km2)
    run = load_run(run_id)
    cfg = run.config
    stride = cfg.patch_size // 2 if stride is None else int(stride)
    thr = thresholds(run, high, low)
    if not 0.0 <= max_masked <= 1.0:
        raise ScanError(f"max_masked {max_masked} must be a share between 0 and 1")
    composite = open_composite(source, year, stac_url)
    lacking = [b for b in cfg.bands if b not in composite.bands]
    if lacking:
        raise ScanError(f"the composite has bands {list(composite.bands)}; run {run_id!r} needs {list(cfg.bands)}")
    epsg = utm_epsg(*geom.centroid.coords[0])
    aoi_utm = _to_utm(geom, epsg)
    grid = make_grid(aoi_utm, epsg, cfg.patch_size, stride, tile_windows)
    cells = cells_in_aoi(grid, aoi_utm)
    whole = PatchGrid(epsg, Affine(RESOLUTION_M, 0, grid.x0, 0, -RESOLUTION_M, grid.y0),
                      max(grid.nx, grid.ny) * stride + cfg.patch_size)
    if check_coverage and not composite.covers(geom, whole):
        raise AoiError(f"the imagery ({composite.name}) does not reach the area {tuple(round(v, 5) for v in geom.bounds)}; "
                       "check the area (lon, lat order) or the mosaic/year")
    return ScanPlan(geom, area_km2, run, thr, composite, aoi_utm, grid, cells)


def scan(
    aoi: Any, year: int, run_id: str, out_dir: str | Path, *, source: Any, stac_url: str | None = None,
    stride: int | None = None, high: float | None = None, low: float | None = None,
    tile_windows: int = DEFAULT_TILE_WINDOWS, batch_size: int = DEFAULT_BATCH, max_masked: float = DEFAULT_MAX_MASKED,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2, scheduler: Any = None, workers: int = 2, processes: bool = True,
    progress: Progress | None = None, cancel: Cancel | None = None, overwrite: bool = False,
) -> dict[str, Any]:
    """Scan ``aoi`` for ``year`` with run ``run_id`` into ``out_dir``; returns the summary (also summary.json).

    ``source``: a mosaic path, ``"stac"``, ``"gee"`` or a composite object (``asgm.sources.composite``).
    ``scheduler``: None (this process), ``"local"`` (LocalCluster of ``workers``), an address, or a Client.
    ``progress(done_tiles, total_tiles)`` is called as tiles complete; ``cancel()`` returning True stops
    the scan (``ScanCancelled``) keeping finished tiles, so the same call resumes. Bad AOIs, runs or
    sources raise before anything is written."""
    from shapely import wkb
    from shapely.geometry import mapping

    from asgm.sources.common import product_level_warning

    t0 = time.monotonic()
    pl = plan(aoi, year, run_id, source=source, stac_url=stac_url, stride=stride, high=high, low=low,
              tile_windows=tile_windows, max_masked=max_masked, max_area_km2=max_area_km2)
    geom, area_km2, run, thr, composite = pl.geom, pl.area_km2, pl.run, pl.thresholds, pl.composite
    aoi_utm, grid, cells, stride = pl.aoi_utm, pl.grid, pl.cells, pl.grid.stride
    identity = {
        "version": MANIFEST_VERSION, "aoi": mapping(geom), "year": int(year), "run_id": run_id,
        "model_sha256": run.spec.sha256, "source": composite.describe(), "grid": asdict(grid), "max_masked": max_masked,
    }
    out = Path(out_dir)
    manifest_path = out / "scan.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if json.loads(json.dumps(identity, default=str)) != old.get("identity"):
            if not overwrite:
                raise ScanError(f"{out} holds another scan (different area, year, run, source or grid); use another "
                                "output folder or --overwrite")
            import shutil

            shutil.rmtree(out / "tiles", ignore_errors=True)
    atomic.write_json(manifest_path, {"identity": identity, "synthetic": composite.synthetic,
                                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    aoi_wkb = wkb.dumps(aoi_utm)
    jobs, results = [], {}
    for ti, tj in grid.tiles:
        rs, cs = grid.tile_slices(ti, tj)
        if not cells[rs, cs].any():
            continue
        path = _tile_path(out, ti, tj)
        if path.exists():
            try:
                results[(ti, tj)] = TileResult.from_file(path)
                continue
            except (OSError, ValueError, KeyError):
                log.warning("tile result %s is unreadable; scanning that tile again", path)
        jobs.append(TileJob(ti, tj, grid.tile_grid(ti, tj), rs.stop - rs.start, cs.stop - cs.start, stride,
                            cells[rs, cs], aoi_wkb))
    total, resumed = len(jobs) + len(results), len(results)
    done = [resumed]
    if progress:
        progress(resumed, total)

    def save(r: TileResult) -> None:
        atomic.write_bytes(_tile_path(out, r.ti, r.tj), r.to_bytes())
        results[(r.ti, r.tj)] = r
        done[0] += 1
        if progress:
            progress(done[0], total)

    t_tiles = time.monotonic()
    try:
        with dask_client(scheduler, workers, processes) as client:
            if client is None:
                for job, dn in read_ahead(jobs, composite):
                    if cancel is not None and cancel():
                        raise ScanCancelled("scan cancelled")
                    save(score_tile(job, dn, composite.bands, run.spec, max_masked, batch_size, cancel))
            else:
                _run_dask(client, jobs, composite, run.spec, max_masked, batch_size, save, cancel)
    except ScanCancelled:
        raise ScanCancelled(f"scan cancelled after {done[0]} of {total} tiles; run the same scan again to resume") from None
    except AsgmError as exc:
        raise type(exc)(f"{exc} [{done[0]} of {total} tiles saved in {out}; run the same scan again to resume]") from exc
    tile_seconds = time.monotonic() - t_tiles
    summary = finalize(out, grid, results, thr, composite.synthetic)
    new_windows = sum(results[(j.ti, j.tj)].windows_scored for j in jobs)
    warnings = [w for w in [product_level_warning(run.product_level, composite.product_level or None)] if w]
    tagged = str(composite.describe().get("date_start") or "")
    if tagged[:4].isdigit() and tagged[:4] != str(year):
        warnings.append(f"the imagery says it is a {tagged[:4]} composite but was scanned as {year}; check --year "
                        "before comparing years")
    summary.update({
        "run_id": run_id, "year": int(year), "source": composite.describe(), "aoi_area_km2": round(area_km2, 3),
        "tiles": total, "tiles_resumed": resumed, "tile_seconds": round(tile_seconds, 3),
        "windows_per_s": round(new_windows / tile_seconds, 1) if jobs and tile_seconds > 0 else None,
        "scheduler": None if scheduler is None else (scheduler if isinstance(scheduler, str) else "client"),
        "seconds": round(time.monotonic() - t0, 3), "warnings": warnings,
    })
    atomic.write_json(out / "summary.json", summary)
    return summary


def _run_dask(client: Any, jobs: Sequence[TileJob], composite: Any, spec: ModelSpec, max_masked: float,
              batch_size: int, save: Callable[[TileResult], None], cancel: Cancel | None) -> None:
    """Tiles as tasks of ``client``; results are saved as they arrive, a cancel drops what is pending."""
    from distributed import as_completed

    if not jobs:
        return
    spec_f = client.scatter(spec, broadcast=True, hash=False)
    token = os.urandom(4).hex()
    futures = [client.submit(scan_tile, job, composite, spec_f, max_masked, batch_size,
                             key=f"asgm-scan-{token}-{job.ti}-{job.tj}") for job in jobs]
    try:
        for fut in as_completed(futures):
            if cancel is not None and cancel():
                raise ScanCancelled("scan cancelled")
            save(fut.result())
            fut.release()
    finally:
        client.cancel(futures)
        del spec_f


# -- outputs -------------------------------------------------------------------------------------
def dual_threshold(prob: np.ndarray, high: float, low: float) -> tuple[np.ndarray, np.ndarray]:
    """(detected, confirmed) masks: >= high, plus >= low windows touching a >= high window."""
    from scipy import ndimage

    p = np.nan_to_num(prob, nan=-1.0)
    confirmed = p >= high
    near = ndimage.binary_dilation(confirmed, structure=np.ones((3, 3), bool))
    return confirmed | (near & (p >= low)), confirmed


def polygons(mask: np.ndarray, prob: np.ndarray, confirmed: np.ndarray | None, transform: Affine, epsg: int) -> Any:
    """Dissolved polygons of 8-connected ``mask`` cells with area (ha), max/mean probability and counts (EPSG:4326)."""
    import geopandas as gpd
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import shape
    from shapely.ops import unary_union

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    cols = ["id", "area_ha", "max_prob", "mean_prob", "windows", "confirmed_windows", "centroid_lon", "centroid_lat"]
    if n == 0:
        return gpd.GeoDataFrame(columns=[*cols, "geometry"], geometry="geometry", crs="EPSG:4326")
    parts: dict[int, list[Any]] = {}
    for geom, value in shapes(labels.astype(np.int32), mask=mask, transform=transform, connectivity=8):
        parts.setdefault(int(value), []).append(shape(geom))
    idx = np.arange(1, n + 1)
    p = np.nan_to_num(prob, nan=0.0)
    geoms = [unary_union(parts[i]) for i in idx]
    conf = np.zeros(n) if confirmed is None else ndimage.sum(confirmed, labels, idx)
    gdf = gpd.GeoDataFrame({
        "area_ha": [round(g.area / 1e4, 4) for g in geoms],
        "max_prob": np.round(ndimage.maximum(p, labels, idx), 4),
        "mean_prob": np.round(ndimage.mean(p, labels, idx), 4),
        "windows": np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(int),
        "confirmed_windows": np.asarray(conf).astype(int),
    }, geometry=geoms, crs=f"EPSG:{epsg}").to_crs("EPSG:4326")
    cent = gdf.geometry.to_crs(f"EPSG:{epsg}").centroid.to_crs("EPSG:4326")
    gdf["centroid_lon"], gdf["centroid_lat"] = cent.x.round(6), cent.y.round(6)
    gdf = gdf.sort_values(["max_prob", "area_ha"], ascending=False).reset_index(drop=True)
    gdf.insert(0, "id", [f"det-{k + 1:04d}" for k in range(len(gdf))])
    return gdf


def write_geojson(path: Path, gdf: Any, members: dict[str, Any]) -> None:
    """RFC 7946 GeoJSON (lon/lat) with the scan's settings as a foreign member ``asgm``."""
    fc = json.loads(gdf.to_json(drop_id=True)) if len(gdf) else {"type": "FeatureCollection", "features": []}
    fc["asgm"] = members
    atomic.write_text(path, json.dumps(fc) + "\n")


def write_cog(path: Path, arr: np.ndarray, transform: Affine, epsg: int, tags: dict[str, str]) -> None:
    """A float32 single-band COG (NaN = no data), written atomically."""
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype="float32",
                      crs=f"EPSG:{epsg}", transform=transform, nodata=float("nan")) as dst:
            dst.write(arr.astype(np.float32), 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, "probability of mining")
        with mem.open() as src, atomic.atomic_path(path, suffix=".tif") as tmp:
            rio_copy(src, str(tmp), driver="COG", compress="DEFLATE", blocksize=256)


def finalize(out: Path, grid: ScanGrid, results: dict[tuple[int, int], TileResult], thr: dict[str, Any],
             synthetic: bool) -> dict[str, Any]:
    """Assemble the tiles, apply the dual threshold and write probability.tif, cells.npz, detections.geojson."""
    prob = np.full((grid.ny, grid.nx), np.nan, dtype=np.float32)
    for (ti, tj), r in results.items():
        rs, cs = grid.tile_slices(ti, tj)
        prob[rs, cs] = r.prob
    detected, confirmed = dual_threshold(prob, thr["high"], thr["low"])
    gdf = polygons(detected, prob, confirmed, grid.cell_transform, grid.epsg)
    label = "SYNTHETIC imagery (not a real place)" if synthetic else ""
    tags = {"high_threshold": str(thr["high"]), "low_threshold": str(thr["low"]), "window_px": str(grid.window),
            "stride_px": str(grid.stride), "synthetic": str(synthetic).lower(), "note": label}
    write_cog(out / "probability.tif", prob, grid.cell_transform, grid.epsg, tags)
    buf = io.BytesIO()
    np.savez_compressed(buf, prob=prob, detected=detected, confirmed=confirmed)
    atomic.write_bytes(out / "cells.npz", buf.getvalue())
    write_geojson(out / "detections.geojson", gdf, {"thresholds": thr, "synthetic": synthetic, "note": label,
                                                    "window_px": grid.window, "stride_px": grid.stride})
    counts = {k: sum(getattr(r, k) for r in results.values())
              for k in ("windows_aoi", "windows_scored", "windows_masked", "pixels_aoi", "pixels_masked")}
    return {
        "synthetic": synthetic, "thresholds": thr,
        "grid": {"epsg": grid.epsg, "window_px": grid.window, "stride_px": grid.stride, "windows_x": grid.nx,
                 "windows_y": grid.ny, "tile_windows": grid.tile_windows},
        **counts,
        "masked_pixel_fraction": round(counts["pixels_masked"] / counts["pixels_aoi"], 6) if counts["pixels_aoi"] else None,
        "detections": len(gdf), "detected_area_ha": round(float(gdf["area_ha"].sum()), 3) if len(gdf) else 0.0,
        "files": {k: str(out / f) for k, f in (("probability", "probability.tif"), ("detections", "detections.geojson"),
                                                 ("cells", "cells.npz"), ("summary", "summary.json"))},
    }


# -- change over time ----------------------------------------------------------------------------
def diff_scans(a: str | Path, b: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """New / gone / persistent detections between two finished scans of the same area and grid (years
    ``a`` -> ``b``), with areas in ha; cells not scanned in one of the years count as ``unknown``.
    With ``out``, writes ``change.geojson`` and ``change.json`` there."""
    import pandas as pd

    scans = []
    for d in (Path(a), Path(b)):
        try:
            ident = json.loads((d / "scan.json").read_text(encoding="utf-8"))["identity"]
            with np.load(d / "cells.npz", allow_pickle=False) as z:
                cells = {k: z[k] for k in ("prob", "detected")}
        except (OSError, ValueError, KeyError) as exc:
            raise ScanError(f"{d} is not a finished scan ({type(exc).__name__}: {exc}); run `asgm scan run` into it first") from None
        scans.append((ident, cells))
    (ia, ca), (ib, cb) = scans
    if ia["grid"] != ib["grid"]:
        raise ScanError("the two scans use different grids (area, window or stride); scan both years with the same "
                        "area and run")
    grid = ScanGrid(**ia["grid"])
    both = np.isfinite(ca["prob"]) & np.isfinite(cb["prob"])
    da, db = ca["detected"], cb["detected"]
    classes = {"new": (db & ~da & both, cb["prob"]), "gone": (da & ~db & both, ca["prob"]),
               "persistent": (da & db, np.fmax(ca["prob"], cb["prob"])), "unknown": ((da | db) & ~both, np.fmax(ca["prob"], cb["prob"]))}
    frames, areas = [], {}
    cell_ha = (grid.stride * RESOLUTION_M) ** 2 / 1e4
    for name, (mask, prob) in classes.items():
        gdf = polygons(mask, prob, None, grid.cell_transform, grid.epsg).drop(columns=["confirmed_windows"])
        gdf.insert(1, "change", name)
        frames.append(gdf)
        areas[f"{name}_ha"] = round(float(mask.sum()) * cell_ha, 3)
        areas[f"{name}_count"] = len(gdf)
    import geopandas as gpd

    allg = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    synthetic = bool(ia["source"].get("synthetic") or ib["source"].get("synthetic"))
    report: dict[str, Any] = {"a": str(a), "b": str(b), "year_a": ia["year"], "year_b": ib["year"], **areas,
                              "synthetic": synthetic}
    if out is not None:
        out = Path(out)
        write_geojson(out / "change.geojson", allg, {"year_a": ia["year"], "year_b": ib["year"], "synthetic": synthetic})
        atomic.write_json(out / "change.json", report)
        report["files"] = {"change": str(out / "change.geojson"), "report": str(out / "change.json")}
    return report
