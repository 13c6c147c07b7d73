"""Train with my labels: reviewed items -> a new patch store version -> the parent run's recipe retrained on the
old training data plus the reviewed items, with a leak-free split, and a before/after report.

1. ``reviewed_items``: the current labels that can become patches: mining / not mining (unsure is no training
   label) of patches of the parent run's store (the very patch, relabelled) and of windows of region scans
   (cut from the scan's own composite) with the store's bands and patch size. AMW detections have no imagery
   on this machine: they are left out, unless ``fetch`` names a source (``stac`` / ``gee``, ``asgm labels train
   --fetch``); then ``asgm.review.fetch`` fetches each one's patch through the one fetch path of ``asgm patches
   fetch`` on the store's patch size, for the item's year, and an item whose fetch fails is skipped with why.
2. ``build_store``: ``<store>-reviewed-<N>`` (N: the newest label-history row used) holds every patch of the
   parent's store plus the reviewed ones in set ``reviewed``; provenance in ``store.json`` (``extra.reviewed``)
   and ``reviewed.csv`` (for fetched items also the source, date window, product level and scenes). Built in
   ``<stores>/_building/`` and moved into place when complete (fetched patches are staged there too and removed
   afterwards), so a killed job leaves no half store in the list.
3. ``split_with_reviews``: the parent's split, unchanged for its rows; the newest ``holdout_fraction`` of the
   reviewed items (by review order) are held out (split ``review``) and never trained on; a reviewed item on a
   test patch, or within ``split_eps_m`` (3 km) of a test patch, is dropped; one within that distance of a
   held-out reviewed item joins the held-out ones; the rest train.
4. ``compare``: the parent and the new run on the unchanged test split and on the held-out reviewed items.

The new run is a run like any other: it becomes the app's default only when a user names it in
``models/DEFAULT`` (``asgm.model.runs.default_choice``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import pandas as pd

from asgm import atomic
from asgm.config import ExperimentConfig, models_dir, stores_dir
from asgm.data.labels import HOLDOUT_FRACTION, LabelStore
from asgm.data.store import Patch, PatchStore, check_name
from asgm.errors import AsgmError, one_line
from asgm.model.store_fit import with_store_encoding
from asgm.review.fetch import PROVENANCE_COLUMNS
from asgm.review.rules import HOLDOUT_SPLIT as HOLDOUT_SPLIT  # re-exported: the page and tests name them here
from asgm.review.rules import RetrainCancelled, RetrainError, split_with_reviews

REVIEWED_SET = "reviewed"
TRAIN_LABEL = {"mining": 1, "not_mining": 0}


@dataclass
class Reviewed:
    """One reviewed item ready to become a patch."""

    sample_id: str
    item: str
    label: int
    history_fid: int
    lon: float
    lat: float
    patch: Callable[[], Patch] | None  # None: the parent store's own patch (relabelled)
    reviewer: str = ""
    time: str = ""
    note: str = ""
    fetch: Any = None  # the date window (``asgm.review.fetch.Window``) of an item whose imagery is to be fetched
    provenance: dict[str, str] | None = None  # where a fetched item's imagery came from


@dataclass
class Selection:
    """What ``reviewed_items`` took and what it left out (with why)."""

    items: list[Reviewed] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    pending: list[Reviewed] = field(default_factory=list)  # to be fetched (``fetch_imagery``)
    fetch_failed: dict[str, str] = field(default_factory=dict)  # item -> why its fetch failed

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def parent_config(run_id: str) -> ExperimentConfig:
    """The completed parent run's config, its input encoding resolved."""
    from asgm.model import runs

    info = runs.get_run(run_id)
    if info.status != "completed" or info.config is None:
        raise RetrainError(f"run {run_id!r} is {info.status}; train with your labels from a completed run")
    if not (info.path / "split.csv").is_file():
        raise RetrainError(f"run {run_id!r} has no split.csv; retrain it first (its test split is the yardstick)")
    return with_store_encoding(cast(ExperimentConfig, info.config))


def _scan_id(scan: str, window: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"rev-{scan}-{window.replace(',', '-')}")[:120]


