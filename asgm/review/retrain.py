"""Train with my labels: reviewed items -> a new patch store version -> the parent run's recipe retrained on the
old training data plus the reviewed items, with a leak-free split, and a before/after report.

1. ``reviewed_items``: the current labels that can become patches: mining / not mining (unsure is no training
   label) of patches of the parent run's store (the very patch, relabelled) and of windows of region scans
   (cut from the scan's own composite) with the store's bands and patch size. AMW detections have no imagery
   on this machine and are left out (fetching their imagery through STAC / Earth Engine is not built).
2. ``build_store``: ``<store>-reviewed-<N>`` (N: the newest label-history row used) holds every patch of the
   parent's store plus the reviewed ones in set ``reviewed``; provenance in ``store.json`` (``extra.reviewed``)
   and ``reviewed.csv``. Built in ``<stores>/_building/`` and moved into place when complete, so a killed job
   leaves no half store in the list.
3. ``split_with_reviews``: the parent's split, unchanged for its rows; the newest ``holdout_fraction`` of the
   reviewed items (by review order) are held out (split ``review``) and never trained on; a reviewed item on a
   test patch, or within ``split_eps_m`` (3 km) of a test patch, is dropped; one within that distance of a
   held-out reviewed item joins the held-out ones; the rest train.
4. ``compare``: the parent and the new run on the unchanged test split and on the held-out reviewed items.

The new run is a run like any other: it becomes the app's default only when a user names it in
``models/DEFAULT`` (``asgm.model.runs.default_choice``).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import numpy as np
import pandas as pd

from asgm import atomic
from asgm.config import ExperimentConfig, models_dir, stores_dir
from asgm.data.labels import HOLDOUT_FRACTION, LabelStore
from asgm.data.store import Patch, PatchStore, check_name
from asgm.errors import AsgmError, one_line
from asgm.model.store_fit import with_store_encoding

REVIEWED_SET = "reviewed"
HOLDOUT_SPLIT = "review"
TRAIN_LABEL = {"mining": 1, "not_mining": 0}
LEAK_RULE = (
    "the parent run's train/val/test rows keep their split; the newest {pct:.0f} % of the reviewed items "
    "(by review order) are held out (never trained on); a reviewed item on a test patch or within "
    "{km:g} km of one is dropped; one within {km:g} km of a held-out item is held out too; the rest train"
)


class RetrainError(AsgmError):
    """Nothing to train with, or a parent run that cannot be retrained; the message says what to do."""


class RetrainCancelled(Exception):
    """A cancel was requested while the store version was being built."""


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


@dataclass
class Selection:
    """What ``reviewed_items`` took and what it left out (with why)."""

    items: list[Reviewed] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

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


def reviewed_items(config: ExperimentConfig, labels: LabelStore | None = None) -> Selection:
    """The current labels that can train ``config``'s recipe (see the module docstring), in review order."""
    from asgm.scan import results

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
        else:
            sel.skip("AMW detection (no imagery here)")
    sel.items.sort(key=lambda x: x.history_fid)
    return sel


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
        rows = [
            {
                "sample_id": x.sample_id,
                "item": x.item,
                "label": x.label,
                "history_fid": x.history_fid,
                "reviewer": x.reviewer,
                "time": x.time,
                "note": x.note,
            }
            for x in selection.items
        ]
        atomic.write_text(
            new.root / "reviewed.csv",
            pd.DataFrame(
                rows, columns=["sample_id", "item", "label", "history_fid", "reviewer", "time", "note"]
            ).to_csv(index=False),
        )
        target = stores_dir() / name
        if target.exists():
            shutil.rmtree(target)
        new.root.rename(target)
    except BaseException:
        shutil.rmtree(building / name, ignore_errors=True)
        raise
    return PatchStore.open(name)


