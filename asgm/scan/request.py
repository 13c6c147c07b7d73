"""A region scan asked for from the app: the area (drawn or uploaded), run, year and source checked before
anything is written, then the ``asgm`` commands the job runner starts (``asgm.jobs.runner``).

Scans live in ``<data>/scans/<name>/``: ``aoi.geojson`` and ``request.json`` (written here, once every
check passed), then what ``asgm scan run --out`` writes there (``asgm.scan``). Asking again for a scan
of the same name with the same request resumes it; another request under that name is refused.

Sources: a local mosaic path, ``stac`` (Earth Search, or ``$ASGM_STAC_URL``), ``gee`` (Earth Engine), or
``synthetic``: a SYNTHETIC demo mosaic with known mine sites (``asgm synthetic mosaic``) written into the
scan folder first, for trying the scan offline. Its mine count grows with the year (same seed, same
place), so two years of the demo show new mines in the change view.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from asgm import atomic
from asgm.config import S2_BANDS, data_dir
from asgm.grid import RESOLUTION_M
from asgm.scan import area as scan_area
from asgm.scan import driver

#: The source choice of the SYNTHETIC demo mosaic.
SYNTHETIC = "synthetic"
SYNTHETIC_MOSAIC = "synthetic_mosaic.tif"
#: Largest SYNTHETIC demo mosaic side (px at 10 m): 20 km, written in a few seconds.
SYNTHETIC_MAX_PX = 2048
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ScanRequestError(scan_area.ScanError):
    """A scan request the app cannot start; the message says what to change."""


def scans_dir() -> Path:
    """Where the app's scans are written (``<ASGM_DATA_DIR>/scans``)."""
    return data_dir() / "scans"


def check_name(name: str) -> str:
    """A scan name usable as a folder name (letters, digits, ``_ . -``; not starting with ``_`` or ``.``)."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ScanRequestError(
            f"scan name {name!r} is not usable: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def aoi_from_drawing(drawn: Any, max_area_km2: float = scan_area.DEFAULT_MAX_AREA_KM2) -> tuple[Any, float]:
    """The Map page's drawn shapes (a GeoJSON FeatureCollection) as a checked AOI and its area in km²."""
    if not drawn:
        raise scan_area.AoiError("no area drawn: draw a rectangle or polygon on the Map page, or upload a GeoJSON file")
    return scan_area.check_aoi(scan_area.aoi_from_geojson(drawn, "the drawn area"), max_area_km2)


def aoi_from_upload(name: str, data: bytes, max_area_km2: float = scan_area.DEFAULT_MAX_AREA_KM2) -> tuple[Any, float]:
    """An uploaded GeoJSON file as a checked AOI and its area in km² (``AoiError`` naming the upload). Nothing
    is written."""
    label = Path(name).name or "the upload"
    try:
        text = data.decode("utf-8-sig")  # a BOM, common from Windows tools, is fine
    except UnicodeDecodeError as exc:
        raise scan_area.AoiError(
            f"{label} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}; Latin-1 or another "
            "encoding?): save it as UTF-8 and upload it again"
        ) from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise scan_area.AoiError(
            f"{label} is not readable GeoJSON ({type(exc).__name__}: {exc}); export the area as GeoJSON"
        ) from None
    try:
        return scan_area.check_aoi(scan_area.aoi_from_geojson(raw, label), max_area_km2)
    except scan_area.AoiError as exc:
        raise scan_area.AoiError(f"{label}: {exc}") from None


@dataclass(frozen=True)
class ScanRequest:
    """What the Scan page asks for. ``source``: a mosaic path, ``stac``, ``gee`` or ``synthetic``."""

    name: str
    year: int
    run_id: str
    source: str
    stac_url: str | None = None
    scheduler: str = "none"
    #: Decide windows with the spatial prior at Earth Genome's settings (``asgm.model.spatial_prior``).
    spatial_prior: bool = False

    @property
    def folder(self) -> Path:
        return scans_dir() / self.name

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC


def synthetic_mosaic_px(aoi_utm: Any, window: int) -> int:
    """Side (px) of a SYNTHETIC demo mosaic centred on the AOI that holds every window of its scan."""
    w, s, e, n = aoi_utm.bounds
    side = max(e - w, n - s) / RESOLUTION_M + 2 * window  # a window of margin each side (>= the 1.5 needed)
    return int(math.ceil(side / 64) * 64)


def _synthetic_mines(year: int, area_km2: float) -> int:
    """Mine sites asked of the demo mosaic: about one per 15 km² in 2021, one more each later year (1 to 12).
    Sites are kept 1 km apart inside the mosaic, so fewer may fit; the same place and seed keep earlier sites."""
    return max(1, min(12, round(area_km2 / 15) + int(year) - 2021))


