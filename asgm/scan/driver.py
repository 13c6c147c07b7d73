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

Windows whose share of masked pixels (band mean < ``asgm.data.store.MASKED_DN``) exceeds ``max_masked``
are not scored; masked pixels inside the AOI are counted and reported.

Dual threshold (as Earth Genome's Amazon Mining Watch): a window is a detection when its probability
is >= ``high``, or >= ``low`` and it touches (8-neighbour on the window grid, i.e. overlaps) a window
>= ``high``. Both thresholds are recorded in the outputs. With a spatial prior
(``asgm.model.spatial_prior``, Earth Genome's July 2026 scan rule) the rule is instead: a window must clear
``t_main``, and an isolated one (no other candidate among its nearest windows within the radius) ``t_iso``;
its settings and how many windows it dropped are in the summary (``spatial_prior``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from asgm import atomic
from asgm.config import REFLECTANCE, ExperimentConfig
from asgm.errors import AsgmError
from asgm.grid import RESOLUTION_M, PatchGrid, utm_epsg
from asgm.jobs.dask_client import dask_client
from asgm.model.spatial_prior import SpatialPrior
from asgm.scan.area import DEFAULT_MAX_AREA_KM2, AoiError, ScanError, _to_utm, check_aoi, load_aoi
from asgm.scan.outputs import finalize
from asgm.scan.tiles import (
    DEFAULT_BATCH,
    DEFAULT_MAX_MASKED,
    DEFAULT_TILE_WINDOWS,
    Cancel,
    ModelSpec,
    Progress,
    ScanCancelled,
    TileJob,
    TileResult,
    read_ahead,
    scan_tile,
    score_tile,
)
from asgm.scan.windows import ScanGrid, cells_in_aoi, make_grid

log = logging.getLogger(__name__)


MANIFEST_VERSION = 1


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
    from asgm.data.store import PatchStore
    from asgm.model import runs

    info = runs.get_run(run_id)
    if info.status != "completed" or info.config is None:
        raise ScanError(f"run {run_id!r} is {info.status}; scan with a completed run (`asgm runs list`)")
    config = info.config
    if config.osm_layers:
        raise ScanError(
            f"run {run_id!r} uses OSM layers {list(config.osm_layers)}; region scans feed imagery only, "
            "so pick a run trained on bands alone"
        )
    path = info.path / "model.keras"
    if not path.is_file():
        raise ScanError(f"run {run_id!r} has no model.keras; retrain it with `asgm train`")
    threshold = (info.metrics or {}).get("threshold")
    level = None
    try:
        level = PatchStore.open(config.store).meta.product_level
    except AsgmError:
        pass  # the training store may be gone; then no product-level warning
    from asgm.model.inference import run_temperature

    return RunModel(
        run_id,
        config,
        None if threshold is None else float(threshold),
        level,
        ModelSpec.from_file(path, config, run_temperature(info.metrics)),
    )


def thresholds(
    run: RunModel, high: float | None, low: float | None, prior: SpatialPrior | None = None
) -> dict[str, Any]:
    """The dual threshold: ``high`` defaults to the run's validation-tuned threshold (0.5 without one),
    ``low`` to 0.6 x high. With a spatial ``prior``: high = its t_iso (what a window needs alone), low = its
    t_main (what a window with a candidate near it needs)."""
    if prior is not None:
        if high is not None or low is not None:
            raise ScanError("give either the high/low thresholds or a spatial prior (its t_main and t_iso), not both")
        return {
            "high": prior.t_iso,
            "low": prior.t_main,
            "high_from": "spatial prior t_iso",
            "low_from": "spatial prior t_main",
            "rule": prior.describe()["rule"],
            "spatial_prior": prior.describe(),
        }
    high_from = (
        "given"
        if high is not None
        else (
            "run threshold (validation F1)"
            if run.threshold is not None
            else "default 0.5 (the run has no tuned threshold)"
        )
    )
    hi = float(high if high is not None else (run.threshold if run.threshold is not None else 0.5))
    lo = float(low if low is not None else round(0.6 * hi, 4))
    if not 0.0 < lo <= hi <= 1.0:
        raise ScanError(f"thresholds must satisfy 0 < low <= high <= 1 (got low={lo}, high={hi})")
    return {
        "high": hi,
        "low": lo,
        "high_from": high_from,
        "low_from": "given" if low is not None else "0.6 x high",
        "rule": "window prob >= high, or >= low when it touches (8-neighbour) a window >= high",
    }


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
    prior: SpatialPrior | None = None

    @property
    def windows(self) -> int:
        """Windows the scan will score (at most: masked ones are skipped)."""
        return int(self.cells.sum())


@dataclass(frozen=True)
class ScanOptions:
    """What a scan reads and how it decides, the same for ``plan`` (the checks) and ``scan`` (the run).

    ``source``: a mosaic path, ``"stac"``, ``"gee"`` or a composite object (``asgm.sources.composite``);
    ``stride`` defaults to half the run's patch size; ``high``/``low`` to the run's thresholds; ``spatial_prior``:
    decide windows with the dual threshold with isolation instead of high/low."""

    source: Any
    stac_url: str | None = None
    stride: int | None = None
    high: float | None = None
    low: float | None = None
    tile_windows: int = DEFAULT_TILE_WINDOWS
    max_masked: float = DEFAULT_MAX_MASKED
    max_area_km2: float = DEFAULT_MAX_AREA_KM2
    spatial_prior: SpatialPrior | None = None


def plan(aoi: Any, year: int, run_id: str, options: ScanOptions, *, check_coverage: bool = True) -> ScanPlan:
    """Every check ``scan`` makes before it writes anything (AOI, run, thresholds, source, bands, coverage),
    without writing; raises ``AoiError`` / ``ScanError`` / the source's error. ``check_coverage=False`` skips
    the imagery-coverage check, the one that contacts STAC / Earth Engine (an app checking a request
    before it starts the scan as a job)."""
    from asgm.sources.composite import open_composite

    o = options
    geom, area_km2 = check_aoi(load_aoi(aoi), o.max_area_km2)
    run = load_run(run_id)
    cfg = run.config
    stride = cfg.patch_size // 2 if o.stride is None else int(o.stride)
    thr = thresholds(run, o.high, o.low, o.spatial_prior)
    if not 0.0 <= o.max_masked <= 1.0:
        raise ScanError(f"max_masked {o.max_masked} must be a share between 0 and 1")
    composite = open_composite(o.source, year, o.stac_url)
    lacking = [b for b in cfg.bands if b not in composite.bands]
    if lacking:
        raise ScanError(f"the composite has bands {list(composite.bands)}; run {run_id!r} needs {list(cfg.bands)}")
    epsg = utm_epsg(*geom.centroid.coords[0])
    aoi_utm = _to_utm(geom, epsg)
    grid = make_grid(aoi_utm, epsg, cfg.patch_size, stride, o.tile_windows)
    cells = cells_in_aoi(grid, aoi_utm)
    whole = PatchGrid(
        epsg,
        Affine(RESOLUTION_M, 0, grid.x0, 0, -RESOLUTION_M, grid.y0),
        max(grid.nx, grid.ny) * stride + cfg.patch_size,
    )
    if check_coverage and not composite.covers(geom, whole):
        raise AoiError(
            f"the imagery ({composite.name}) does not reach the area {tuple(round(v, 5) for v in geom.bounds)}; "
            "check the area (lon, lat order) or the mosaic/year"
        )
    return ScanPlan(geom, area_km2, run, thr, composite, aoi_utm, grid, cells, o.spatial_prior)


def scan(
    aoi: Any,
    year: int,
    run_id: str,
    out_dir: str | Path,
    options: ScanOptions,
    *,
    batch_size: int = DEFAULT_BATCH,
    scheduler: Any = None,
    workers: int = 2,
    processes: bool = True,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Scan ``aoi`` for ``year`` with run ``run_id`` into ``out_dir``; returns the summary (also summary.json).

    ``options``: the source, grid and thresholds (``ScanOptions``, the ones ``plan`` checks).
    ``scheduler``: None (this process), ``"local"`` (LocalCluster of ``workers``), an address, or a Client.
    ``progress(done_tiles, total_tiles)`` is called as tiles complete; ``cancel()`` returning True stops
    the scan (``ScanCancelled``) keeping finished tiles, so the same call resumes. Bad AOIs, runs or sources raise
    before anything is written."""
    from shapely import wkb
    from shapely.geometry import mapping

    from asgm.scan.area import check_out_folder, check_scan_options
    from asgm.sources.common import product_level_warning

    check_scan_options(batch_size, workers, scheduler, options.tile_windows)
    max_masked = options.max_masked
    check_out_folder(out_dir)
    t0 = time.monotonic()
    pl = plan(aoi, year, run_id, options)
    geom, area_km2, run, thr, composite = pl.geom, pl.area_km2, pl.run, pl.thresholds, pl.composite
    aoi_utm, grid, cells, stride = pl.aoi_utm, pl.grid, pl.cells, pl.grid.stride
    identity = {
        "version": MANIFEST_VERSION,
        "aoi": mapping(geom),
        "year": int(year),
        "run_id": run_id,
        "model_sha256": run.spec.sha256,
        "source": composite.describe(),
        "grid": asdict(grid),
        "max_masked": max_masked,
    }
    out = Path(out_dir)
    manifest_path = out / "scan.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if json.loads(json.dumps(identity, default=str)) != old.get("identity"):
            if not overwrite:
                raise ScanError(
                    f"{out} holds another scan (different area, year, run, source or grid); use another "
                    "output folder or --overwrite"
                )
            import shutil

            shutil.rmtree(out / "tiles", ignore_errors=True)
    atomic.write_json(
        manifest_path,
        {
            "identity": identity,
            "synthetic": composite.synthetic,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
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
        jobs.append(
            TileJob(
                ti, tj, grid.tile_grid(ti, tj), rs.stop - rs.start, cs.stop - cs.start, stride, cells[rs, cs], aoi_wkb
            )
        )
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
        raise ScanCancelled(
            f"scan cancelled after {done[0]} of {total} tiles; run the same scan again to resume"
        ) from None
    except AsgmError as exc:
        raise type(exc)(
            f"{exc} [{done[0]} of {total} tiles saved in {out}; run the same scan again to resume]"
        ) from exc
    tile_seconds = time.monotonic() - t_tiles
    summary = finalize(out, grid, results, thr, composite.synthetic, pl.prior)
    new_windows = sum(results[(j.ti, j.tj)].windows_scored for j in jobs)
    warnings = [w for w in [product_level_warning(run.product_level, composite.product_level or None)] if w]
    tagged = str(composite.describe().get("date_start") or "")
    if tagged[:4].isdigit() and tagged[:4] != str(year):
        warnings.append(
            f"the imagery says it is a {tagged[:4]} composite but was scanned as {year}; check --year "
            "before comparing years"
        )
    summary.update(
        {
            "run_id": run_id,
            "year": int(year),
            "source": composite.describe(),
            "aoi_area_km2": round(area_km2, 3),
            "tiles": total,
            "tiles_resumed": resumed,
            "tile_seconds": round(tile_seconds, 3),
            "windows_per_s": round(new_windows / tile_seconds, 1) if jobs and tile_seconds > 0 else None,
            "scheduler": None if scheduler is None else (scheduler if isinstance(scheduler, str) else "client"),
            "seconds": round(time.monotonic() - t0, 3),
            "warnings": warnings,
            # Every window went through asgm.model.inputs.encode_bands in the run's encoding.
            "input_encoding": (run.config.encoding or REFLECTANCE).model_dump(),
        }
    )
    atomic.write_json(out / "summary.json", summary)
    return summary


def _run_dask(
    client: Any,
    jobs: Sequence[TileJob],
    composite: Any,
    spec: ModelSpec,
    max_masked: float,
    batch_size: int,
    save: Callable[[TileResult], None],
    cancel: Cancel | None,
) -> None:
    """Tiles as tasks of ``client``; results are saved as they arrive, a cancel drops what is pending."""
    from distributed import as_completed

    if not jobs:
        return
    spec_f = client.scatter(spec, broadcast=True, hash=False)
    token = os.urandom(4).hex()
    futures = [
        client.submit(
            scan_tile, job, composite, spec_f, max_masked, batch_size, key=f"asgm-scan-{token}-{job.ti}-{job.tj}"
        )
        for job in jobs
    ]
    try:
        for fut in as_completed(futures):
            if cancel is not None and cancel():
                raise ScanCancelled("scan cancelled")
            save(fut.result())
            fut.release()
    finally:
        client.cancel(futures)
        del spec_f