def split_with_reviews(
    parent_split: pd.DataFrame, selection: Selection, eps_m: float, holdout_fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The split of the new store (``sample_id``, ``split``, ``cluster``) and what happened to the reviewed
    items (see the module docstring)."""
    from asgm.data.points import nearest_distance_m

    if not 0.0 < holdout_fraction < 1.0:
        raise RetrainError(f"holdout fraction {holdout_fraction} must be between 0 and 1")
    ps = parent_split[["sample_id", "split", "cluster", "lon", "lat"]].copy()
    ps["sample_id"] = ps["sample_id"].astype(str)
    test = ps[ps["split"] == "test"]
    test_ids = set(test["sample_id"])
    on_test = [x for x in selection.items if x.sample_id in test_ids]
    usable = [x for x in selection.items if x.sample_id not in test_ids]
    n_hold = math.ceil(holdout_fraction * len(usable)) if usable else 0
    held = usable[len(usable) - n_hold :]  # the newest reviews
    rest = usable[: len(usable) - n_hold]
    xy = lambda items: np.array([[x.lon, x.lat] for x in items], dtype=float).reshape(-1, 2)  # noqa: E731
    near_test = (
        nearest_distance_m(xy(rest), test[["lon", "lat"]].to_numpy(float)) < eps_m
        if len(rest) and len(test)
        else np.zeros(len(rest), bool)
    )
    near_held = nearest_distance_m(xy(rest), xy(held)) < eps_m if len(rest) and len(held) else np.zeros(len(rest), bool)
    dropped = [x for x, t in zip(rest, near_test, strict=True) if t]
    joined = [x for x, t, h in zip(rest, near_test, near_held, strict=True) if h and not t]
    train = [x for x, t, h in zip(rest, near_test, near_held, strict=True) if not t and not h]

    reviewed_ids = {x.sample_id for x in selection.items} - test_ids
    keep = ps[~ps["sample_id"].isin(reviewed_ids)][["sample_id", "split", "cluster"]]
    next_cluster = int(pd.to_numeric(ps["cluster"], errors="coerce").max() or 0) + 1
    rows = []
    for k, x in enumerate(train):
        rows.append({"sample_id": x.sample_id, "split": "train", "cluster": next_cluster + k})
    for x in held + joined:
        rows.append({"sample_id": x.sample_id, "split": HOLDOUT_SPLIT, "cluster": -1})
    for x in dropped:  # used nowhere (a reviewed test patch keeps its test row and label)
        rows.append({"sample_id": x.sample_id, "split": "dropped", "cluster": -1})
    split = pd.concat([keep, pd.DataFrame(rows, columns=["sample_id", "split", "cluster"])], ignore_index=True)
    counts = {
        "reviewed": len(selection.items),
        "on_test_patches": len(on_test),
        "held_out": len(held),
        "held_out_by_distance": len(joined),
        "dropped_near_test": len(dropped),
        "trained": len(train),
        "skipped": dict(selection.skipped),
        "rule": LEAK_RULE.format(pct=100 * holdout_fraction, km=eps_m / 1000),
    }
    return split.sort_values("sample_id").reset_index(drop=True), counts


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
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Plan:
    """Select the reviewed items, build the store version and the split (the slow part before training)."""
    parent = parent_config(parent_run)
    sel = reviewed_items(parent, labels)
    if not sel.items:
        why = ", ".join(f"{v} {k}" for k, v in sel.skipped.items()) or "no labels at all"
        raise RetrainError(
            f"no reviewed item can train run {parent_run!r} (store {parent.store!r}): {why}. Mark "
            f"patches of {parent.store!r} or windows of a scan mining / not mining first"
        )
    name = store_name(parent, sel)
    parent_split = pd.read_csv(models_dir() / parent_run / "split.csv", dtype={"sample_id": str})
    test_ids = frozenset(parent_split.loc[parent_split["split"] == "test", "sample_id"].astype(str))
    build_store(parent, sel, name, protect=test_ids, progress=progress, cancelled=cancelled)
    split, counts = split_with_reviews(parent_split, sel, parent.split_eps_m, holdout_fraction)
    return Plan(parent_run, new_config(parent, name, epochs, run_name), split, counts)


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
) -> str:
    """Start "train with my labels" from ``parent_run`` as one background job (``asgm.jobs.runner``: progress,
    cancel, survives reloads) and return the new run's id at once. Refused here, not in the job's log, when no
    reviewed item can train the parent's recipe or an identical run is already queued or running."""
    from asgm.jobs import commands
    from asgm.model import run_jobs, runs

    parent = parent_config(parent_run)
    sel = reviewed_items(parent, labels)
    if not sel.items:
        raise RetrainError(
            f"no reviewed item can train run {parent_run!r} yet: mark patches of store "
            f"{parent.store!r} or windows of a scan mining / not mining first"
        )
    config = new_config(parent, store_name(parent, sel), epochs)
    run_jobs.refuse_duplicate(config)
    folder = queue_run(config, parent_run, len(sel.items), holdout_fraction)
    try:
        job = run_jobs.run_as_job(
            folder,
            commands.train_with_labels(parent_run, folder.run_id, epochs, holdout_fraction),
            title=f"train {folder.run_id} with {len(sel.items)} reviewed label(s) (from {parent_run})",
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