def check(request: ScanRequest, aoi: Any) -> driver.ScanPlan:
    """Every check the scan makes before writing (area, run, year, source, bands; the imagery's coverage for a
    local mosaic), without contacting STAC or Earth Engine and without writing. Raises ``ScanError``s."""
    from asgm.sources.composite import year_range

    check_name(request.name)
    year_range(request.year)
    if request.synthetic:
        # The demo mosaic does not exist yet: check against what it will be (12 study bands, synthetic).
        options = driver.ScanOptions(source=_synthetic_stub(request), spatial_prior=_prior(request))
        pl = driver.plan(aoi, request.year, request.run_id, options, check_coverage=False)
        px = synthetic_mosaic_px(pl.aoi_utm, pl.grid.window)
        if px > SYNTHETIC_MAX_PX:
            raise ScanRequestError(
                f"the SYNTHETIC demo mosaic is limited to {SYNTHETIC_MAX_PX * RESOLUTION_M / 1000:.0f} km "
                f"a side and this area needs {px * RESOLUTION_M / 1000:.0f} km; draw a smaller area"
            )
    else:
        remote = request.source in ("stac", "gee")
        options = driver.ScanOptions(source=request.source, stac_url=request.stac_url, spatial_prior=_prior(request))
        pl = driver.plan(aoi, request.year, request.run_id, options, check_coverage=not remote)
    _check_folder(request, pl.geom)
    return pl


def _prior(request: ScanRequest) -> Any:
    from asgm.model.spatial_prior import SpatialPrior

    return SpatialPrior() if request.spatial_prior else None


def _request_record(request: ScanRequest, aoi: Any) -> dict[str, Any]:
    from shapely.geometry import mapping

    record = asdict(request)
    if not record["spatial_prior"]:
        del record["spatial_prior"]  # as requests were recorded before the option: those resume unchanged
    return {**record, "aoi": json.loads(json.dumps(mapping(aoi)))}


def _check_folder(request: ScanRequest, aoi: Any) -> None:
    """Refuse a name already used by another request (the same request again is a resume)."""
    folder = request.folder
    if not folder.exists():
        return
    try:
        old = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if old != _request_record(request, aoi):
        raise ScanRequestError(
            f"a scan named {request.name!r} exists already with another area, year, run or source; "
            "pick another name (the same request again resumes it)"
        )


def prepare(request: ScanRequest, pl: driver.ScanPlan) -> list[list[str]]:
    """Write the scan folder's ``aoi.geojson`` and ``request.json`` for a request ``check`` passed (``pl``) and
    return the job's commands (``python`` argv without the interpreter): the demo mosaic first when
    synthetic, then the scan."""
    from shapely.geometry import mapping

    from asgm.jobs import commands

    folder, aoi = request.folder, pl.geom
    atomic.write_text(
        folder / "aoi.geojson",
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"name": request.name}, "geometry": mapping(aoi)}],
            }
        )
        + "\n",
    )
    atomic.write_json(folder / "request.json", _request_record(request, aoi))
    steps: list[list[str]] = []
    source = request.source
    if request.synthetic:
        lon, lat = aoi.centroid.coords[0]
        mosaic = folder / SYNTHETIC_MOSAIC
        steps.append(
            commands.synthetic_mosaic(
                mosaic,
                lon,
                lat,
                synthetic_mosaic_px(pl.aoi_utm, pl.grid.window),
                _synthetic_mines(request.year, pl.area_km2),
                request.year,
            )
        )
        source = str(mosaic)
    steps.append(
        commands.scan(
            aoi_file=folder / "aoi.geojson",
            year=request.year,
            run_id=request.run_id,
            source=source,
            out=folder,
            scheduler=request.scheduler,
            stac_url=request.stac_url,
            spatial_prior=request.spatial_prior,
        )
    )
    return steps


def _synthetic_stub(request: ScanRequest) -> Any:
    """The composite a SYNTHETIC demo scan will read (12 study bands), described before its mosaic is written."""
    from asgm.sources.composite import MosaicComposite

    return MosaicComposite(str(request.folder / SYNTHETIC_MOSAIC), "synthetic-mosaic", S2_BANDS, "", True)


def discard(request: ScanRequest) -> None:
    """Remove a prepared scan folder whose job was refused (it holds only the request: nothing scanned)."""
    folder = request.folder
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= {"aoi.geojson", "request.json"}:
        shutil.rmtree(folder, ignore_errors=True)
