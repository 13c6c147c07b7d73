"""The review loop: the items an analyst marks (store patches, scan windows, AMW detections) resolved from their
sources, the review queue (most uncertain or most confident first), and reviewed items turned into training
patches for "train with my labels". Labels themselves live in ``asgm.data.labels``.

May import: the shared base, ``asgm.jobs``, ``asgm.data``, ``asgm.sources``, ``asgm.osm``, ``asgm.model``,
``asgm.training``, ``asgm.scan`` and ``asgm.maps``.
"""
