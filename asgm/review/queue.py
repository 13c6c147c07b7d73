"""The review queue: the items of a store or a scan in the order a reviewer should see them, with what is done.

``uncertain`` puts the probability nearest the decision threshold first (|p - threshold|): the labels that teach
the model most. ``confident`` puts the highest probability first: cleaning a map of detections before
publishing it. An item is done once it has any current label (unsure included: someone looked at it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from asgm.data.labels import LabelsError, LabelStore

ORDERS: tuple[str, ...] = ("uncertain", "confident")
QUEUE_COLUMNS = ["item_id", "prob", "label"]


@dataclass
class ReviewQueue:
    """The items of one store or scan, in review order; ``items`` has ``item_id``, ``prob`` and ``label``
    (the current label, "" when not reviewed yet)."""

    source_kind: str
    source: str
    order: str
    threshold: float
    run_id: str | None
    items: pd.DataFrame

    @property
    def total(self) -> int:
        return int(len(self.items))

    @property
    def done(self) -> int:
        return int((self.items["label"] != "").sum())

    @property
    def left(self) -> int:
        return self.total - self.done

    def pending(self) -> list[str]:
        """Unreviewed item ids, in review order."""
        return [str(x) for x in self.items.loc[self.items["label"] == "", "item_id"]]

    def next_item(self, skip: tuple[str, ...] = ()) -> str | None:
        """The first unreviewed item not in ``skip`` (None when the queue is done)."""
        return next((x for x in self.pending() if x not in skip), None)

    def probability(self, item_id: str) -> float | None:
        """The probability the queue holds for an item (None when unknown or unscored)."""
        hit = self.items.loc[self.items["item_id"] == item_id, "prob"]
        return None if hit.empty or not np.isfinite(hit.iloc[0]) else float(hit.iloc[0])

    def summary(self, head: int = 10) -> dict[str, Any]:
        """Counts and the next items, for ``--json`` reports and pages."""
        nxt = self.items[self.items["label"] == ""].head(head)
        return {
            "source_kind": self.source_kind,
            "source": self.source,
            "order": self.order,
            "threshold": self.threshold,
            "run_id": self.run_id,
            "total": self.total,
            "done": self.done,
            "left": self.left,
            "next": [
                {"item_id": str(r.item_id), "prob": None if not np.isfinite(r.prob) else float(r.prob)}
                for r in nxt.itertuples()
            ],
        }


def ordered(frame: pd.DataFrame, threshold: float, order: str) -> pd.DataFrame:
    """``frame`` (``item_id``, ``prob``) sorted for review; unscored items (NaN) come last, ties by item id."""
    if order not in ORDERS:
        raise LabelsError(f"queue order {order!r} is not one of {', '.join(ORDERS)}")
    prob = frame["prob"].astype(float)
    key = (prob - threshold).abs() if order == "uncertain" else -prob
    out = frame.assign(_key=key.fillna(np.inf), _id=frame["item_id"].astype(str))
    return out.sort_values(["_key", "_id"], kind="stable").drop(columns=["_key", "_id"]).reset_index(drop=True)


def build(
    source_kind: str,
    source: str,
    probabilities: pd.DataFrame,
    threshold: float,
    order: str = "uncertain",
    run_id: str | None = None,
    labels: LabelStore | None = None,
) -> ReviewQueue:
    """A queue of ``probabilities`` (``item_id``, ``prob``) of one source, joined with the current labels."""
    current = {r["item_id"]: r["label"] for r in (labels or LabelStore()).current(source_kind, source)}
    items = ordered(probabilities[["item_id", "prob"]].copy(), threshold, order)
    items["label"] = [current.get(str(x), "") for x in items["item_id"]]
    return ReviewQueue(source_kind, source, order, float(threshold), run_id, items[QUEUE_COLUMNS])


def store_queue(
    store: str,
    run_id: str,
    order: str = "uncertain",
    labels: LabelStore | None = None,
    probabilities: pd.DataFrame | None = None,
) -> ReviewQueue:
    """The patches of a store under run ``run_id`` (its probabilities and threshold). ``probabilities``: the
    frame of ``asgm.maps.probabilities.store_probabilities`` when the caller has it already (the app's cache)."""
    if probabilities is None:
        from asgm.maps.probabilities import store_probabilities

        probabilities = store_probabilities(run_id, store)
    threshold = float(probabilities.attrs.get("threshold", 0.5))
    frame = probabilities.rename(columns={"sample_id": "item_id"})
    return build("store", store, frame, threshold, order, run_id, labels)


def scan_queue(
    scan: str, order: str = "uncertain", labels: LabelStore | None = None, root: Path | None = None
) -> ReviewQueue:
    """The scored windows of a finished scan (``"i,j"``), against the scan's high threshold."""
    from asgm.scan import results

    s = results.open_scan(scan, root)
    prob = results.window_probabilities(s)
    ii, jj = np.nonzero(np.isfinite(prob))
    frame = pd.DataFrame({"item_id": [f"{i},{j}" for i, j in zip(ii, jj, strict=True)], "prob": prob[ii, jj]})
    thr = s.thresholds
    threshold = float(thr.get("high", thr.get("threshold", 0.5)))
    return build("scan", scan, frame, threshold, order, str(s.identity.get("run_id") or "") or None, labels)
