"""What the maps and pictures show: the map's points, store probabilities, Leaflet maps and overlays,
patch images and run figures. No Streamlit.

May import: the shared base, ``asgm.jobs``, ``asgm.data``, ``asgm.sources``, ``asgm.osm``, ``asgm.model``,
``asgm.training``.
"""
