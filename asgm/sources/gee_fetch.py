"""Sentinel-2 patches from Google Earth Engine with the study's recipe, on an exact 10 m UTM grid.

Recipe (pipeline spec section 2): ``COPERNICUS/S2_HARMONIZED`` (Level-1C), the 12 bands in the study's
order, Cloud Score+ (``cs_cdf >= clear_threshold``, 0.75 by default), per-pixel median over [start, end).
Fixed here: the collection is filtered to the patch footprint (``filterBounds``) and the pixels come from
``computePixels`` with an explicit ``grid`` (UTM ``crsCode`` + ``affineTransform``), so the centre pixel is
centred on the point (bugs B11, B12); patches are keyed by sample_id (bug B1).

The session (settings, credentials, initialization) is ``asgm.sources.gee``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asgm.config import S2_BANDS
from asgm.data.store import Patch
from asgm.grid import PatchGrid
from asgm.net import QuotaError, TransientError, http_status, is_transport_error, short, transient_for
from asgm.sources.common import (
    DEFAULT_CLEAR_THRESHOLD,
    CloudyCompositeError,
    NoSceneError,
    SourceError,
    ee_grid,
    parse_date_range,
    point_patch,
    retry,
)
from asgm.sources.gee import GeeSettings, classify_init_error, initialize, is_quota

S2_COLLECTION = "COPERNICUS/S2_HARMONIZED"
CLOUD_SCORE_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
CLOUD_SCORE_BAND = "cs_cdf"
PRODUCT_LEVEL = "L1C"

#: Wording of retryable Earth Engine errors, for the rare error without an HTTP status behind it.
_TRANSIENT = (
    "internal error",
    "service unavailable",
    "backend error",
    "timed out",
    "deadline",
    "try again",
    "unavailable",
)


# -- the recipe ----------------------------------------------------------------------------------
def composite(grid: PatchGrid, start: str, end: str, clear_threshold: float = DEFAULT_CLEAR_THRESHOLD) -> Any:
    """The study's composite for one patch as an ``ee.Image`` (12 bands, uint16 DN, 0 = masked)."""
    import ee

    footprint = ee.Geometry.Rectangle(list(grid.bounds), proj=grid.crs, geodesic=False)
    scores = ee.ImageCollection(CLOUD_SCORE_COLLECTION)
    s2 = (
        ee.ImageCollection(S2_COLLECTION)
        .filterBounds(footprint)
        .filterDate(start, end)
        .linkCollection(scores, [CLOUD_SCORE_BAND])
    )
    masked = s2.map(lambda img: img.updateMask(img.select(CLOUD_SCORE_BAND).gte(clear_threshold)))
    # L1C DN are integers; round the median back to them and send uint16 (4x less than float64).
    # Masked pixels become 0 explicitly, the store's no-data value.
    return masked.select(list(S2_BANDS)).median().unmask(0).round().toUint16()


def pixel_request(
    grid: PatchGrid, start: str, end: str, clear_threshold: float = DEFAULT_CLEAR_THRESHOLD
) -> dict[str, Any]:
    """The ``ee.data.computePixels`` parameters for one patch: explicit UTM grid, the 12 bands, NumPy."""
    return {
        "expression": composite(grid, start, end, clear_threshold),
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": list(S2_BANDS),
        "grid": ee_grid(grid),
    }


