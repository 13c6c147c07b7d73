"""The one base class of user-facing errors, so the CLI and the app can catch them in one place.

Every module's error type (``DataFetchError``, ``PointsError``, ``PatchStoreError``, ...) subclasses
``AsgmError`` and is raised with a message saying what is wrong and what to do. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class AsgmError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do."""


def one_line(exc: BaseException, limit: int = 400) -> str:
    """The cause of ``exc`` as one short line for status files, lists and pages (the full traceback
    belongs in a log). A user error is its message; anything else is prefixed with its type."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    if not isinstance(exc, AsgmError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
