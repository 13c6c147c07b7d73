"""What the Earth Engine and STAC sources share, so it is written once.

- the date range (end exclusive, as Earth Engine's ``filterDate``) and its STAC form;
- the patch footprint in lon/lat and as an Earth Engine ``grid`` (exact 10 m UTM, ``asgm.grid``);
- the one pixel format of the store: uint16 DN = reflectance x 10000, 0 = masked;
- the per-pixel median over a stack of masked observations;
- retries (``asgm.net``) ending in the sources' own quota and network errors;
- the fetch driver: resumable (stored patches are skipped), bounded concurrency, progress,
  per-point failures reported, systemic failures (credentials, network) stop the run;
- ``product_level_warning`` for applying a model to a store of another processing level.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from asgm import net
from asgm.data.store import DN_SCALE, Patch, PatchStore, PatchStoreError, StoreMeta, list_stores
from asgm.errors import AsgmError
from asgm.grid import PatchGrid
from asgm.net import QuotaError, TransientError

log = logging.getLogger(__name__)

#: The study's composite year. Earth Engine's end date is exclusive; the study passed 2021-12-31 and so
#: left out 31 December. We default to the whole year.
DEFAULT_START = "2021-01-01"
DEFAULT_END = "2022-01-01"
#: The study's Cloud Score+ threshold (``cs_cdf >= 0.75`` is clear).
DEFAULT_CLEAR_THRESHOLD = 0.75

T = TypeVar("T")


# -- errors --------------------------------------------------------------------------------------
class SourceError(AsgmError):
    """A Sentinel-2 acquisition problem a user can fix; the message says what to do (a USER_ERROR)."""


class SourceAuthError(SourceError):
    """No usable credentials."""


class SourceProjectError(SourceError):
    """The Cloud project is missing or not registered for Earth Engine."""


class SourceQuotaError(SourceError):
    """Quota or rate limit still exceeded after retrying."""


class SourceNetworkError(SourceError):
    """The service cannot be reached."""


class PointError(SourceError):
    """A problem with one point only (the run goes on with the others)."""


class NoSceneError(PointError):
    """No Sentinel-2 scene covers the point in the date range."""


class CloudyCompositeError(PointError):
    """Every observation of the patch was masked (clouds, shadows, no data)."""


# -- dates ---------------------------------------------------------------------------------------
def parse_date_range(start: str | date | None, end: str | date | None) -> tuple[str, str]:
    """Validate a [start, end) date range; returns ISO dates. ``None`` means the study's year."""
    out = []
    for name, value, default in (("start", start, DEFAULT_START), ("end", end, DEFAULT_END)):
        value = default if value in (None, "") else value
        try:
            out.append(value if isinstance(value, date) else date.fromisoformat(str(value)))
        except ValueError:
            raise SourceError(f"--{name} {value!r} is not a date; use YYYY-MM-DD (e.g. 2021-01-01)") from None
    d0, d1 = out
    if d1 <= d0:
        raise SourceError(f"the date range is empty: end {d1} must be after start {d0} (the end date is exclusive)")
    if d0 < date(2015, 6, 23):
        raise SourceError(f"start {d0} is before Sentinel-2A's launch (2015-06-23); choose a later date")
    return d0.isoformat(), d1.isoformat()


def stac_datetime(start: str, end: str) -> str:
    """STAC ``datetime`` interval for [start, end): STAC intervals are inclusive, so stop 1 s early."""
    last = datetime.fromisoformat(end) - timedelta(seconds=1)
    return f"{start}T00:00:00Z/{last.strftime('%Y-%m-%dT%H:%M:%SZ')}"


# -- grids ---------------------------------------------------------------------------------------
def lonlat_bounds(grid: PatchGrid) -> tuple[float, float, float, float]:
    """(west, south, east, north) in lon/lat enclosing the patch (densified edges)."""
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))