class GeeSource:
    """Fetch patches from Earth Engine (``fetch`` is safe to call from several threads)."""

    name = "gee"
    product_level = PRODUCT_LEVEL
    credits = (
        "Contains modified Copernicus Sentinel data, processed by Google Earth Engine",
        "Cloud Score+ (Pasquarella et al. 2023)",
    )
    #: ``StoreMeta.extra`` keys that must match to fetch more patches into an existing store.
    compare_extra = ("clear_threshold",)

    def __init__(
        self,
        size: int,
        start: str | None = None,
        end: str | None = None,
        clear_threshold: float = DEFAULT_CLEAR_THRESHOLD,
        settings: GeeSettings | None = None,
        retry_attempts: int = 6,
        retry_base_delay: float = 2.0,
    ):
        if not 0.0 <= clear_threshold <= 1.0:
            raise SourceError(f"--clear-threshold must be between 0 and 1 (the study used 0.75), got {clear_threshold}")
        self.size = int(size)
        self.start, self.end = parse_date_range(start, end)
        self.clear_threshold = float(clear_threshold)
        self.settings = settings
        self.retry_attempts = retry_attempts
        self.retry_base_delay = retry_base_delay

    def connect(self) -> GeeSettings:
        """Initialize Earth Engine (fast failure if offline); call before a batch."""
        self.settings = initialize(self.settings)
        return self.settings

    def store_extra(self) -> dict[str, Any]:
        """What goes into ``StoreMeta.extra`` for a store of this source."""
        return {
            "collection": S2_COLLECTION,
            "cloud_score": f"{CLOUD_SCORE_COLLECTION}:{CLOUD_SCORE_BAND}",
            "clear_threshold": self.clear_threshold,
            "composite": "median",
            "grid": "UTM 10 m, centre pixel on point",
            "date_end_exclusive": True,
        }

    def fetch(self, sample_id: str, label: int, set_name: str, lon: float, lat: float) -> Patch:
        """One patch as a ``Patch`` (DN, study band order); raises ``PointError`` for point problems."""
        return point_patch(self, sample_id, label, set_name, lon, lat)

    def composite_dn(self, grid: PatchGrid, where: str) -> np.ndarray:
        """The Cloud Score+ median composite on any square ``grid`` as (bands, H, W) DN (a patch or a scan tile)."""
        import ee

        self.connect()

        def call() -> Any:
            try:
                return ee.data.computePixels(pixel_request(grid, self.start, self.end, self.clear_threshold))
            except ee.EEException as exc:
                raise self._classify(exc, where) from None
            except Exception as exc:  # transport errors from requests / httplib2 / sockets
                if is_transport_error(exc):
                    raise TransientError(f"{type(exc).__name__}: {short(exc)}") from None
                raise

        arr = retry(call, attempts=self.retry_attempts, base_delay=self.retry_base_delay, what=f"Earth Engine {where}")
        data = pixels_to_bands(arr, grid.size, grid.size)
        if not data.any():
            raise CloudyCompositeError(
                f"{where}: every pixel is masked — no observation between {self.start} and {self.end} (end exclusive) "
                f"passed Cloud Score+ cs_cdf >= {self.clear_threshold}. Widen the date range or lower --clear-threshold."  # noqa: E501
            )
        return data

    def _classify(self, exc: BaseException, where: str) -> Exception:
        """What an Earth Engine error means: no scene, retry (by the HTTP status behind it), or refusal."""
        message = str(exc)
        low = message.lower()
        if "did not match any bands" in low or "no bands" in low or "available bands: []" in low:
            return NoSceneError(
                f"{where}: no Sentinel-2 scene covers this point between {self.start} and {self.end}. "
                "Check the coordinates (lon, lat order) and the date range."
            )
        if (again := transient_for(exc, message)) is not None:
            return again
        if http_status(exc) is None and (is_quota(low) or any(s in low for s in _TRANSIENT)):
            return (QuotaError if is_quota(low) else TransientError)(short(message))
        if "not registered" in low or "permission" in low or "has not been used in project" in low:
            return classify_init_error(message, self.settings.project if self.settings else None)
        return SourceError(f"{where}: Earth Engine refused the request: {short(message)}")


def pixels_to_bands(arr: Any, height: int, width: int, bands: tuple[str, ...] | list[str] = S2_BANDS) -> np.ndarray:
    """computePixels' answer -> (bands, height, width) uint16, in ``bands`` order.

    The service answers a ``"fileFormat": "NPY"`` request with a structured array of shape (height, width),
    one field per band (GDAL's ``autotest/gdrivers/eedai.py`` records that shape); earthengine-api's
    ``NUMPY_NDARRAY`` converter loads it with ``numpy.load``. The field order is the server's: bands are taken
    by name. A plain (height, width, bands) array is accepted too.
    """
    arr = np.asarray(arr)
    if arr.dtype.names:
        missing = [b for b in bands if b not in arr.dtype.names]
        if missing:
            raise SourceError(f"Earth Engine returned bands {list(arr.dtype.names)}; missing {missing}")
        data = np.stack([arr[b] for b in bands])
    elif arr.ndim == 3 and arr.shape[-1] == len(bands):
        data = np.moveaxis(arr, -1, 0)
    else:
        raise SourceError(f"unexpected computePixels result of shape {arr.shape} and dtype {arr.dtype}")
    if data.shape[1:] != (height, width):
        raise SourceError(f"Earth Engine returned {data.shape[1:]} pixels (rows, columns), expected {(height, width)}")
    return np.clip(np.nan_to_num(data.astype(np.float64)), 0, 65535).round().astype(np.uint16)
