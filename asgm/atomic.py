"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

A reader never sees a half-written file, and a crash leaves at most a stray ``.tmp-*`` file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asgm.errors import AsgmError

#: errno values that mean "the disk (or the user's quota / file size limit) is full".
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(AsgmError):
    """A write failed for lack of space; nothing was replaced."""


def _full(exc: OSError, target: Path) -> DiskFullError | None:
    """A ``DiskFullError`` for an out-of-space ``exc`` (None for any other OSError)."""
    if exc.errno not in _FULL:
        return None
    return DiskFullError(
        f"no space left to write {target} ({os.strerror(exc.errno)}); free disk space (or raise the quota) "
        "and try again. The previous version of the file, if any, is unchanged"
    )


def _umask() -> int:
    """The process umask (read by setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    Running out of space (ENOSPC, quota, file size limit) is a ``DiskFullError``; ``target`` is untouched."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", suffix=suffix or target.suffix, dir=target.parent)
    except OSError as exc:
        full = _full(exc, target)
        if full is None:
            raise
        raise full from exc
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file 0600; a file written here should have the mode any new file gets (0644 under
    # umask 0022), so a server running as another user can read it.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        full = _full(exc, target)
        if full is None:
            raise
        raise full from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: str | Path, text: str) -> None:
    """Atomically write a text file (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | Path, data: bytes) -> None:
    """Atomically write a binary file."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | Path, obj: Any) -> None:
    """Atomically write JSON (indented, UTF-8)."""
    write_text(target, json.dumps(obj, indent=2, default=str) + "\n")
