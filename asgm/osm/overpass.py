"""The Overpass transport of ``asgm.osm.fetch``: one request per query part through osmnx, with retries.

Overpass failures (HTTP 429/5xx, timeouts, "runtime error" remarks, dropped connections) are retried
with exponential backoff (``asgm.net.retry``), then raised as ``OverpassError`` naming the part and what
to do. They are detected with a ``requests`` response hook passed through
``osmnx.settings.requests_kwargs``: this sees every Overpass response before osmnx does (osmnx itself
retries 429/504 forever, 55 s apart, and silently returns empty results for "Query timed out" remarks,
which would poison the cache). Before each request we wait for a free query slot as ``<url>/status``
says (osmnx's own wait is switched off: it sleeps 60 s whenever that endpoint is unreachable).
"""

from __future__ import annotations

import contextlib
import html
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
from shapely.geometry.base import BaseGeometry

from asgm import net
from asgm.net import TransientError
from asgm.osm import OverpassError


def overpass_settings_string(date: str | None) -> str:
    """osmnx's query header template, with Overpass's ``[date:...]`` when a snapshot is asked for."""
    base = "[out:json][timeout:{timeout}]{maxsize}"
    return base + (f'[date:"{date}"]' if date else "")


class _Transient(TransientError):
    """An Overpass failure worth retrying (rate limit, overload, timeout)."""


class _Retry(TransientError):
    """A failed request (connection, timeout, osmnx error) to retry; keeps the original error for the message."""

    def __init__(self, original: BaseException):
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


class _Rejected(Exception):
    """An Overpass answer that retrying cannot fix (HTTP 400: the query itself is bad)."""


def _html_text(text: str, limit: int = 300) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", text or ""))
    return re.sub(r"\s+", " ", text).strip()[:limit]


class _ResponseWatch:
    """A ``requests`` response hook: classifies Overpass answers and records the data timestamp."""

    def __init__(self) -> None:
        self.osm_base: str | None = None

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if not response.url.rstrip("/").endswith("/interpreter"):
            return response  # the /status probe: osmnx handles it
        code = response.status_code
        if code == 400:
            raise _Rejected(f"HTTP 400: {_html_text(response.text)}")
        if code in (429, 502, 503, 504) or code >= 500:
            raise _Transient(f"HTTP {code} {response.reason}: {_html_text(response.text, 160)}")
        if code != 200:
            raise _Transient(f"HTTP {code} {response.reason}")
        try:
            body = response.json()
        except ValueError:
            raise _Transient(f"HTTP 200 but not JSON: {_html_text(response.text, 160)!r}") from None
        remark = body.get("remark") if isinstance(body, dict) else None
        if remark and re.search(r"runtime error|timed out|out of memory|error", str(remark), re.I):
            # Overpass reports query timeouts as 200 + remark with partial or no elements.
            raise _Transient(f"Overpass remark: {remark}")
        if isinstance(body, dict):
            self.osm_base = (body.get("osm3s") or {}).get("timestamp_osm_base") or self.osm_base
        return response


@contextlib.contextmanager
def _osmnx_configured(url: str, timeout_s: float, date: str | None, hook: _ResponseWatch) -> Iterator[Any]:
    """Point osmnx at ``url`` with our header and hook; restore its global settings afterwards."""
    import osmnx as ox

    names = (
        "overpass_url",
        "overpass_settings",
        "requests_timeout",
        "requests_kwargs",
        "use_cache",
        "overpass_rate_limit",
    )
    saved = {n: getattr(ox.settings, n) for n in names}
    try:
        ox.settings.overpass_url = url
        ox.settings.overpass_settings = overpass_settings_string(date)
        ox.settings.requests_timeout = timeout_s
        ox.settings.requests_kwargs = {**saved["requests_kwargs"], "hooks": {"response": [hook]}}
        ox.settings.use_cache = False  # our part files are the cache; no second copy under ./cache
        # We wait for a query slot ourselves (_slot_pause): osmnx sleeps a fixed 60 s whenever the
        # status endpoint cannot be reached, which turns a dead server into minutes of silence.
        ox.settings.overpass_rate_limit = False
        yield ox
    finally:
        for n, v in saved.items():
            setattr(ox.settings, n, v)


def _slot_pause(url: str, timeout_s: float, cap_s: float = 120.0) -> float:
    """Seconds to wait for a free Overpass query slot, from ``<url>/status`` (0 if it cannot be read:
    the request itself will then fail fast and be retried with backoff)."""
    import requests

    try:
        text = requests.get(url + "/status", timeout=min(timeout_s, 10)).text
    except requests.RequestException:
        return 0.0
    for line in text.splitlines()[3:]:
        if re.match(r"\d+ slots? available now", line):
            return 0.0
        m = re.search(r"in (\d+) seconds", line)
        if line.startswith("Slot available after") and m:
            return min(float(m.group(1)), cap_s)
    return 0.0


def fetch_features(
    part: BaseGeometry,
    tags: dict[str, bool],
    *,
    url: str,
    timeout_s: float,
    date: str | None,
    retries: int,
    backoff_s: float,
    where: str,
) -> tuple[gpd.GeoDataFrame | None, str | None]:
    """One Overpass request with retries (``asgm.net.retry``); returns (features or None when the area has
    none of the keys, timestamp_osm_base). Still failing after ``retries`` retries: ``OverpassError``."""
    import requests
    from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

    if part.geom_type not in ("Polygon", "MultiPolygon"):
        part = part.envelope

    def attempt() -> tuple[gpd.GeoDataFrame | None, str | None]:
        hook = _ResponseWatch()
        time.sleep(_slot_pause(url, timeout_s))
        try:
            with _osmnx_configured(url, timeout_s, date, hook) as ox:
                gdf = ox.features.features_from_polygon(part, tags=tags)
            return gdf, hook.osm_base
        except InsufficientResponseError as exc:
            if str(exc).startswith("No matching features"):
                return None, hook.osm_base  # an area with none of the keys: empty, not an error
            raise _Retry(exc) from exc
        except _Rejected as exc:
            raise OverpassError(
                f"Overpass at {url} rejected the query for {where} ({exc}). This is not transient: check the "
                "snapshot date and keys; if they look right, report it with this message"
            ) from exc
        except _Transient:
            raise
        except (requests.RequestException, ResponseStatusCodeError, OSError) as exc:  # dropped, refused, timed out
            raise _Retry(exc) from exc

    def give_up(exc: TransientError, tries: int) -> OverpassError:
        last = exc.original if isinstance(exc, _Retry) else exc
        return OverpassError(
            f"Overpass at {url} failed {tries} time(s) for {where}; last error: {type(last).__name__}: {last}. "
            "Parts already fetched are kept: rerun the same command later to resume, raise --retries/--timeout, "
            "or use another Overpass instance with --overpass-url (or ASGM_OVERPASS_URL)"
        )

    # Backoff as the CLI documents it: ``backoff_s`` doubled at each retry, no cap, no jitter.
    return net.retry(
        attempt,
        attempts=retries + 1,
        base_delay=backoff_s,
        max_delay=math.inf,
        what=f"Overpass {where}",
        give_up=give_up,
        jitter=False,
    )
