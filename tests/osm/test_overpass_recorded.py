"""Overpass answers the real service gave (DinoTools/python-overpy's recorded responses, in the mirror), served
byte for byte over local HTTP through ``asgm.osm.fetch`` and its cache: a runtime-error remark and the HTML
bad-request page are failed queries with a clear message, never an empty cached extract."""

from __future__ import annotations

import pytest
from osm_testdata import POS0

from asgm.osm import OverpassError
from asgm.osm import fetch as F
from asgm.osm import queries as Q

OVERPY = "DinoTools/python-overpy/a8acf84e7182e2e315fd3627529b238f8688ee77/tests"
BBOX = (POS0[0] - 0.02, POS0[1] - 0.02, POS0[0] + 0.06, POS0[1] + 0.02)


def _recorded(mirror, rel: str) -> str:
    return (mirror / OVERPY / rel).read_text(encoding="utf-8")


def test_recorded_runtime_error_remark_fails_and_is_never_cached(osm_env, overpass, mirror):
    overpass.fail_always = (200, _recorded(mirror, "json/remark-runtime-error-01.json"))
    q = Q.bbox_query(*BBOX)
    with pytest.raises(OverpassError, match="runtime error: Query timed out"):
        F.fetch(q, overpass_url=overpass.url, runway=False, retries=1, backoff_s=0)
    # Once Overpass answers, the real extract comes back: the failure left no empty "complete" cache entry.
    overpass.fail_always = None
    res = F.fetch(q, overpass_url=overpass.url, runway=False, retries=0, backoff_s=0)
    assert len(res.features) > 0


def test_recorded_html_bad_request_page_is_one_clear_line(osm_env, overpass, mirror):
    overpass.fail_always = (400, _recorded(mirror, "response/bad-request.html"))
    q = Q.bbox_query(*BBOX)
    with pytest.raises(OverpassError, match="rejected the query.*parse error: ';' expected") as err:
        F.fetch(q, overpass_url=overpass.url, runway=False, retries=3, backoff_s=0)
    assert "\n" not in str(err.value) and "<p>" not in str(err.value) and len(overpass.queries) == 1
    overpass.fail_always = None
    assert len(F.fetch(q, overpass_url=overpass.url, runway=False, retries=0, backoff_s=0).features) > 0
