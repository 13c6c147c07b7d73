"""The user-facing error types of every module, so the CLI and the app can catch them in one place.

Each is raised with a message that says what is wrong and what to do. Modules register theirs here
(append to ``USER_ERRORS``) rather than the CLI importing every module up front.
"""

from __future__ import annotations

from asgm.osm import OsmError
from asgm.points import PointsError
from asgm.registry import DataFetchError
from asgm.sources.common import SourceError
from asgm.store import PatchStoreError

USER_ERRORS: tuple[type[Exception], ...] = (DataFetchError, PointsError, PatchStoreError, OsmError, SourceError, FileNotFoundError, ValueError)
