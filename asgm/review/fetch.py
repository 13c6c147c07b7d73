"""Imagery for reviewed items that have none on this machine (Amazon Mining Watch detections), fetched through
the project's one Sentinel-2 fetch path (``asgm.sources.make_source`` + ``asgm.sources.common.fetch_points``, the
driver behind ``asgm patches fetch``) when "train with my labels" is asked to (``--fetch stac|gee``).

Each item is fetched on the parent store's patch size, for its own year (``[year-01-01, year+1-01-01)``), else
the parent store's date window, else the source's default year; the patches land in a staging store under
``<stores>/_building/`` that ``retrain.build_store`` copies from (the parent's bands picked out of the 12
Sentinel-2 bands) and that is removed afterwards. A fetch that fails (no scene, every observation cloudy, the
service unreachable, no credentials) skips the item with its reason; a failure that stops the source (network,
credentials, quota) skips every item not yet fetched with that reason. Nothing here raises for a failed fetch.

Never run against the real Earth Search or Earth Engine services on this machine (docs/live-services.md); the
tests use the local Earth Engine stand-in and the local STAC API with COG assets. The band subset for a store of
fewer bands (``_read``) has no test yet.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from asgm.data.store import Patch, PatchStore
from asgm.errors import AsgmError, one_line

FETCH_SOURCES = ("stac", "gee")
#: ``Reviewed.fetch`` of an item fetched here: its provenance columns in ``reviewed.csv``.
PROVENANCE_COLUMNS = ("fetched_from", "date_start", "date_end", "product_level", "scenes", "window_from")


@dataclass(frozen=True)
class Window:
    """The date window an item's imagery is fetched for, and where it came from (``year`` / ``store`` /
    ``default``)."""

    start: str | None
    end: str | None
    source: str


def item_window(year: Any, store_start: str, store_end: str) -> Window:
    """The item's year as a window, else the parent store's dates, else the source's default (the study year)."""
    try:
        y = int(year)
    except (TypeError, ValueError):
        y = 0
    if 2016 <= y <= 2100:  # Sentinel-2A flew from 2015-06-23: a 2015 window would start before it
        return Window(f"{y}-01-01", f"{y + 1}-01-01", "year")
    if store_start and store_end:
        return Window(store_start, store_end, "store")
    return Window(None, None, "default")


def _short(exc: BaseException) -> str:
    """The error's first line, without the resume hint ``fetch_points`` adds for the CLI."""
    return one_line(exc.__cause__ if isinstance(exc.__cause__, AsgmError) else exc)


def _reason(kind: str, error_type: str, message: str) -> str:
    """The skipped-count key of one failed fetch: one line per kind of failure, not per item."""
    if error_type == "NoSceneError":
        return f"not fetched ({kind}): no Sentinel-2 scene covers it in its window"
    if error_type == "CloudyCompositeError":
        return f"not fetched ({kind}): every observation in its window is cloudy or masked"
    return f"not fetched ({kind}): {message}"


