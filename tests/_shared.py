"""Build a costly read-only test environment once per test run, not once per xdist worker.

Under pytest-xdist every worker is its own process with its own session fixtures, so a store built or a model
trained by a session fixture was built once per core. ``once_per_run`` keeps the result in the run's shared
temporary folder (the parent of every worker's basetemp) behind a file lock: the first worker builds it, the
others wait and read it (pytest-xdist's documented pattern). Without xdist it is an ordinary temporary folder.
What is built this way must be treated as read-only by the tests.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

DONE = "_built.json"


def once_per_run(tmp_path_factory: Any, name: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict]:
    """``(folder, facts)``: ``build(folder)`` run once per test run; ``facts`` (JSON) is what it returned."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    shared = Path(tmp_path_factory.getbasetemp()).parent
    folder = shared / f"once-{name}"
    with FileLock(str(folder) + ".lock"):
        done = folder / DONE
        if done.is_file():
            return folder, json.loads(done.read_text(encoding="utf-8"))
        if folder.exists():  # a worker that died mid-build left this
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        facts = build(folder)
        done.write_text(json.dumps(facts), encoding="utf-8")
        return folder, facts
