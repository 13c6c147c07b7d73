"""Patch sources: each turns labelled points into patches in a patch store (``asgm.data.store``).

- ``demo``: Earth Genome's real RGB chips (no account, offline after the first download).
- ``synthetic``: seeded 12-band scenes for tests and the offline pipeline.
- ``gee``: the study's recipe on Google Earth Engine (Level-1C, Cloud Score+, median), on an exact
  10 m UTM grid; needs an Earth Engine account.
- ``stac``: Element84 Earth Search (Level-2A, SCL masking, median); no account.

Shared pieces (grids, DN conversion, compositing, retries, the fetch driver, product-level checks)
live in ``asgm.sources.common``. This package module stays import-light on purpose: importing
``asgm.sources.demo`` must not pull in Earth Engine or pystac.

May import: the shared base, ``asgm.jobs``, ``asgm.data`` (not ``asgm.osm``: same rank).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def make_source(
    kind: str,
    size: int,
    start: str | None = None,
    end: str | None = None,
    *,
    clear_threshold: float | None = None,
    stac_url: str | None = None,
    max_scenes: int | None = 40,
) -> Any:
    """A Sentinel-2 source by name: 'gee' (Earth Engine, Level-1C, the study's recipe; ``clear_threshold``
    defaults to the study's 0.75) or 'stac' (``stac_url``, else ``$ASGM_STAC_URL``, else Earth Search; Level-2A; at most ``max_scenes``
    least cloudy scenes per point, 0 or None for all). Dates default to the study's year."""  # noqa: E501
    if kind == "gee":
        from asgm.sources.common import DEFAULT_CLEAR_THRESHOLD
        from asgm.sources.gee_fetch import GeeSource

        return GeeSource(
            size, start, end, clear_threshold=DEFAULT_CLEAR_THRESHOLD if clear_threshold is None else clear_threshold
        )
    if kind == "stac":
        from asgm.sources import stac

        return stac.StacSource(size, start, end, url=stac_url or stac.stac_url(), max_scenes=max_scenes or None)
    from asgm.sources.common import SourceError

    raise SourceError(f"unknown Sentinel-2 source {kind!r}; use 'gee' (Earth Engine) or 'stac' (Earth Search)")


def configured_source() -> str | None:
    """Name of a Sentinel-2 source this machine is set up for: 'gee' when Earth Engine credentials are
    configured (a key found by ``gee.load_settings``, or the user's ``earthengine authenticate``
    credentials), 'stac' when ``ASGM_STAC_URL`` names a catalogue, else None. Never shows the key."""
    from asgm.sources.common import SourceError
    from asgm.sources.gee import load_settings

    try:
        has_key = load_settings().key_info is not None
    except SourceError:  # a broken key setting counts as not configured; fetching says what is wrong
        has_key = False
    if has_key or (Path.home() / ".config" / "earthengine" / "credentials").exists():
        return "gee"
    if os.environ.get("ASGM_STAC_URL"):
        return "stac"
    return None
