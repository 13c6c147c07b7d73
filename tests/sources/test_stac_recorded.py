"""The project's STAC search against Earth Search v1's own recorded answers (no stand-in, no network).

The cassettes are ``stac-utils/pystac-client``'s vcrpy recordings of real exchanges with
``https://earth-search.aws.element84.com/v1`` (mirror README, "Recorded real service responses and real
pixels"), read from the data mirror and replayed by vcrpy in strict mode (``record_mode="none"``): a request
no recording matches fails the test instead of reaching the network.

Matching: ``method`` + ``scheme`` + ``host`` + ``path`` + our ``stac_page`` matcher, which compares the ``next``
token of a POST body (absent on a first page). The recorded request bodies are pystac-client's own queries
(a CQL2 filter, other collections), not what ``StacSource.search`` sends (collections, bbox, datetime,
limit), so bodies are not compared whole; the ``next`` token is what tells the pages apart, and matching on
it checks that the project follows the server's ``next`` link. ``allow_playback_repeats`` lets the landing
page answer both the reachability check and pystac-client's ``Client.open``.

What the recorded search answers hold, and this test relies on: the first page mixes Sentinel-1 GRD,
``sentinel-2-l2a``, ``sentinel-2-l1c`` and ``sentinel-2-c1-l2a`` items from Argentina and Brazil (the recorded
query named no collection and no bbox), 10 per page, and each page has a ``next`` link; only two pages
were recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vcr

from asgm.config import S2_BANDS
from asgm.errors import AsgmError
from asgm.grid import patch_grid
from asgm.sources.common import SourceError
from asgm.sources.stac import ASSET_KEYS, COLLECTION, EARTH_SEARCH_URL, SCL_ASSET, StacSource, asset_info

CASSETTES = "stac-utils/pystac-client/85f29a66bb64463767de12052c88011b020a2374/tests/cassettes"
SEARCH_TWO_PAGES = "test_cli/TestCLISearch.test_filter[inprocess].yaml"
NOT_FOUND = "test_client/test_get_collection_returns_none_if_not_found.yaml"

# A point inside the footprint of the recorded scene S2B_T24MVV_20250731T130245_L2A (Ceará, Brazil; UTM 24S)
# and outside every other recorded sentinel-2-c1-l2a footprint.
LON, LAT = -39.3, -4.7
# All recorded sentinel-2-c1-l2a items, both pages, in the order served.
C1_PAGE_1 = ["S2B_T20EPT_20250731T131905_L2A", "S2B_T24MUV_20250731T130245_L2A", "S2B_T24MVV_20250731T130245_L2A"]
C1_PAGE_2 = ["S2B_T24MWV_20250731T130245_L2A", "S2B_T24MXV_20250731T130245_L2A", "S2B_T24MUA_20250731T130245_L2A"]
# Study band -> the file name Element84 gives that band's COG.
BAND_FILE = {b: ("B8A" if b == "B8A" else f"B{int(b[1:]):02d}") for b in S2_BANDS}


def _next_token(body: bytes | str | None) -> str | None:
    if not body:
        return None
    try:
        return json.loads(body).get("next")
    except (ValueError, AttributeError):
        return None


def stac_page(r1: vcr.request.Request, r2: vcr.request.Request) -> None:
    """vcrpy matcher: the same page of a paged POST search (the same ``next`` token, or none)."""
    t1, t2 = _next_token(r1.body), _next_token(r2.body)
    if t1 != t2:
        raise AssertionError(f"next token {t1!r} != {t2!r}")


def _replay(mirror: Path, cassette: str) -> vcr.cassette.CassetteContextDecorator:
    path = mirror / CASSETTES / cassette
    if not path.is_file():
        pytest.fail(f"recording {path} missing from the data mirror (ASGM_DATA_MIRROR)")
    v = vcr.VCR(record_mode="none")
    v.register_matcher("stac_page", stac_page)
    return v.use_cassette(
        str(path), match_on=["method", "scheme", "host", "path", "stac_page"], allow_playback_repeats=True
    )


def _source(**kw: object) -> StacSource:
    # The recording's scenes are from 2025-07-31; the date range is sent but the recording ignores it.
    return StacSource(48, "2025-07-01", "2025-09-01", url=EARTH_SEARCH_URL, retry_attempts=1, **kw)


def _played_paths(cassette: vcr.cassette.Cassette) -> list[str]:
    return [r.path for i, r in enumerate(cassette.requests) if cassette.play_counts[i]]


def test_search_follows_next_keeps_only_the_collection_and_the_footprint(mirror):
    grid = patch_grid(LON, LAT, 48)
    with _replay(mirror, SEARCH_TWO_PAGES) as cassette:
        src = _source(max_search_items=20)
        items = src.search(grid)
        # Both recorded pages were read, each once, and nothing beyond them was asked (strict replay).
        posts = [(_next_token(r.body) is None, cassette.play_counts[i]) for i, r in enumerate(cassette.requests)]
        assert posts[1:] == [(True, 1), (False, 1)]
    # Of 20 recorded items only one is a sentinel-2-c1-l2a scene whose footprint holds the patch: the
    # Sentinel-1, sentinel-2-l2a and sentinel-2-l1c items and the scenes elsewhere are dropped.
    assert [it.id for it in items] == ["S2B_T24MVV_20250731T130245_L2A"]
    assert all(it.collection_id == COLLECTION for it in items)


def test_each_recorded_c1_scene_is_found_from_a_point_in_its_footprint(mirror):
    """For every recorded sentinel-2-c1-l2a scene, a patch inside its footprint gets that scene back; no item
    of another collection (the Level-1C and old Level-2A items share these footprints) and no scene whose
    footprint misses the patch comes with it."""
    import pystac
    import yaml
    from shapely.geometry import box, shape

    from asgm.sources.common import lonlat_bounds

    recorded = yaml.safe_load((mirror / CASSETTES / SEARCH_TWO_PAGES).read_text(encoding="utf-8"))
    features = [
        f
        for i in recorded["interactions"]
        if i["request"]["method"] == "POST"
        for f in json.loads(i["response"]["body"]["string"])["features"]
    ]
    c1 = [pystac.Item.from_dict(f) for f in features if f["collection"] == COLLECTION]
    assert [it.id for it in c1] == C1_PAGE_1 + C1_PAGE_2
    for scene in c1:
        inside = shape(scene.geometry).representative_point()
        grid = patch_grid(inside.x, inside.y, 48)
        with _replay(mirror, SEARCH_TWO_PAGES):
            items = _source(max_search_items=20).search(grid)
        assert scene.id in [it.id for it in items]
        patch = box(*lonlat_bounds(grid))
        assert all(it.collection_id == COLLECTION and shape(it.geometry).intersects(patch) for it in items)
        clouds = [float(it.properties["eo:cloud_cover"]) for it in items]
        assert clouds == sorted(clouds)  # least cloudy first


def test_paging_stops_at_max_search_items(mirror):
    """With a bound of one page the second page is never requested; with no bound worth the name the
    client would ask for a third page, which was not recorded: the strict replay refuses it."""
    grid = patch_grid(LON, LAT, 48)
    with _replay(mirror, SEARCH_TWO_PAGES) as cassette:
        items = _source(max_search_items=10).search(grid)
        assert (cassette.play_counts[1], cassette.play_counts[2]) == (1, 0)  # page 1 read, page 2 never asked
    assert [it.id for it in items] == ["S2B_T24MVV_20250731T130245_L2A"]
    # pystac-client turns vcrpy's refusal into an APIError, which the source reports as a refused search.
    with _replay(mirror, SEARCH_TWO_PAGES), pytest.raises(SourceError, match="no recorded interaction matches"):
        _source(max_search_items=1000).search(grid)


def test_asset_keys_scale_offset_and_projection_of_a_real_item(mirror):
    with _replay(mirror, SEARCH_TWO_PAGES):
        (item,) = _source(max_search_items=20).search(patch_grid(LON, LAT, 48))
    base = "https://e84-earth-search-sentinel-data.s3.us-west-2.amazonaws.com/sentinel-2-c1-l2a/24/M/VV/2025/7/"
    for band in S2_BANDS:
        a = asset_info(item, ASSET_KEYS[band])
        # The asset key the project uses for each study band is the COG of that band.
        assert a.href == f"{base}S2B_T24MVV_20250731T130245_L2A/{BAND_FILE[band]}.tif", band
        # Collection 1 L2A: DN x 0.0001 - 0.1 (the offset the old sentinel-2-l2a lacked), 0 = no data.
        assert (a.scale, a.offset, a.nodata) == (0.0001, -0.1, 0), band
        assert a.epsg == 32724, band  # UTM 24S, from the item's proj:epsg
    scl = asset_info(item, SCL_ASSET)
    assert scl.href.endswith("/SCL.tif") and scl.nodata == 0 and scl.epsg == 32724
    # Footprint: the item's real geometry, which holds the patch.
    w, s, e, n = item.bbox
    assert w < LON < e and s < LAT < n


def test_unknown_collection_is_one_clear_line(mirror):
    """The recorded 404 of ``/collections/foo``: the source says so before any search, in one line."""
    with _replay(mirror, NOT_FOUND) as cassette:
        src = StacSource(48, "2021-01-01", "2022-01-01", url=EARTH_SEARCH_URL, collection="foo", retry_attempts=1)
        with pytest.raises(SourceError) as err:
            src.connect()
        assert _played_paths(cassette) == ["/v1", "/v1/collections/foo"]
    message = str(err.value)
    assert isinstance(err.value, AsgmError) and "\n" not in message
    assert "no collection 'foo'" in message and "404" in message
    assert "sentinel-2-c1-l2a" in message  # what the landing page offers instead


def test_known_collection_listed_on_the_landing_page_needs_no_request(mirror):
    """Earth Search's landing page names sentinel-2-c1-l2a as a child: no /collections request is made
    (the recording has none for it, so strict replay would fail if one were)."""
    with _replay(mirror, NOT_FOUND) as cassette:
        _source().connect()
        assert _played_paths(cassette) == ["/v1"]