def reviewed_items(config: ExperimentConfig, labels: LabelStore | None = None, fetch: str | None = None) -> Selection:
    """The current labels that can train ``config``'s recipe (see the module docstring), in review order; with
    ``fetch`` (``stac`` / ``gee``) the AMW detections go to ``pending``, to be fetched by ``fetch_imagery``."""
    from asgm.config import S2_BANDS
    from asgm.review.fetch import FETCH_SOURCES, item_window
    from asgm.scan import results

    if fetch is not None and fetch not in FETCH_SOURCES:
        raise RetrainError(f"cannot fetch imagery from {fetch!r}; use one of {', '.join(FETCH_SOURCES)}")

    base = PatchStore.open(config.store)
    base_ids = set(base.index()["sample_id"].astype(str))
    sel = Selection()
    scans: dict[str, Any] = {}
    for r in (labels or LabelStore()).current():
        label = TRAIN_LABEL.get(r["label"])
        if label is None:
            sel.skip("unsure (no training label)")
            continue
        common = {
            "item": r["item"],
            "label": label,
            "history_fid": int(r["history_fid"]),
            "lon": float(r["lon"]),
            "lat": float(r["lat"]),
            "reviewer": r["reviewer"] or "",
            "time": r["time"],
            "note": r["note"] or "",
        }
        if r["source_kind"] == "store":
            if r["source"] != base.name or r["item_id"] not in base_ids:
                sel.skip(f"patch of another store than {base.name!r}")
                continue
            sel.items.append(Reviewed(sample_id=r["item_id"], patch=None, **common))
        elif r["source_kind"] == "scan":
            try:
                s = scans.get(r["source"]) or scans.setdefault(r["source"], results.open_scan(r["source"]))
                i, j = results.parse_window(r["item_id"])
            except AsgmError:
                sel.skip("window of a scan that is gone or unfinished")
                continue
            if int(s.grid.window) != int(config.patch_size) or config.osm_layers:
                sel.skip("scan window of another patch size, or the recipe needs OSM masks")
                continue
            sel.items.append(
                Reviewed(
                    sample_id=_scan_id(s.name, r["item_id"]), patch=partial(results.window_patch, s, i, j), **common
                )
            )
        elif fetch is None:
            sel.skip("AMW detection (no imagery here; --fetch stac|gee fetches it)")
        elif not set(base.meta.bands) <= set(S2_BANDS) or config.osm_layers:
            sel.skip("AMW detection: the store's bands are not Sentinel-2 bands, or the recipe needs OSM masks")
        else:
            window = item_window(r["year"], base.meta.date_start, base.meta.date_end)
            sid = _scan_id(f"amw-{r['source']}", str(r["item_id"]))
            sel.pending.append(Reviewed(sample_id=sid, patch=None, fetch=window, **common))
    sel.items.sort(key=lambda x: x.history_fid)
    return sel


