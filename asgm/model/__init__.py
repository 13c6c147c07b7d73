"""The model and what it needs to classify: the CNNs, the one patch->input function, calibration, the run
store and the one inference path.

May import: the shared base, ``asgm.jobs``, ``asgm.data``, ``asgm.sources``, ``asgm.osm``.
"""
