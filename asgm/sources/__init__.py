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
