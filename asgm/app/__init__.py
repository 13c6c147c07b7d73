"""Streamlit glue for the pages (``app.py``, ``pages/``): the only package of ``asgm`` that imports streamlit.

- ``asgm.app.page``: page setup, the selected run, error boxes, links;
- ``asgm.app.loaders``: cached loaders (stores, patches, models, predictions) and click-to-classify with them;
- ``asgm.app.assets``: local Leaflet/jQuery and reference layers served from ``static/``;
- ``asgm.app.prepare``: the first-start "prepare the demo" job (``asgm demo prepare``) seen from the app.

Everything that does not need Streamlit lives in the core (``asgm.maps.points``, ``asgm.model.inference``,
``asgm.training.experiments``, ``asgm.model.store_fit``, ...). TensorFlow is never imported at module level here, so the
map and home pages open fast.

May import: every core package (it is the top, beside ``asgm.cli``, which it never imports).
"""
