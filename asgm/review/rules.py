"""The rules of "train with my labels" that need no store: the leak-free split of the reviewed items
(``split_with_reviews``) and the errors (``asgm.review.retrain`` re-exports them)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from asgm.data.labels import HOLDOUT_FRACTION
from asgm.errors import AsgmError

HOLDOUT_SPLIT = "review"
LEAK_RULE = (
    "the parent run's train/val/test rows keep their split; the newest {pct:.0f} % of the reviewed items "
    "(by review order) are held out (never trained on); a reviewed item on a test patch or within "
    "{km:g} km of one is dropped; one within {km:g} km of a held-out item is held out too; the rest train"
)


class RetrainError(AsgmError):
    """Nothing to train with, or a parent run that cannot be retrained; the message says what to do."""


class RetrainCancelled(Exception):
    """A cancel was requested while the store version was being built."""


def split_with_reviews(
    parent_split: pd.DataFrame, selection: Any, eps_m: float, holdout_fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The split of the new store (``sample_id``, ``split``, ``cluster``) and what happened to the reviewed items of
    ``selection`` (a ``retrain.Selection``, not imported: retrain imports this module); the rule is step 3 of
    ``asgm.review.retrain``'s docstring."""
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
