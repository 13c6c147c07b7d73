"""Patch sources: each turns labelled points into patches in a patch store (``asgm.store``).

- ``demo``: Earth Genome's real RGB chips (no account, offline after the first download).
- ``synthetic``: seeded 12-band scenes for tests and the offline pipeline.
- ``gee``: the study's recipe on Google Earth Engine (Level-1C, Cloud Score+, median), on an exact
  10 m UTM grid; needs an Earth Engine account.
- ``stac``: Element84 Earth Search (Level-2A, SCL masking, median); no account.

Shared pieces (grids, DN conversion, compositing, retries, the fetch driver, product-level checks)
live in ``asgm.sources.common``. This package module stays import-light on purpose: importing
``asgm.sources.demo`` must not pull in Earth Engine or pystac.
"""

from __future__ import annotations

import os
from pathlib import Path


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
