"""Sentinel-2 patches from a STAC API (Element84 Earth Search by default): no account needed.

For each point: search the collection for scenes over the patch in [start, end), read only the patch
window of each scene's cloud-optimized GeoTIFFs (HTTP range requests via rasterio), warp every band
onto the patch's exact 10 m UTM grid (20 m and 60 m bands and scenes in a neighbouring UTM zone too),
mask clouds, shadows and no data with the scene classification (SCL), apply each asset's scale and
offset (raster extension) to get reflectance, and take the per-pixel median.

This is Level-2A surface reflectance, not the study's Level-1C: stores record ``product_level="L2A"``
and ``asgm.sources.common.product_level_warning`` flags a model applied across levels.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from asgm.config import S2_BANDS
from asgm.data.store import Patch
from asgm.grid import PatchGrid
from asgm.net import TransientError, http_status, is_transport_error, short, transient_for
from asgm.sources.common import (
    CloudyCompositeError,
    NoSceneError,
    SourceError,
    SourceNetworkError,
    lonlat_bounds,
    median_composite,
    parse_date_range,
    point_patch,
    reflectance_to_dn,
    retry,
    stac_datetime,
)

log = logging.getLogger(__name__)

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
#: Environment variable overriding the STAC API root (the app and the CLI both honour it).
STAC_URL_ENV = "ASGM_STAC_URL"
COLLECTION = "sentinel-2-c1-l2a"
PRODUCT_LEVEL = "L2A"
#: Study band -> Earth Search asset key.
ASSET_KEYS: dict[str, str] = {
    "B1": "coastal",
    "B2": "blue",
    "B3": "green",
    "B4": "red",
    "B5": "rededge1",
    "B6": "rededge2",
    "B7": "rededge3",
    "B8A": "nir08",
    "B8": "nir",
    "B9": "nir09",
    "B11": "swir16",
    "B12": "swir22",
}
SCL_ASSET = "scl"
#: SCL classes masked out: 0 no data, 1 saturated/defective, 3 cloud shadow, 8/9 cloud medium/high
#: probability, 10 thin cirrus. Kept: 2 dark area, 4 vegetation, 5 bare soil, 6 water, 7 unclassified,
#: 11 snow — mining pits and tailings ponds are bare soil and water, which must stay.
SCL_MASKED = (0, 1, 3, 8, 9, 10)
#: Scale and offset when an asset has no raster extension (Level-2A DN -> reflectance).
DEFAULT_SCALE, DEFAULT_OFFSET = 0.0001, 0.0
#: At most this many items are read from one search, whatever the API's ``next`` links say: a patch is
#: covered by a few dozen scenes a year, and an API that ignores the filters would otherwise be paged
#: through without end.
MAX_SEARCH_ITEMS = 500

#: GDAL settings for reading COGs over HTTP: no directory listing, only .tif, a few retries on 429/5xx.
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_TIMEOUT": "30",
    "VSI_CACHE": "TRUE",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}


def stac_url() -> str:
    """The STAC API root to use: ``$ASGM_STAC_URL``, else Earth Search."""
    return (os.environ.get(STAC_URL_ENV) or EARTH_SEARCH_URL).rstrip("/")


@dataclass(frozen=True)
class SceneAsset:
    """One band of one scene: where it is and how its DN become reflectance."""

    href: str
    scale: float
    offset: float
    nodata: float | None
    epsg: int | None  # projection extension (asset's own, else the item's): the CRS the pixels are warped from


def scene_epsg(fields: dict[str, Any]) -> int | None:
    """The EPSG code in STAC projection fields: ``proj:epsg`` (projection v1), or ``proj:code``
    ``"EPSG:<n>"`` (projection v2); None when absent or not an EPSG code."""
    if isinstance(fields.get("proj:epsg"), int):
        return int(fields["proj:epsg"])
    code = fields.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:") and code[5:].isdigit():
        return int(code[5:])
    return None


def footprint_intersects(item: Any, bbox: tuple[float, float, float, float]) -> bool:
    """Whether the item's footprint (its GeoJSON geometry, else its bbox) meets the lon/lat ``bbox``."""
    from shapely.geometry import box, shape

    if item.geometry:
        return bool(shape(item.geometry).intersects(box(*bbox)))
    if item.bbox:
        w, s, e, n = item.bbox[:4] if len(item.bbox) == 4 else (item.bbox[0], item.bbox[1], item.bbox[3], item.bbox[4])
        return bool(box(w, s, e, n).intersects(box(*bbox)))
    return True  # no footprint at all: leave it to the pixels (an all-NaN read is masked out)


