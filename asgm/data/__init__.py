"""The project's own data: labelled points, boundaries, countries, the patch store.

May import: the shared base and ``asgm.jobs``.
"""
