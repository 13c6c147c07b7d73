"""Sentinel-2 patches from Google Earth Engine with the study's recipe, on an exact 10 m UTM grid.

Recipe (pipeline spec section 2): ``COPERNICUS/S2_HARMONIZED`` (Level-1C), the 12 bands in the study's
order, Cloud Score+ (``cs_cdf >= clear_threshold``, 0.75 by default), per-pixel median over [start, end).
Fixed here: the collection is filtered to the patch footprint (``filterBounds``) and the pixels come from
``computePixels`` with an explicit ``grid`` (UTM ``crsCode`` + ``affineTransform``), so the centre pixel is
centred on the point (bugs B11, B12); patches are keyed by sample_id (bug B1).

Configuration (environment first, then Streamlit secrets — ``.streamlit/secrets.toml``):

- ``ASGM_EE_PROJECT`` or ``EE_PROJECT``: the Cloud project registered for Earth Engine.
- ``ASGM_EE_SERVICE_ACCOUNT_JSON``: a service-account key as JSON text, or
  ``GOOGLE_APPLICATION_CREDENTIALS``: path to a key file; in secrets also an ``[ee_service_account]``
  table holding the key's fields. Without a key, the user's own credentials from
  ``earthengine authenticate`` (or gcloud application-default credentials) are used.
- ``ASGM_EE_URL``: the API endpoint; defaults to the high-volume endpoint Google recommends for many
  small ``computePixels`` requests.

``earthengine-api`` is imported lazily; credentials are never logged or printed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from asgm.config import S2_BANDS
from asgm.data.store import Patch
from asgm.grid import PatchGrid
from asgm.net import QuotaError, TransientError, http_status, is_transport_error, short, transient_for
from asgm.sources.common import (
    DEFAULT_CLEAR_THRESHOLD,
    CloudyCompositeError,
    NoSceneError,
    SourceAuthError,
    SourceError,
    SourceNetworkError,
    SourceProjectError,
    ee_grid,
    parse_date_range,
    point_patch,
    retry,
)

log = logging.getLogger(__name__)

S2_COLLECTION = "COPERNICUS/S2_HARMONIZED"
CLOUD_SCORE_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
CLOUD_SCORE_BAND = "cs_cdf"
PRODUCT_LEVEL = "L1C"
DEFAULT_URL = "https://earthengine-highvolume.googleapis.com"
SCOPES = (
    "https://www.googleapis.com/auth/earthengine",
    "https://www.googleapis.com/auth/cloud-platform",
)
PROBE_TIMEOUT_S = 4.0

SETUP_HELP = (
    "To use Earth Engine: (1) create or pick a Google Cloud project and register it for Earth Engine at "
    "https://code.earthengine.google.com/register; (2) in that project create a service account "
    "(IAM & Admin > Service Accounts), grant it the roles 'Earth Engine Resource Viewer' and "
    "'Service Usage Consumer', and create a JSON key; (3) set ASGM_EE_PROJECT=<project id> and either "
    "GOOGLE_APPLICATION_CREDENTIALS=<path to the key file> or ASGM_EE_SERVICE_ACCOUNT_JSON=<the key JSON>, "
    "or put them in .streamlit/secrets.toml (see .streamlit/secrets.toml.example). Alternatively run "
    "`earthengine authenticate` to use your own account. No account? Use --source stac instead."
)


# -- configuration -------------------------------------------------------------------------------
def _secrets() -> dict[str, Any]:
    """Streamlit secrets as a dict: ``st.secrets`` inside an app script run, else the secrets.toml files.

    Reading the files directly keeps the CLI from importing Streamlit (about a second). Outside a script run
    (the CLI, a background job, a library call) the files are read afresh: ``st.secrets`` would keep the
    first files it parsed in the process for good.
    """
    if "streamlit" in sys.modules:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is not None:
            try:
                import streamlit as st

                return {k: (dict(v) if hasattr(v, "keys") else v) for k, v in st.secrets.items()}
            except Exception:  # no secrets file
                return {}
    merged: dict[str, Any] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"):
        if path.is_file():
            try:
                merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                raise SourceAuthError(f"{path} is not valid TOML ({type(exc).__name__}); fix or remove it") from None
    return merged


def _setting(names: tuple[str, ...], secrets: dict[str, Any]) -> tuple[Any, str] | tuple[None, None]:
    """First non-empty value among ``names``: environment first, then secrets (root or [earthengine])."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name], f"environment variable {name}"
    section: dict[str, Any] = secrets["earthengine"] if isinstance(secrets.get("earthengine"), dict) else {}
    for name in names:
        for where, table in (("", secrets), ("[earthengine] ", section)):
            if table.get(name):
                return table[name], f"Streamlit secret {where}{name}"
    return None, None


