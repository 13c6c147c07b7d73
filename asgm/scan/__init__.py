"""Region scans: the area of interest, the window grid, tiles scored in batches, outputs (COG + GeoJSON),
change between years, scans asked for from the app and their results.

May import: the shared base, ``asgm.jobs``, ``asgm.data``, ``asgm.sources``, ``asgm.osm``, ``asgm.model``,
``asgm.training``.
"""
