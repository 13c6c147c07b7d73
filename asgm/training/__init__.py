"""Training and evaluation: tf.data pipeline, spatial split, recipe, one training run, scoring, metrics,
the study's experiments.

May import: the shared base, ``asgm.jobs``, ``asgm.data``, ``asgm.sources``, ``asgm.osm``, ``asgm.model``.
"""