@dataclass(frozen=True)
class GeeSettings:
    """Where Earth Engine credentials and the project come from (no secret material in ``repr``)."""

    project: str | None
    url: str
    key_info: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    key_source: str | None = None  # e.g. "environment variable GOOGLE_APPLICATION_CREDENTIALS"
    key_id: str | None = None  # private_key_id, to tell keys apart without exposing them

    @property
    def cache_key(self) -> tuple[Any, ...]:
        return (self.project, self.url, self.key_source, self.key_id)


def load_settings() -> GeeSettings:
    """Read the project, endpoint and service-account key from the environment / Streamlit secrets."""
    secrets = _secrets()
    project, _ = _setting(("ASGM_EE_PROJECT", "EE_PROJECT"), secrets)
    url, _ = _setting(("ASGM_EE_URL",), secrets)
    info: dict[str, Any] | None = None
    key_source = None
    raw, where = _setting(("ASGM_EE_SERVICE_ACCOUNT_JSON",), secrets)
    if raw is not None:
        key_source = where
        if isinstance(raw, dict):
            info = dict(raw)
        else:
            try:
                info = json.loads(raw)
            except json.JSONDecodeError:
                raise SourceAuthError(
                    f"the service-account key in {where} is not valid JSON; paste the whole key file "
                    '(it starts with \'{"type": "service_account"\').'
                ) from None
    elif isinstance(secrets.get("ee_service_account"), dict):
        info, key_source = dict(secrets["ee_service_account"]), "Streamlit secret [ee_service_account]"
    else:
        path, where = _setting(("GOOGLE_APPLICATION_CREDENTIALS",), secrets)
        if path is not None:
            key_file = Path(str(path)).expanduser()
            key_source = where
            if not key_file.is_file():
                raise SourceAuthError(f"{where} points to {key_file}, which does not exist. Fix the path. {SETUP_HELP}")
            try:
                info = json.loads(key_file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise SourceAuthError(
                    f"{key_file} (from {where}) is not a JSON key file; download the key again"
                ) from None
    if info is not None and not isinstance(info, dict):
        raise SourceAuthError(f"the key from {key_source} is not a JSON object; use the key file Google gave you")
    if info is not None and not project:
        project = info.get("project_id") or info.get("quota_project_id")  # the key's own project
    return GeeSettings(
        project=str(project) if project else None,
        url=str(url or DEFAULT_URL).rstrip("/"),
        key_info=info,
        key_source=key_source,
        key_id=(info or {}).get("private_key_id"),
    )


def _credentials(settings: GeeSettings) -> Any:
    """google-auth credentials from the key, or the user's own (``earthengine authenticate``)."""
    info = settings.key_info
    if info is not None:
        kind = info.get("type")
        try:
            if kind == "service_account":
                from google.oauth2 import service_account

                return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
            if kind == "authorized_user":
                from google.oauth2 import credentials as user_credentials

                return user_credentials.Credentials.from_authorized_user_info(info, scopes=list(SCOPES))
        except (ValueError, KeyError) as exc:
            # The message of google-auth names missing fields, never their values.
            raise SourceAuthError(
                f"the key from {settings.key_source} is incomplete or malformed ({exc}). {SETUP_HELP}"
            ) from None
        raise SourceAuthError(
            f"the key from {settings.key_source} has type {kind!r}; a service-account key has type 'service_account'. {SETUP_HELP}"  # noqa: E501
        )
    import ee

    # Look for stored user credentials before asking google-auth, which may probe the GCE metadata
    # server for seconds when there are none.
    ee_file = Path(ee.oauth.get_credentials_path())
    gcloud = (
        Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
        / "application_default_credentials.json"
    )
    if not ee_file.is_file() and not gcloud.is_file():
        raise SourceAuthError(f"no Earth Engine credentials found. {SETUP_HELP}")
    try:
        return ee.data.get_persistent_credentials()
    except ee.EEException as exc:
        raise SourceAuthError(f"your stored Earth Engine credentials cannot be used ({exc}). {SETUP_HELP}") from None


# -- connectivity and initialization -------------------------------------------------------------
def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast (``SourceNetworkError``) when ``url`` cannot be reached within ``timeout`` seconds.

    With credentials but no network, ``ee.Initialize`` only fails after about 25 s; this check keeps
    the CLI and the app from hanging on it. Any HTTP answer counts as reachable.
    """
    import requests

    try:
        requests.head(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        host = urlparse(url).netloc or url
        raise SourceNetworkError(
            f"cannot reach {host} ({type(exc).__name__}). Check your internet connection, proxy or firewall "
            "and try again; stored patches are kept."
        ) from None


_init_lock = threading.Lock()
_initialized: tuple[Any, ...] | None = None


def initialize(settings: GeeSettings | None = None, probe_timeout: float = PROBE_TIMEOUT_S) -> GeeSettings:
    """Initialize Earth Engine once per process (thread-safe, lazy); returns the settings used.

    Re-initializes only when the project, endpoint or key change. Raises ``SourceAuthError``,
    ``SourceProjectError`` or ``SourceNetworkError`` with the fix.
    """
    global _initialized
    settings = settings or load_settings()
    with _init_lock:
        if _initialized == settings.cache_key:
            return settings
        credentials = _credentials(settings)
        if not settings.project:
            raise SourceProjectError(
                "no Earth Engine Cloud project configured: set ASGM_EE_PROJECT (or EE_PROJECT) to the id of a project "
                "registered for Earth Engine (https://code.earthengine.google.com/register), in the environment or "
                "in .streamlit/secrets.toml."
            )
        probe(settings.url, probe_timeout)
        token_uri = getattr(credentials, "_token_uri", None) or getattr(credentials, "token_uri", None)
        if token_uri:
            probe(str(token_uri), probe_timeout)
        import ee
        import google.auth.exceptions
        import requests

        try:
            # Start clean so a new project or key is checked again (the algorithm list is cached).
            ee.Reset()
            # One retry layer: ours (asgm.sources.common.retry), which knows 429 from other errors.
            ee.data.setMaxRetries(0)
            ee.Initialize(credentials=credentials, project=settings.project, url=settings.url)
        except google.auth.exceptions.RefreshError as exc:
            raise SourceAuthError(
                f"Google rejected the credentials from {settings.key_source or 'earthengine authenticate'} "
                f"({short(exc)}); the key may be deleted or disabled — create a new key. {SETUP_HELP}"
            ) from None
        except (requests.RequestException, OSError, google.auth.exceptions.TransportError) as exc:
            raise SourceNetworkError(
                f"lost the connection to Earth Engine while initializing ({type(exc).__name__}); check the network and retry"  # noqa: E501
            ) from None
        except ee.EEException as exc:
            raise _classify_init_error(str(exc), settings.project) from None
        _initialized = settings.cache_key
        log.info("Earth Engine initialized for project %s at %s", settings.project, settings.url)
        return settings


def reset() -> None:
    """Forget the initialization (after changing credentials in the app; used by tests)."""
    global _initialized
    with _init_lock:
        _initialized = None
        if "ee" in sys.modules:
            sys.modules["ee"].Reset()


def check(probe_timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Non-raising status for the app: ``{"ok": bool, "project": ..., "message": ...}``, bounded in time."""
    try:
        settings = initialize(probe_timeout=probe_timeout)
    except SourceError as exc:
        return {"ok": False, "project": None, "message": str(exc), "error": type(exc).__name__}
    return {"ok": True, "project": settings.project, "message": f"Earth Engine ready (project {settings.project})"}


def _classify_init_error(message: str, project: str | None) -> SourceError:
    low = message.lower()
    if any(
        s in low
        for s in (
            "not registered",
            "has not been used in project",
            "caller does not have required permission",
            "permission_denied",
            "permission denied",
            "earth engine api has not been",
        )
    ):
        return SourceProjectError(
            f"project {project!r} cannot use Earth Engine ({short(message)}). Register it at "
            "https://code.earthengine.google.com/register, enable the Earth Engine API "
            f"(https://console.cloud.google.com/apis/library/earthengine.googleapis.com?project={project}), and give "
            "the service account the 'Earth Engine Resource Viewer' and 'Service Usage Consumer' roles."
        )
    if "authorize access" in low or "credentials" in low or "unauthenticated" in low:
        return SourceAuthError(f"Earth Engine did not accept the credentials ({short(message)}). {SETUP_HELP}")
    if _is_quota(low):
        return SourceError(f"Earth Engine quota exceeded while initializing ({short(message)}); try again later")
    return SourceError(f"Earth Engine initialization failed: {short(message)}")


def _is_quota(low: str) -> bool:
    return any(s in low for s in ("too many", "quota", "rate limit", "resource_exhausted", "resource exhausted"))


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
        if http_status(exc) is None and (_is_quota(low) or any(s in low for s in _TRANSIENT)):
            return (QuotaError if _is_quota(low) else TransientError)(short(message))
        if "not registered" in low or "permission" in low or "has not been used in project" in low:
            return _classify_init_error(message, self.settings.project if self.settings else None)
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
