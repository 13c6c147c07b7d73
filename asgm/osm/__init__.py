"""OSM context layers: fetch (osmnx/Overpass, cached), rasterize onto patch grids, coverage.

Submodules are imported on demand (``asgm.osm.queries`` what to fetch, ``asgm.osm.fetch``, ``asgm.osm.local_xml``
for an OSM XML file, ``asgm.osm.rasterize``, ``asgm.osm.coverage``)
so that importing the error types here stays cheap for the CLI and ``asgm.errors``.

Vector schema (fetch cache and synthetic scenes): a GeoDataFrame in EPSG:4326 with columns
``element``, ``id``, one column per OSM key of ``asgm.config.OSM_LAYERS`` holding the tag value or
null, and ``geometry``. OSM data © OpenStreetMap contributors (ODbL).

May import: the shared base, ``asgm.jobs``, ``asgm.data`` (not ``asgm.sources``: same rank).
"""

from __future__ import annotations

from asgm.errors import AsgmError


class OsmError(AsgmError):
    """An OSM-layer problem a user can act on; the message says what to do."""


class OsmFetchError(OsmError):
    """Fetching OSM features failed (bad area, bad date, unreadable file)."""


class OverpassError(OsmFetchError):
    """The Overpass API kept failing (after retries) or rejected the query."""


class OsmRasterizeError(OsmError):
    """OSM masks could not be made for a store (no vectors, bad filter, bad vector file)."""


__all__ = ["OsmError", "OsmFetchError", "OverpassError", "OsmRasterizeError"]