def ee_grid(grid: PatchGrid) -> dict[str, Any]:
    """The ``grid`` of an Earth Engine ``computePixels`` request for this patch (PixelGrid)."""
    t = grid.transform
    return {
        "dimensions": {"width": grid.size, "height": grid.size},
        "affineTransform": {
            "scaleX": t.a,
            "shearX": t.b,
            "translateX": t.c,
            "shearY": t.d,
            "scaleY": t.e,
            "translateY": t.f,
        },
        "crsCode": grid.crs,
    }


# -- pixels --------------------------------------------------------------------------------------
def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance (NaN = masked) -> store DN: uint16 reflectance x 10000, 0 = masked.

    Valid pixels are clipped to at least 1 DN: Level-2A can be slightly negative over dark water,
    and 0 must keep meaning "no data".
    """
    refl = np.asarray(reflectance, dtype=np.float64)
    valid = np.isfinite(refl)
    dn = np.zeros(refl.shape, dtype=np.uint16)
    dn[valid] = np.clip(np.rint(refl[valid] * DN_SCALE), 1, 65535).astype(np.uint16)
    return dn


def median_composite(stack: np.ndarray) -> np.ndarray:
    """Per-pixel median over axis 0 of a uint16 DN stack where 0 = masked; all-masked pixels -> 0."""
    stack = np.asarray(stack)
    if stack.ndim < 3 or stack.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, ..., H, W) stack, got shape {stack.shape}")
    values = stack.astype(np.float32)
    values[stack == 0] = np.nan
    with np.errstate(all="ignore"), _quiet_all_nan():
        med = np.nanmedian(values, axis=0)
    return reflectance_to_dn(med / DN_SCALE)


class _quiet_all_nan:
    """Silence numpy's 'All-NaN slice' warning: all-masked pixels are expected (and become 0)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice encountered")

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def point_patch(source: Any, sample_id: str, label: int, set_name: str, lon: float, lat: float) -> Patch:
    """The patch centred on (lon, lat) from a source with ``composite_dn(grid, where)`` (STAC, Earth Engine)."""
    from asgm.config import S2_BANDS
    from asgm.grid import patch_grid

    grid = patch_grid(lon, lat, source.size)
    data = source.composite_dn(grid, f"{sample_id} ({lon:.5f}, {lat:.5f})")
    return Patch(
        sample_id=sample_id,
        label=label,
        set=set_name,
        lon=lon,
        lat=lat,
        grid=grid,
        data=data,
        bands=S2_BANDS,
        source=source.name,
        date_start=source.start,
        date_end=source.end,
        product_level=source.product_level,
    )