def asset_info(item: Any, key: str) -> SceneAsset:
    """Href, scale, offset, nodata (raster extension ``raster:bands``) and EPSG (projection extension) of
    ``item.assets[key]``."""
    if key not in item.assets:
        raise SourceError(
            f"STAC item {item.id} has no asset {key!r}; is the collection Sentinel-2 Level-2A (sentinel-2-c1-l2a)?"
        )
    asset = item.assets[key]
    bands = asset.extra_fields.get("raster:bands") or [{}]
    rb = bands[0] if bands else {}
    return SceneAsset(
        href=asset.get_absolute_href() or asset.href,
        scale=float(rb.get("scale", DEFAULT_SCALE)),
        offset=float(rb.get("offset", DEFAULT_OFFSET)),
        nodata=rb.get("nodata", 0),
        epsg=scene_epsg(asset.extra_fields) or scene_epsg(item.properties),
    )


def read_window(href: str, grid: PatchGrid, resampling: str = "nearest", nodata: float | None = 0) -> np.ndarray:
    """The pixels of ``href`` on ``grid`` (float64, NaN where no data or outside the scene).

    A WarpedVRT onto the patch grid makes GDAL read only the blocks under the patch, resample 20/60 m
    bands onto 10 m, and reproject scenes from a neighbouring UTM zone, all in one step.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(href) as src:
        src_nodata = nodata if nodata is not None else src.nodata
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.size,
            height=grid.size,
            resampling=Resampling[resampling],
            src_nodata=src_nodata,
            nodata=src_nodata,
        ) as vrt:
            data = vrt.read(1, masked=True)
    out = data.astype(np.float64).filled(np.nan)
    return out


class StacSource:
    """Fetch patches from a STAC API (``fetch`` is safe to call from several threads)."""

    name = "stac"
    product_level = PRODUCT_LEVEL
    credits = ("Contains modified Copernicus Sentinel data, via Element84 Earth Search (AWS Open Data)",)
    #: ``StoreMeta.extra`` keys that must match to fetch more patches into an existing store.
    compare_extra = ("collection", "max_scenes")

    def __init__(
        self,
        size: int,
        start: str | None = None,
        end: str | None = None,
        url: str = EARTH_SEARCH_URL,
        collection: str = COLLECTION,
        max_scene_cloud: float = 100.0,
        max_scenes: int | None = 40,
        resampling: str = "nearest",
        retry_attempts: int = 4,
        retry_base_delay: float = 2.0,
        max_search_items: int = MAX_SEARCH_ITEMS,
    ):
        self.size = int(size)
        self.start, self.end = parse_date_range(start, end)
        self.url = url.rstrip("/")
        self.collection = collection
        self.max_scene_cloud = float(max_scene_cloud)
        self.max_scenes = max_scenes
        self.resampling = resampling
        self.retry_attempts = retry_attempts
        self.retry_base_delay = retry_base_delay
        self.max_search_items = int(max_search_items)
        self._client: Any = None

    def store_extra(self) -> dict[str, Any]:
        """What goes into ``StoreMeta.extra`` for a store of this source."""
        return {
            "stac_url": self.url,
            "collection": self.collection,
            "cloud_mask": f"SCL, masked classes {list(SCL_MASKED)}",
            "max_scene_cloud": self.max_scene_cloud,
            "max_scenes": self.max_scenes,
            "composite": "median",
            "resampling": self.resampling,
            "grid": "UTM 10 m, centre pixel on point",
            "date_end_exclusive": True,
            "assets": ASSET_KEYS,
        }

    # -- search ----------------------------------------------------------------------------------
    def connect(self) -> Any:
        """Open the STAC API (fails fast with a clear message when offline or not a STAC API)."""
        if self._client is not None:
            return self._client
        import requests
        from pystac_client import Client
        from pystac_client.exceptions import APIError

        try:
            # A quick reachability check with a short timeout before pystac-client's own requests.
            requests.get(self.url, timeout=5).raise_for_status()
            client = Client.open(self.url, timeout=(5, 60))
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "an HTTP error"
            raise SourceNetworkError(f"{self.url} answered {status}; check --stac-url") from None
        except requests.RequestException as exc:
            raise SourceNetworkError(
                f"cannot reach the STAC API at {self.url} ({type(exc).__name__}). Check your internet connection or "
                "proxy, or pass another --stac-url."
            ) from None
        except (APIError, ValueError) as exc:
            raise SourceError(f"{self.url} is not a usable STAC API ({short(exc)}); check --stac-url") from None
        if not client.conforms_to("ITEM_SEARCH"):
            raise SourceError(
                f"{self.url} is a static STAC catalogue without item search; point --stac-url at a STAC API"
            )
        self._check_collection(client)
        self._client = client
        return client

    def _check_collection(self, client: Any) -> None:
        """Fail before any search when the collection does not exist: a search of an unknown collection is
        an empty success on some APIs, which would read as "no scene covers this point" for every point."""
        from pystac_client.exceptions import APIError

        listed = sorted({link.href.rstrip("/").rsplit("/", 1)[-1] for link in client.get_child_links()})
        if self.collection in listed:
            return  # the landing page names it: no request needed
        if not client.conforms_to("COLLECTIONS"):
            return  # no way to ask; the search will tell
        try:
            found = client.get_collection(self.collection)
        except APIError as exc:
            again = _transient_or_error(exc, f"the request for collection {self.collection!r}")
            if isinstance(again, TransientError):  # connect() is not retried: say so and keep the stored patches
                raise SourceNetworkError(f"{self.url} did not answer ({again}); try again later") from None
            raise again from None
        if found is None:  # pystac-client's answer to a 404
            known = f" It offers: {', '.join(listed)}." if listed else ""
            raise SourceError(
                f"{self.url} has no collection {self.collection!r} (HTTP 404).{known} Pass a collection it has."
            )

    def search(self, grid: PatchGrid) -> list[Any]:
        """Scenes intersecting the patch in [start, end), least cloudy first, at most ``max_scenes``."""
        from pystac_client.exceptions import APIError

        client = self.connect()
        bbox = lonlat_bounds(grid)

        def call() -> list[Any]:
            try:
                return list(
                    client.search(
                        collections=[self.collection],
                        bbox=bbox,
                        datetime=stac_datetime(self.start, self.end),
                        limit=100,
                        max_items=self.max_search_items,  # bounds the paging through ``next`` links
                    ).items()
                )
            except APIError as exc:
                raise _transient_or_error(exc) from None
            except Exception as exc:
                if is_transport_error(exc):
                    raise TransientError(f"{type(exc).__name__}: {short(exc)}") from None
                raise

        items = retry(
            call, attempts=self.retry_attempts, base_delay=self.retry_base_delay, what=f"STAC search {self.url}"
        )
        if len(items) >= self.max_search_items:
            log.warning("STAC search %s: stopped at %d items (max_search_items)", self.url, len(items))
        # Checked here too, not trusted to the API: one that ignores a filter (collection, bbox) would
        # otherwise mix other products (Level-1C, Sentinel-1) or scenes elsewhere into the median.
        items = [it for it in items if it.collection_id == self.collection and footprint_intersects(it, bbox)]
        # Filtered here rather than with the query extension, which not every STAC API offers.
        items = [it for it in items if float(it.properties.get("eo:cloud_cover", 0.0)) <= self.max_scene_cloud]
        items.sort(key=lambda it: (float(it.properties.get("eo:cloud_cover", 0.0)), it.id))
        return items[: self.max_scenes] if self.max_scenes else items

    # -- pixels ----------------------------------------------------------------------------------
    def _read(self, href: str, grid: PatchGrid, nodata: float | None, resampling: str) -> np.ndarray:
        from rasterio.errors import RasterioIOError

        def call() -> np.ndarray:
            try:
                return read_window(href, grid, resampling, nodata)
            except RasterioIOError as exc:
                # GDAL reports the HTTP status only in its message ("HTTP response code: 404").
                if http_status(exc) == 404 or "does not exist" in str(exc).lower():
                    raise SourceError(f"asset {href} is missing on the server ({short(exc)})") from None
                raise transient_for(exc) or TransientError(short(exc)) from None

        return retry(call, attempts=self.retry_attempts, base_delay=self.retry_base_delay, what=f"reading {href}")

    def scene_dn(self, item: Any, grid: PatchGrid) -> np.ndarray | None:
        """One scene on the patch grid as (bands, H, W) DN with clouds/shadows/no data = 0; None if all masked."""
        import rasterio

        with rasterio.Env(**GDAL_ENV):
            scl_asset = asset_info(item, SCL_ASSET)
            if scl_asset.epsg is not None and f"EPSG:{scl_asset.epsg}" != str(grid.crs).upper():
                log.debug("%s: warped from EPSG:%d onto %s", item.id, scl_asset.epsg, grid.crs)
            scl = self._read(scl_asset.href, grid, scl_asset.nodata, "nearest")  # classes: never interpolate
            clear = np.isfinite(scl) & ~np.isin(np.nan_to_num(scl, nan=0).astype(int), SCL_MASKED)
            if not clear.any():
                return None  # skip the 12 band reads of a scene that is cloudy over the patch
            out = np.zeros((len(S2_BANDS), grid.size, grid.size), dtype=np.uint16)
            for i, band in enumerate(S2_BANDS):
                a = asset_info(item, ASSET_KEYS[band])
                dn = self._read(a.href, grid, a.nodata, self.resampling)
                refl = dn * a.scale + a.offset
                refl[~clear] = np.nan
                out[i] = reflectance_to_dn(refl)
        return out

    def fetch(self, sample_id: str, label: int, set_name: str, lon: float, lat: float) -> Patch:
        """One patch as a ``Patch`` (DN = surface reflectance x 10000, study band order)."""
        return point_patch(self, sample_id, label, set_name, lon, lat)

    def composite_dn(self, grid: PatchGrid, where: str) -> np.ndarray:
        """The median composite on any square ``grid`` as (bands, H, W) DN (a patch, or a region-scan tile)."""
        items = self.search(grid)
        if not items:
            raise NoSceneError(
                f"{where}: no {self.collection} scene covers this point between {self.start} and {self.end}"
                + (f" with scene cloud cover <= {self.max_scene_cloud:g}%" if self.max_scene_cloud < 100 else "")
                + ". Check the coordinates (lon, lat order) and the date range."
            )
        stack = [s for s in (self.scene_dn(it, grid) for it in items) if s is not None]
        if not stack:
            raise CloudyCompositeError(
                f"{where}: all {len(items)} scenes between {self.start} and {self.end} are cloudy, shadowed or empty "
                "over this patch (SCL). Widen the date range or allow more scenes."
            )
        data = median_composite(np.stack(stack))
        if not data.any():
            raise CloudyCompositeError(f"{where}: the composite has no clear pixel; widen the date range")
        log.debug("%s: median of %d of %d scenes", where, len(stack), len(items))
        return data


def _transient_or_error(exc: Exception, what: str = "the search") -> Exception:
    """A failed request: retry on 429 / 408 / 5xx (``asgm.net.transient_for``), else the API refused it."""
    if (again := transient_for(exc)) is not None:
        return again
    status = http_status(exc)
    answered = f" (HTTP {status})" if status is not None else ""
    return SourceError(f"the STAC API refused {what}{answered}: {short(exc)}; check --stac-url")
