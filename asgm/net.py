"""The one network layer of the remote sources (Earth Engine, STAC, Overpass): which failures are worth
retrying, retrying them with exponential backoff and jitter (``tenacity``), and one-line messages.

A failure is classified by what it is, never by digits found in its text:

- by HTTP status (``http_status`` finds it on the exception or on the HTTP error it was raised from):
  429 is a quota / rate limit (``QuotaError``), 408 and 5xx are transient (``TransientError``);
- by exception type (``is_transport_error``): dropped connections, timeouts, socket errors.

The callers turn a failure that is still there after the last try into their own ``AsgmError`` with the
way out (``give_up``), so this module knows nothing about sources or OSM.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

QUOTA_STATUSES = frozenset({429})
#: Request timeout and server-side errors (500 internal, 502/503/504 gateway, overload, timeout).
TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
#: Google API error statuses (Earth Engine's JSON errors) by the same rule.
GOOGLE_QUOTA_STATUSES = frozenset({"RESOURCE_EXHAUSTED"})
GOOGLE_TRANSIENT_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"})
# GDAL's curl driver (rasterio) reports the status only in its message: "HTTP response code: 429".
_GDAL_STATUS = re.compile(r"HTTP response code: (\d{3})\b")


class TransientError(Exception):
    """An error worth retrying (HTTP 5xx or 408, timeouts, dropped connections)."""


class QuotaError(TransientError):
    """HTTP 429 / quota exceeded: retried with a longer backoff."""


def short(text: BaseException | str, n: int = 200) -> str:
    """``text`` (or an exception's message) on one line, cut to ``n`` characters."""
    flat = " ".join(str(text).split())
    return flat[:n] + ("…" if len(flat) > n else "")


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status behind ``exc``: its ``status_code`` (pystac-client, requests responses), its
    ``response.status_code`` (requests), its ``resp.status`` (googleapiclient), a status in a GDAL curl
    message, or the same on the error it was raised from (Earth Engine wraps the HTTP error)."""
    seen = 0
    while exc is not None and seen < 5:
        for value in (
            getattr(exc, "status_code", None),
            getattr(getattr(exc, "response", None), "status_code", None),
            getattr(getattr(exc, "resp", None), "status", None),
        ):
            try:
                if value is not None:
                    return int(value)
            except (TypeError, ValueError):
                pass
        if m := _GDAL_STATUS.search(str(exc)):
            return int(m.group(1))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def google_status(exc: BaseException | None) -> str | None:
    """The Google API error status (e.g. ``RESOURCE_EXHAUSTED``) of a googleapiclient ``HttpError`` behind
    ``exc``, or None."""
    import json

    seen = 0
    while exc is not None and seen < 5:
        content = getattr(exc, "content", None)
        if isinstance(content, bytes | str):
            try:
                status = json.loads(content).get("error", {}).get("status")
            except (ValueError, AttributeError):
                status = None
            if isinstance(status, str):
                return status
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def transient_for(exc: BaseException, message: str | None = None) -> TransientError | None:
    """The ``QuotaError`` / ``TransientError`` to retry ``exc`` as (by HTTP status or Google API status), or
    None when retrying cannot help (e.g. 400, 403, 404) or no status is known."""
    status, gstatus = http_status(exc), google_status(exc)
    text = short(message if message is not None else exc)
    if status in QUOTA_STATUSES or gstatus in GOOGLE_QUOTA_STATUSES:
        return QuotaError(f"HTTP {status or 429}: {text}")
    if status in TRANSIENT_STATUSES or (status is not None and status >= 500) or gstatus in GOOGLE_TRANSIENT_STATUSES:
        return TransientError(f"HTTP {status}: {text}" if status else text)
    return None


def is_transport_error(exc: BaseException) -> bool:
    """True for failures of the connection itself (refused, reset, timed out, DNS), by exception type."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, OSError]
    try:
        import requests

        kinds.append(requests.RequestException)
    except ImportError:  # pragma: no cover - requests ships with every remote source's client
        pass
    try:
        import httplib2  # Earth Engine's transport

        kinds.append(httplib2.HttpLib2Error)
    except ImportError:
        pass
    return isinstance(exc, tuple(kinds))


def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    what: str = "request",
    give_up: Callable[[TransientError, int], Exception] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    jitter: bool = True,
) -> T:
    """Call ``fn``; on ``TransientError`` retry with exponential backoff (``base_delay`` doubled per try, at most
    ``max_delay``; quota errors wait twice as long) and jitter, which spreads out parallel workers.

    After ``attempts`` tries the last error is passed to ``give_up(error, attempts)`` and what it returns is
    raised (the caller's error with the way out); without ``give_up`` the ``TransientError`` itself."""
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = min(max_delay, base_delay * 2 ** (state.attempt_number - 1)) * (
            2.0 if isinstance(exc, QuotaError) else 1.0
        )
        return min(max_delay, delay) * (random.uniform(0.5, 1.0) if jitter else 1.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "%s: %s; retry %d/%d in %.1f s",
            what,
            exc,
            state.attempt_number,
            attempts - 1,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        sleep=sleep,
        reraise=True,
        retry=tenacity.retry_if_exception_type(TransientError),
        before_sleep=before_sleep,
    )
    try:
        return retrying(fn)
    except TransientError as exc:
        if give_up is None:
            raise
        raise give_up(exc, attempts) from exc