# -- retries -------------------------------------------------------------------------------------
def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    what: str = "request",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``asgm.net.retry`` for the Sentinel-2 sources: after ``attempts`` tries the last error becomes
    ``SourceQuotaError`` / ``SourceNetworkError`` with the fix."""

    def give_up(exc: TransientError, tries: int) -> SourceError:
        if isinstance(exc, QuotaError):
            return SourceQuotaError(
                f"{what}: quota or rate limit still exceeded after {tries} tries ({exc}). "
                "Run again later, lower --workers, "
                "or raise the project's Earth Engine quota in the Google Cloud console."
            )
        return SourceNetworkError(
            f"{what}: still failing after {tries} tries ({exc}). The service may be down or the "
            "connection unstable; run the same command again later to resume."
        )

    return net.retry(
        fn, attempts=attempts, base_delay=base_delay, max_delay=max_delay, what=what, give_up=give_up, sleep=sleep
    )


# -- stores --------------------------------------------------------------------------------------
#: StoreMeta fields that must match when fetching more patches into an existing store.
_COMPATIBLE = ("source", "size", "product_level", "date_start", "date_end")


def open_or_create_store(meta: StoreMeta, compare_extra: Sequence[str] = ()) -> PatchStore:
    """Open the store ``meta.name`` if it exists and holds the same kind of patches, else create it."""
    if meta.name not in list_stores():
        return PatchStore.create(meta)
    store = PatchStore.open(meta.name)
    old = store.meta
    diffs = [
        f"{k}={getattr(old, k)!r} (asked {getattr(meta, k)!r})"
        for k in _COMPATIBLE
        if getattr(old, k) != getattr(meta, k)
    ]
    diffs += [
        f"{k}={old.extra.get(k)!r} (asked {meta.extra.get(k)!r})"
        for k in compare_extra
        if old.extra.get(k) != meta.extra.get(k)
    ]
    if tuple(old.bands) != tuple(meta.bands):
        diffs.append(f"bands={list(old.bands)}")
    if diffs:
        raise PatchStoreError(
            f"patch store {meta.name!r} already holds different patches: {', '.join(diffs)}. "
            "Use another --store name (or delete the store folder) to fetch with these settings."
        )
    return store


def store_meta(source: Any, name: str | None = None) -> StoreMeta:
    """The metadata of a store of ``source``'s Sentinel-2 patches (default name ``<source>-<size>``)."""
    from asgm.config import REFLECTANCE, S2_BANDS

    return StoreMeta(
        name=name or f"{source.name}-{source.size}",
        source=source.name,
        bands=S2_BANDS,
        size=source.size,
        product_level=source.product_level,
        date_start=source.start,
        date_end=source.end,
        description=f"Sentinel-2 {source.product_level} median composites from {source.name}",
        credits=tuple(source.credits),
        extra=source.store_extra(),
        encoding=REFLECTANCE.model_dump(),
    )


