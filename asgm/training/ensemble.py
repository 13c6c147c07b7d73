"""An ensemble run: three or more completed runs averaged in logit space, calibrated and scored as one run.

``build`` checks that the members can be one model (completed, same store, bands, OSM layers, patch size,
input encoding and test-time augmentation, and the very same spatial split: otherwise a member's training
rows could be the ensemble's validation or test rows), joins their nets into one ``model.keras``
(``asgm.model.ensemble``), and scores it with ``asgm.training.scoring.score`` on the shared split: the
temperature and threshold are fitted on the shared validation rows to the *mean* logit, test is scored as
for any run. ``metrics.json`` holds the members' own figures beside the ensemble's (``ensemble.members``).
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import pandas as pd

from asgm import atomic
from asgm.config import ExperimentConfig
from asgm.errors import one_line
from asgm.model.ensemble import MIN_MEMBERS, build_ensemble_model
from asgm.model.runs import RunError, RunInfo, create_run, get_run, load_model, new_run_id, now, refuse_reuse
from asgm.training.evaluate import N_BOOT
from asgm.training.scoring import score

#: Config fields every member must share: what the ensemble's one input and one split are made of.
SHARED = (
    "store",
    "bands",
    "osm_layers",
    "patch_size",
    "encoding",
    "tta",
    "holdout",
    "negatives",
    "masked_limit_pos",
    "masked_limit_neg",
)
MEMBER_KEYS = ("f1", "precision", "recall", "pr_auc", "precision_at_recall_0.9", "ece", "threshold", "temperature")


class EnsembleError(RunError):
    """Runs that cannot form an ensemble; the message says which and why."""


def _split(info: RunInfo) -> pd.DataFrame:
    path = info.path / "split.csv"
    if not path.is_file():
        raise EnsembleError(f"run {info.run_id!r} has no split.csv; it cannot be an ensemble member")
    return pd.read_csv(path, dtype={"sample_id": str}).sort_values("sample_id").reset_index(drop=True)


def check_members(member_ids: list[str]) -> tuple[list[RunInfo], pd.DataFrame]:
    """The members' infos and their shared split; ``EnsembleError`` for anything that keeps them apart."""
    if len(set(member_ids)) != len(member_ids):
        raise EnsembleError(f"a run is listed twice among the members {member_ids}; list each run once")
    if len(member_ids) < MIN_MEMBERS:
        raise EnsembleError(f"an ensemble needs at least {MIN_MEMBERS} member runs, got {len(member_ids)}")
    infos = [get_run(m) for m in member_ids]
    for info in infos:
        if info.status != "completed" or info.config is None:
            raise EnsembleError(f"run {info.run_id!r} is {info.status}; ensemble members must be completed runs")
        if info.config.members:
            raise EnsembleError(f"run {info.run_id!r} is itself an ensemble; list its members instead")
    first = infos[0].config
    assert first is not None  # checked above; for mypy
    for info in infos[1:]:
        cfg = info.config
        assert cfg is not None
        differ = [f for f in SHARED if getattr(cfg, f) != getattr(first, f)]
        if differ:
            raise EnsembleError(
                f"runs {infos[0].run_id!r} and {info.run_id!r} differ in {differ}; ensemble members "
                "must read the same inputs the same way"
            )
    split = _split(infos[0])
    key = split[["sample_id", "split"]]
    for info in infos[1:]:
        other = _split(info)[["sample_id", "split"]]
        if not key.equals(other):
            raise EnsembleError(
                f"runs {infos[0].run_id!r} and {info.run_id!r} were trained on different spatial splits (their "
                "split.csv differ): one's training rows would be scored as the other's validation or test rows. "
                "Train the members with the same split_seed (different seeds are fine)"
            )
    return infos, split


def build(member_ids: list[str], name: str = "", run_id: str | None = None, n_boot: int = N_BOOT) -> str:
    """Make the ensemble run of ``member_ids`` (checked by ``check_members``) and return its run id."""
    from asgm.data.store import PatchStore

    infos, split = check_members(list(member_ids))
    base = infos[0].config
    assert base is not None
    config: ExperimentConfig = base.model_copy(
        update={
            "name": name or f"ensemble of {len(infos)}: " + ", ".join(i.run_id for i in infos),
            "members": tuple(i.run_id for i in infos),
        }
    )
    store = PatchStore.open(config.store)  # before a folder is made: a gone store leaves nothing behind
    if run_id is not None:
        refuse_reuse(run_id, config)
    folder = create_run(config, run_id or new_run_id(config), status="running")
    folder.set_status("running", pid=os.getpid(), started=now(), error=None)
    try:
        model = build_ensemble_model([load_model(i.run_id) for i in infos])
        atomic.write_text(folder.file("split.csv"), split.to_csv(index=False))
        counts = (infos[0].metrics or {}).get("counts")
        if counts:
            folder.write_json("counts.json", counts)
        with atomic.atomic_path(folder.model_path) as tmp:
            model.save(tmp)
        metrics, preds = score(model, store, config, split, n_boot=n_boot)
        archs = [i.config.architecture for i in infos if i.config is not None]
        metrics["recipe"]["architecture"] = f"ensemble of {len(infos)} ({', '.join(archs)})"
        metrics["ensemble"] = {
            "combine": "mean of the members' logits; one temperature and threshold fitted on the shared validation split",  # noqa: E501
            "members": [
                {
                    "run_id": i.run_id,
                    "architecture": i.config.architecture if i.config else None,
                    "seed": i.config.seed if i.config else None,
                    **{k: (i.metrics or {}).get(k) for k in MEMBER_KEYS},
                }
                for i in infos
            ],
        }
        metrics.update(
            {
                "store": store.name,
                "store_source": store.meta.source,
                "channels": list(config.channels),
                "counts": counts,
            }
        )
        atomic.write_text(folder.file("predictions.csv"), preds.to_csv(index=False))
        folder.write_json("metrics.json", metrics)
    except BaseException as exc:
        atomic.write_text(folder.file("error.txt"), traceback.format_exc())
        folder.set_status(
            "failed", finished=now(), error="interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(exc)
        )
        raise
    folder.set_status("completed", finished=now(), error=None, f1=metrics.get("f1"))
    return folder.run_id


def summary(run_id: str) -> dict[str, Any]:
    """The ensemble's test figures beside its members' (for the CLI)."""
    info = get_run(run_id)
    m = info.metrics or {}
    return {
        "run_id": run_id,
        "members": [r["run_id"] for r in m.get("ensemble", {}).get("members", [])],
        "ensemble": {k: m.get(k) for k in MEMBER_KEYS},
        "member_metrics": m.get("ensemble", {}).get("members", []),
        "path": str(info.path),
    }
