"""Earth Engine sessions: settings, credentials, one initialization per process, and what a refusal means.

The pixels (the study's recipe, ``GeeSource``) are ``asgm.sources.gee_fetch``; this module is the only one
of the sources that reads Streamlit secrets.

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

from asgm.net import short
from asgm.sources.common import SourceAuthError, SourceError, SourceNetworkError, SourceProjectError

log = logging.getLogger(__name__)

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
            "and try again."
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
            raise classify_init_error(str(exc), settings.project) from None
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


def classify_init_error(message: str, project: str | None) -> SourceError:
    """The error a refused initialization (or a refused request for the same reason) is, with the fix."""
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
    if is_quota(low):
        return SourceError(f"Earth Engine quota exceeded while initializing ({short(message)}); try again later")
    return SourceError(f"Earth Engine initialization failed: {short(message)}")


def is_quota(low: str) -> bool:
    """Whether a lower-cased Earth Engine message speaks of a quota or rate limit."""
    return any(s in low for s in ("too many", "quota", "rate limit", "resource_exhausted", "resource exhausted"))
