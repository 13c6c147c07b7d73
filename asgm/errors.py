"""The one base class of user-facing errors, so the CLI and the app can catch them in one place.

Every module's error type (``DataFetchError``, ``PointsError``, ``PatchStoreError``, ...) subclasses
``AsgmError`` and is raised with a message saying what is wrong and what to do. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class AsgmError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do."""

