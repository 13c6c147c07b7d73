"""The network layer: classification by HTTP status and exception type, retries with backoff."""

from __future__ import annotations

import json

import httplib2
import pytest
import requests
from googleapiclient.errors import HttpError

from asgm import net


def _http_error(code: int, status: str) -> HttpError:
    """The error googleapiclient raises for an Earth Engine answer (what ee wraps into EEException)."""
    body = json.dumps({"error": {"code": code, "message": "x", "status": status}}).encode()
    return HttpError(httplib2.Response({"status": code}), body)


def _requests_error(code: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = code
    return requests.HTTPError(f"{code} error", response=response)


def _wrapped(inner: BaseException) -> Exception:
    """An exception raised while handling ``inner``, as earthengine-api raises EEException."""
    try:
        raise inner
    except type(inner):
        try:
            raise RuntimeError("Too many concurrent aggregations.")  # noqa: B904 - the implicit context is the point
        except RuntimeError as exc:
            return exc


@pytest.mark.parametrize(
    "code,kind",
    [
        (429, net.QuotaError),
        (503, net.TransientError),
        (500, net.TransientError),
        (408, net.TransientError),
        (400, None),
        (403, None),
        (404, None),
    ],
)
def test_status_decides_retry(code, kind):
    got = net.transient_for(_requests_error(code))
    assert (type(got) if got else None) is kind


def test_status_found_behind_a_wrapping_error_and_not_in_digits_of_the_text():
    assert net.http_status(_wrapped(_http_error(429, "RESOURCE_EXHAUSTED"))) == 429
    assert isinstance(net.transient_for(_wrapped(_http_error(429, "RESOURCE_EXHAUSTED"))), net.QuotaError)
    assert net.google_status(_wrapped(_http_error(503, "UNAVAILABLE"))) == "UNAVAILABLE"
    # A message that merely contains "500" or "429" is not a status.
    assert net.transient_for(RuntimeError("asset 5003 has 429 pixels")) is None
    assert net.http_status(RuntimeError("HTTP response code: 404 - Not Found")) == 404  # GDAL's curl message


def test_transport_errors_by_type():
    assert net.is_transport_error(requests.ConnectionError("refused"))
    assert net.is_transport_error(TimeoutError())
    assert net.is_transport_error(httplib2.ServerNotFoundError("dns"))
    assert not net.is_transport_error(ValueError("bad"))


def test_retry_backs_off_doubling_and_longer_for_quota_then_gives_up():
    waits: list[float] = []
    calls = iter([net.TransientError("503"), net.QuotaError("429"), net.TransientError("503")])

    def fn() -> str:
        raise next(calls)

    with pytest.raises(LookupError, match="gave up after 3: 503"):
        net.retry(
            fn,
            attempts=3,
            base_delay=1.0,
            sleep=waits.append,
            jitter=False,
            give_up=lambda exc, n: LookupError(f"gave up after {n}: {exc}"),
        )
    assert waits == [1.0, 4.0]  # 1 s, then 2 s doubled for the quota error


def test_retry_returns_after_a_transient_failure_and_never_retries_other_errors():
    results = iter([net.TransientError("blip"), "ok"])

    def flaky() -> str:
        r = next(results)
        if isinstance(r, Exception):
            raise r
        return r

    assert net.retry(flaky, attempts=2, base_delay=0, sleep=lambda s: None) == "ok"
    tries = []

    def broken() -> None:
        tries.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        net.retry(broken, attempts=5, base_delay=0, sleep=lambda s: None)
    assert len(tries) == 1


def test_short_is_one_line():
    assert net.short("a\n  b " + "c" * 300, n=10) == "a b cccccc…"