def fetch_pending(
    kind: str,
    size: int,
    bands: tuple[str, ...],
    pending: list[Any],
    staging: Path,
    *,
    skip: Callable[[str], None],
    failures: dict[str, str],
    progress: Callable[..., None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int = 2,
) -> list[Any]:
    """Fetch the pending ``Reviewed`` items (their ``fetch`` a ``Window``) with source ``kind`` into stores under
    ``staging``; returns the fetched items, each with its ``patch`` reader and ``provenance`` set. Failures go to
    ``skip(reason)`` and ``failures[item] = message``; ``cancelled()`` stops early (the rest is not fetched)."""
    from asgm.config import S2_BANDS
    from asgm.sources import make_source
    from asgm.sources.common import fetch_points, store_meta

    by_window: dict[Window, list[Any]] = {}
    for x in pending:
        by_window.setdefault(x.fetch, []).append(x)
    total, done_before = len(pending), 0
    fetched: list[Any] = []
    stopped: str | None = None  # a failure that stops the source skips every item after it
    stop = threading.Event()
    for n, (window, group) in enumerate(by_window.items()):
        if stopped is None and cancelled is not None and cancelled():
            stop.set()
        if stopped is not None or stop.is_set():
            for x in group:
                _fail(x, stopped or f"not fetched ({kind}): cancelled", stopped or "cancelled", skip, failures)
            continue
        base = done_before

        def tick(done: int, _total: int, base: int = base) -> None:
            if progress is not None:
                progress(base + done, total, f"fetching imagery of reviewed items from {kind}")
            if cancelled is not None and cancelled():
                stop.set()

        store: PatchStore | None = None
        report = None
        try:
            source = make_source(kind, size, window.start, window.end)
        except AsgmError as exc:  # this window only (a date the source refuses): the other windows go on
            for x in group:
                _fail(x, f"not fetched ({kind}): {one_line(exc)}", one_line(exc), skip, failures)
            done_before += len(group)
            continue
        try:
            source.connect()
            store = PatchStore.create(store_meta(source, f"fetch-{n}"), root=staging, overwrite=True)
            points = pd.DataFrame(
                [
                    {"sample_id": x.sample_id, "label": x.label, "set": "reviewed", "lon": x.lon, "lat": x.lat}
                    for x in group
                ]
            )
            report = fetch_points(source, points, store, workers=workers, progress=tick, stop=stop)
        except (AsgmError, OSError) as exc:
            # A source-wide failure: credentials, project, network, quota (fetch_points stops on those); what
            # was written before it is kept, the rest of this window and every later one is skipped.
            stopped = f"not fetched ({kind}): {_short(exc)}"
        written = set(store.index()["sample_id"].astype(str)) if store is not None else set()
        for x in group:
            if x.sample_id in written and store is not None:
                fetched.append(_with_patch(x, store, source, window, bands if tuple(bands) != S2_BANDS else None))
            elif report is not None and x.sample_id in report.failed:
                msg = report.failed[x.sample_id]
                _fail(x, _reason(kind, report.failed_type.get(x.sample_id, ""), msg), msg, skip, failures)
            else:
                why = stopped or f"not fetched ({kind}): cancelled"
                _fail(x, why, why, skip, failures)
        done_before += len(group)
    return fetched


def _fail(x: Any, reason: str, message: str, skip: Callable[[str], None], failures: dict[str, str]) -> None:
    skip(reason)
    failures[x.item] = message


def _with_patch(x: Any, store: PatchStore, source: Any, window: Window, bands: tuple[str, ...] | None) -> Any:
    from dataclasses import replace

    idx = store.index().set_index("sample_id")
    row = idx.loc[x.sample_id]
    provenance = {
        "fetched_from": source.name,
        "date_start": str(row["date_start"]),
        "date_end": str(row["date_end"]),
        "product_level": str(row["product_level"]),
        # A median composite of every clear scene in the window: no single scene id to record.
        "scenes": f"median of the clear scenes in [{row['date_start']}, {row['date_end']}) "
        + (f"from {source.url} {source.collection}" if source.name == "stac" else "from Earth Engine S2_HARMONIZED"),
        "window_from": window.source,
    }
    return replace(x, patch=partial(_read, store, x.sample_id, bands), provenance=provenance)


def _read(store: PatchStore, sample_id: str, bands: tuple[str, ...] | None) -> Patch:
    """The staged patch, with only ``bands`` (the parent store's) when it holds fewer than the 12."""
    from dataclasses import replace

    p = store.read_patch(sample_id)
    if bands is None:
        return p
    pick = [p.bands.index(b) for b in bands]
    return replace(p, data=p.data[pick], bands=tuple(bands))


def clear(staging: Path) -> None:
    """Remove the staging stores."""
    shutil.rmtree(staging, ignore_errors=True)
