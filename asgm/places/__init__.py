"""Place statistics: how much mining lies inside each territory, country or user boundary, per period.

Detections (Amazon Mining Watch's yearly layers, the project's scan outputs, an uploaded polygon file) x
boundaries (AMW's indigenous territories, the countries, the basin, an uploaded polygon file) -> a tidy table of
new and cumulative mined area and detected footprint area, apportioned by the share of each detection inside a
boundary in an equal-area projection; cached by the inputs' sha256; exports (CSV, GeoJSON, KML). No Streamlit.

May import: the shared base, ``asgm.jobs`` and ``asgm.data``. It reads scan outputs as files (``scan.json``,
``detections.geojson``), not through ``asgm.scan``, its peer.
"""