def fetch_imagery(
    config: ExperimentConfig,
    selection: Selection,
    kind: str,
    progress: Callable[..., None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Fetch the pending items' imagery (``asgm.review.fetch``) into a staging store under ``_building/``: those
    fetched join ``selection.items``, the others are counted in ``selection.skipped`` with why. Call ``clear``
    on ``staging_dir(config)`` when done."""
    from asgm.review import fetch

    base = PatchStore.open(config.store)
    got = fetch.fetch_pending(
        kind,
        int(base.meta.size),
        tuple(base.meta.bands),
        selection.pending,
        staging_dir(config),
        skip=selection.skip,
        failures=selection.fetch_failed,
        progress=progress,
        cancelled=cancelled,
    )
    selection.pending = []
    selection.items = sorted([*selection.items, *got], key=lambda x: x.history_fid)
    if cancelled is not None and cancelled():
        raise RetrainCancelled()


def staging_dir(config: ExperimentConfig) -> Any:
    """Where ``fetch_imagery`` stages fetched patches (removed after the store version is built)."""
    return stores_dir() / "_building" / f"{check_name(config.store[:50])}-fetched"


def store_name(config: ExperimentConfig, selection: Selection) -> str:
    """``<store>-reviewed-<newest history row used>``: one version per state of the labels."""
    newest = max((x.history_fid for x in selection.items), default=0)
    suffix = f"-reviewed-{newest}"
    return check_name(config.store[: 64 - len(suffix)] + suffix)


def build_store(
    config: ExperimentConfig,
    selection: Selection,
    name: str,
    protect: frozenset[str] = frozenset(),
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> PatchStore:
    """The new store version (see the module docstring). Patches in ``protect`` (the parent's test split) keep
    their label and set even when reviewed: the test split stays what the parent was measured on."""
    base = PatchStore.open(config.store)
    by_id = {x.sample_id: x for x in selection.items}
    building = stores_dir() / "_building"
    shutil.rmtree(building / name, ignore_errors=True)
    provenance = {
        "from_store": base.name,
        "labels": str(LabelStore().path),
        "items": len(selection.items),
        "newest_history_fid": max((x.history_fid for x in selection.items), default=0),
        "skipped": dict(selection.skipped),
        "fetched": sum(1 for x in selection.items if x.provenance),
        "fetch_failed": dict(selection.fetch_failed),
    }
    meta = replace(
        base.meta,
        name=name,
        created=_now(),
        patches=None,
        by_label=None,
        by_set=None,
        description=f"{base.meta.description or base.name} + {len(selection.items)} reviewed item(s)",
        extra={**base.meta.extra, "reviewed": provenance},
    )
    new = PatchStore.create(meta, root=building, overwrite=True)
    osm = base.osm_info()
    base_ids = base.sample_ids()
    extra = [(x, x.patch) for x in selection.items if x.patch is not None]
    total, done = len(base_ids) + len(extra), 0

    def patches() -> Iterator[Patch]:
        nonlocal done
        for sid in base_ids:
            p = base.read_patch(sid)
            if sid in by_id and sid not in protect:
                p = replace(p, label=by_id[sid].label, set=REVIEWED_SET)
            yield p
            done += 1
            _tick()
        for x, cut in extra:
            p = cut()
            if tuple(p.bands) != tuple(base.meta.bands) or p.grid.size != base.meta.size:
                raise RetrainError(
                    f"{x.item}: its imagery has bands {list(p.bands)} at {p.grid.size} px, the store "
                    f"{base.name!r} holds {list(base.meta.bands)} at {base.meta.size} px; un-mark it "
                    "or train from a run of matching bands"
                )
            yield replace(p, sample_id=x.sample_id, label=x.label, set=REVIEWED_SET)
            done += 1
            _tick()

    def _tick() -> None:
        if progress is not None:
            progress(done, total)
        if cancelled is not None and cancelled():
            raise RetrainCancelled()

    try:
        new.write_patches(patches())
        if osm is not None:
            for sid in base_ids:
                masks = base.read_osm(sid)
                if masks is not None:
                    new.write_osm(sid, masks[0], masks[1])
            new.write_osm_info(osm)
        columns = ["sample_id", "item", "label", "history_fid", "reviewer", "time", "note", *PROVENANCE_COLUMNS]
        rows = [
            {
                "sample_id": x.sample_id,
                "item": x.item,
                "label": x.label,
                "history_fid": x.history_fid,
                "reviewer": x.reviewer,
                "time": x.time,
                "note": x.note,
                **(x.provenance or {}),
            }
            for x in selection.items
        ]
        atomic.write_text(new.root / "reviewed.csv", pd.DataFrame(rows, columns=columns).to_csv(index=False))
        target = stores_dir() / name
        if target.exists():
            shutil.rmtree(target)
        new.root.rename(target)
    except BaseException:
        shutil.rmtree(building / name, ignore_errors=True)
        raise
    return PatchStore.open(name)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Plan:
    """Everything the training step needs: the new config, its store and split, and the counts."""

    parent_run: str
    config: ExperimentConfig
    split: pd.DataFrame
    counts: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"parent_run": self.parent_run, "store": self.config.store, "counts": self.counts}


def new_config(
    parent: ExperimentConfig, name: str, epochs: int | None = None, run_name: str | None = None
) -> ExperimentConfig:
    """The parent's recipe on the new store (its encoding kept explicit: the new store is the parent's pixels)."""
    return parent.model_copy(
        update={
            "store": name,
            "epochs": int(epochs or parent.epochs),
            "name": run_name or f"{parent.name or parent.store} + reviewed labels",
        }
    )


def prepare(
    parent_run: str,
    *,
    epochs: int | None = None,
    run_name: str | None = None,
    holdout_fraction: float = HOLDOUT_FRACTION,
    labels: LabelStore | None = None,
    progress: Callable[..., None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    fetch: str | None = None,
) -> Plan:
    """Select the reviewed items, fetch the imagery of those with none here when ``fetch`` names a source, build
    the store version and the split (the slow part before training)."""
    from asgm.review.fetch import clear

    parent = parent_config(parent_run)
    sel = reviewed_items(parent, labels, fetch)
    try:
        if sel.pending and fetch is not None:
            fetch_imagery(parent, sel, fetch, progress, cancelled)
        return _prepare(parent_run, parent, sel, epochs, run_name, holdout_fraction, progress, cancelled)
    finally:
        clear(staging_dir(parent))


def _prepare(
    parent_run: str,
    parent: ExperimentConfig,
    sel: Selection,
    epochs: int | None,
    run_name: str | None,
    holdout_fraction: float,
    progress: Callable[..., None] | None,
    cancelled: Callable[[], bool] | None,
) -> Plan:
    if not sel.items:
        why = ", ".join(f"{v} {k}" for k, v in sel.skipped.items()) or "no labels at all"
        raise RetrainError(
            f"no reviewed item can train run {parent_run!r} (store {parent.store!r}): {why}. Mark "
            f"patches of {parent.store!r} or windows of a scan mining / not mining first (or fetch the imagery of "
            "AMW detections with --fetch stac|gee)"
        )
    name = store_name(parent, sel)
    parent_split = pd.read_csv(models_dir() / parent_run / "split.csv", dtype={"sample_id": str})
    test_ids = frozenset(parent_split.loc[parent_split["split"] == "test", "sample_id"].astype(str))
    build_store(parent, sel, name, protect=test_ids, progress=progress, cancelled=cancelled)
    split, counts = split_with_reviews(parent_split, sel, parent.split_eps_m, holdout_fraction)
    counts["fetched"] = sum(1 for x in sel.items if x.provenance)
    counts["fetch_failed"] = dict(sel.fetch_failed)
    counts["warnings"] = _level_warnings(parent, sel)
    return Plan(parent_run, new_config(parent, name, epochs, run_name), split, counts)


def _level_warnings(parent: ExperimentConfig, sel: Selection) -> list[str]:
    """Fetched patches of another processing level than the parent store's (L2A from STAC into an L1C store)."""
    from asgm.sources.common import product_level_warning

    base_level = PatchStore.open(parent.store).meta.product_level
    levels = sorted({x.provenance["product_level"] for x in sel.items if x.provenance})
    return [w for level in levels if (w := product_level_warning(base_level, level))]


def queue_run(config: ExperimentConfig, parent_run: str, n_labels: int, holdout_fraction: float) -> Any:
    """A queued run folder for ``config`` marked as trained with reviewed labels (``runs.REVIEWED_MARKER``: it is
    the app's default only when a user names it)."""
    from asgm.model import runs

    folder = runs.create_run(config, runs.new_run_id(config), status="queued")
    folder.write_json(
        runs.REVIEWED_MARKER,
        {"parent_run": parent_run, "labels": n_labels, "holdout_fraction": holdout_fraction, "requested": runs.now()},
    )
    return folder


def launch(
    parent_run: str,
    *,
    epochs: int | None = None,
    holdout_fraction: float = HOLDOUT_FRACTION,
    max_active: int | None = None,
    labels: LabelStore | None = None,
    fetch: str | None = None,
) -> str:
    """Start "train with my labels" from ``parent_run`` as one background job (``asgm.jobs.runner``: progress,
    cancel, survives reloads) and return the new run's id at once. Refused here, not in the job's log, when no
    reviewed item can train the parent's recipe or an identical run is already queued or running."""
    from asgm.jobs import commands
    from asgm.model import run_jobs, runs

    parent = parent_config(parent_run)
    sel = reviewed_items(parent, labels, fetch)
    n_items = len(sel.items) + len(sel.pending)  # the pending ones may yet fail to fetch: the job says so
    if not n_items:
        raise RetrainError(
            f"no reviewed item can train run {parent_run!r} yet: mark patches of store "
            f"{parent.store!r} or windows of a scan mining / not mining first"
        )
    config = new_config(parent, store_name(parent, Selection(items=sel.items + sel.pending)), epochs)
    run_jobs.refuse_duplicate(config)
    folder = queue_run(config, parent_run, n_items, holdout_fraction)
    try:
        job = run_jobs.run_as_job(
            folder,
            commands.train_with_labels(parent_run, folder.run_id, epochs, holdout_fraction, fetch),
            title=f"train {folder.run_id} with {n_items} reviewed label(s) (from {parent_run})",
            key=f"train-with-labels {config.store} {epochs}",
            max_active=max_active,
        )
    except Exception:
        shutil.rmtree(folder.root, ignore_errors=True)
        raise
    folder.set_status("queued", pid=job.pid, launched=runs.now(), job_id=job.job_id)
    return folder.run_id


def failed(run_id: str, exc: BaseException) -> None:
    """Record a failure before training started (building the store version) in the run folder."""
    import traceback

    from asgm.model import runs

    folder = runs.RunFolder.of(run_id)
    if folder.root.exists():
        atomic.write_text(folder.file("error.txt"), "".join(traceback.format_exception(exc)))
        folder.set_status("failed", finished=runs.now(), error=one_line(exc))