def fetch_to_store(
    source: Any,
    points: Sequence[str] | pd.DataFrame,
    store_name: str | None = None,
    *,
    workers: int = 4,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Fetch the patches of ``points`` (point set names, or labelled points as ``asgm.data.points`` reads them) with
    ``source`` into its store (created, or reopened if it holds the same kind of patches; resumable).
    Credentials, project and network are checked before anything is created.
    Returns the fetch report with the store's folder and product level."""
    from asgm.data.points import load_points

    if not isinstance(points, pd.DataFrame):
        points = load_points(list(points))
    meta = store_meta(source, store_name)
    try:
        source.connect()
    except SourceError as exc:  # the source says what failed; what a fetch keeps is the fetch's to say
        raise type(exc)(f"{exc} Patches already in the store are kept.") from exc
    store = open_or_create_store(meta, compare_extra=source.compare_extra)
    report = fetch_points(source, points, store, workers=workers, limit=limit, progress=progress)
    out = report.as_dict()
    out["store_root"] = str(store.root)
    out["product_level"] = source.product_level
    return out


# -- the fetch driver ----------------------------------------------------------------------------
class PointSource(Protocol):
    """What the driver needs from a source: fetch one point into a Patch (or raise)."""

    name: str

    def fetch(self, sample_id: str, label: int, set_name: str, lon: float, lat: float) -> Patch: ...


@dataclass
class FetchReport:
    """Outcome of a fetch run (the CLI's ``--json`` report)."""

    store: str
    source: str
    requested: int = 0
    skipped: int = 0  # already in the store (resume)
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sample_id -> message
    failed_type: dict[str, str] = field(default_factory=dict)  # sample_id -> the error's class (NoSceneError, ...)
    masked_fraction: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["written_count"] = len(self.written)
        d["failed_count"] = len(self.failed)
        return d


def fetch_points(
    source: PointSource,
    points: Any,
    store: PatchStore,
    *,
    workers: int = 4,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> FetchReport:
    """Fetch every point not yet in ``store`` with at most ``workers`` requests in flight.

    ``points`` has columns sample_id, label, set, lon, lat (``asgm.data.points.load_points``). Patches are
    written as they complete, each keyed by its sample_id (never by completion order, bug B1). A
    ``PointError`` is recorded and the run goes on; any other ``SourceError`` cancels what is queued,
    lets requests in flight finish and be written, and is re-raised. ``progress(done, total)`` is
    called after each point; setting ``stop`` ends the run early (e.g. a UI cancel button).
    """
    t0 = time.monotonic()
    rows = points.sort_values("sample_id") if limit is None else points.head(limit).sort_values("sample_id")
    rows = rows.reset_index(drop=True)
    report = FetchReport(store=store.name, source=source.name, requested=len(rows))
    have = set(store.index()["sample_id"])
    todo = [
        r for r in rows.itertuples(index=False) if r.sample_id not in have or not store.patch_path(r.sample_id).exists()
    ]
    report.skipped = len(rows) - len(todo)
    total = len(todo)
    if progress:
        progress(0, total)
    if not todo:
        report.seconds = round(time.monotonic() - t0, 3)
        return report

    def one(r: Any) -> Patch:
        return source.fetch(str(r.sample_id), int(r.label), str(r.set), float(r.lon), float(r.lat))

    fatal: BaseException | None = None
    done = 0
    queue = list(todo)
    in_flight: dict[Future[Patch], Any] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"asgm-{source.name}") as pool:
        try:
            while queue or in_flight:
                # Keep at most `workers` requests queued so a fatal error or a stop wastes nothing.
                while queue and len(in_flight) < max(1, workers) and fatal is None and not (stop and stop.is_set()):
                    r = queue.pop(0)
                    in_flight[pool.submit(one, r)] = r
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    r = in_flight.pop(fut)
                    try:
                        patch = fut.result()
                    except PointError as exc:
                        report.failed[str(r.sample_id)] = str(exc)
                        report.failed_type[str(r.sample_id)] = type(exc).__name__
                    except SourceError as exc:
                        fatal = fatal or exc
                        report.failed[str(r.sample_id)] = str(exc)
                        report.failed_type[str(r.sample_id)] = type(exc).__name__
                    else:
                        store.write_patch(patch)
                        report.written.append(patch.sample_id)
                        report.masked_fraction[patch.sample_id] = round(patch.masked_fraction, 6)
                    done += 1
                    if progress:
                        progress(done, total)
                if fatal is not None:
                    queue.clear()
        except BaseException as exc:  # KeyboardInterrupt included: drop the queue, keep what is written
            queue.clear()
            for fut in in_flight:
                fut.cancel()
            fatal = fatal or exc
    report.written.sort()
    report.seconds = round(time.monotonic() - t0, 3)
    if fatal is not None:
        if isinstance(fatal, SourceError):
            raise type(fatal)(
                f"{fatal} [{len(report.written)} patch(es) written before stopping; run the same command again to resume]"  # noqa: E501
            ) from fatal
        raise fatal
    return report


# -- product levels ------------------------------------------------------------------------------
_LEVEL_NAMES = {
    "L1C": "Level-1C top-of-atmosphere reflectance (the study's product, from Earth Engine)",
    "L2A": "Level-2A surface reflectance (atmospherically corrected, from STAC)",
}


def product_level_warning(model_level: str | None, store_level: str | None) -> str | None:
    """A warning when a model trained on one Sentinel-2 product level is applied to another, else None.

    Level-2A surface reflectance differs from Level-1C top-of-atmosphere reflectance (most in the
    coastal/blue bands, least in the SWIR), so scores of a model applied across levels are not
    calibrated. Unknown (empty) levels give no warning.
    """
    if not model_level or not store_level or model_level == store_level:
        return None
    m = _LEVEL_NAMES.get(model_level, model_level)
    s = _LEVEL_NAMES.get(store_level, store_level)
    return (
        f"This model was trained on {m} but these patches are {s}. Reflectances differ between processing "
        "levels, so its scores and threshold may be off; treat results with caution, or use a model trained "
        f"on {store_level} patches (or fetch {model_level} patches for these points)."
    )
