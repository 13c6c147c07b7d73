"""The spatial prior of Earth Genome's scans: a dual threshold with isolation.

Mines come in clusters; a lone positive far from any other is more often a false alarm (a sand bar, a
cloud edge, a quarry). So a patch is a *candidate* when its probability clears ``t_main``; a candidate is
*isolated* when fewer than ``min_neighbours`` other candidates lie among its ``k`` nearest patches within
``radius_m``; an isolated candidate is kept only when it also clears ``t_iso``. Earth Genome's defaults
(July 2026 detector): t_main 0.43, t_iso 0.75, k 5, 3 km, at least one neighbour.

"Its k nearest" are the nearest scored patches (``among="patches"``, the default): on a scan grid those are
the adjacent windows, so a candidate is isolated when none of them is one. Patches tied with the k-th
nearest all count (on a grid, which of four diagonal windows is "fifth nearest" is otherwise arbitrary).
``among="candidates"`` reads it as the k nearest candidates instead: then a candidate is isolated when no
other candidate lies within the radius at all (a mining district rather than a blob).

Points are given as metric coordinates: a UTM grid for scan windows, ``lonlat_xyz`` for points anywhere
(3-D coordinates on the sphere; chords differ from great-circle distances by < 1 mm at 3 km).
No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from asgm.errors import AsgmError

EARTH_RADIUS_M = 6_371_008.8
#: What "its k nearest" are: the nearest scored patches, or the nearest candidates.
AMONG = ("patches", "candidates")


class SpatialPriorError(AsgmError):
    """Settings of the spatial prior that cannot work; the message says which and what to use."""


@dataclass(frozen=True)
class SpatialPrior:
    """The rule's settings (defaults: Earth Genome's)."""

    t_main: float = 0.43
    t_iso: float = 0.75
    k: int = 5
    radius_m: float = 3000.0
    min_neighbours: int = 1
    among: str = "patches"

    def __post_init__(self) -> None:
        if self.among not in AMONG:
            raise SpatialPriorError(
                f"the spatial prior counts neighbours among {' or '.join(AMONG)}, not {self.among!r}"
            )
        if not 0.0 <= self.t_main <= self.t_iso <= 1.0:
            raise SpatialPriorError(
                f"the spatial prior needs 0 <= t_main <= t_iso <= 1 (got t_main={self.t_main}, "
                f"t_iso={self.t_iso}); Earth Genome uses 0.43 and 0.75"
            )
        if self.k < 1 or not 1 <= self.min_neighbours <= self.k:
            raise SpatialPriorError(
                f"the spatial prior needs k >= 1 and 1 <= min_neighbours <= k (got k={self.k}, "
                f"min_neighbours={self.min_neighbours}); Earth Genome uses k=5, 1 neighbour"
            )
        if not self.radius_m > 0:
            raise SpatialPriorError(f"the spatial prior's radius must be positive metres, got {self.radius_m}")

    def describe(self) -> dict[str, Any]:
        """The settings and the rule in words (recorded in scan summaries and predict reports)."""
        return {
            **asdict(self),
            "rule": (
                f"candidate: prob >= t_main; isolated: fewer than {self.min_neighbours} other candidate(s) among its "
                f"{self.k} nearest {self.among} within {self.radius_m:g} m; an isolated candidate needs prob >= t_iso"
            ),
        }


@dataclass
class PriorDecision:
    """Per point: candidate, isolated, other candidates near it (among its k nearest within the radius), decision."""

    candidate: np.ndarray
    isolated: np.ndarray
    neighbours: np.ndarray
    decision: np.ndarray

    def counts(self) -> dict[str, int]:
        """How many points were candidates, isolated, dropped for isolation, and kept."""
        dropped = self.candidate & self.isolated & (self.decision == 0)
        return {
            "candidates": int(self.candidate.sum()),
            "isolated": int(self.isolated.sum()),
            "dropped_isolated": int(dropped.sum()),
            "kept": int(self.decision.sum()),
        }


def lonlat_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(n, 3) metric coordinates of lon/lat degrees on the sphere: for ``apply_prior`` on points anywhere."""
    lo, la = np.radians(np.asarray(lon, np.float64)), np.radians(np.asarray(lat, np.float64))
    return EARTH_RADIUS_M * np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def apply_prior(xy: np.ndarray, prob: np.ndarray, prior: SpatialPrior | None = None) -> PriorDecision:
    """The dual threshold with isolation on points ``xy`` ((n, 2) or (n, 3) metres) with probabilities
    ``prob`` (NaN: not scored, never a candidate nor a neighbour)."""
    from scipy.spatial import cKDTree

    prior = prior or SpatialPrior()
    xy = np.asarray(xy, np.float64)
    p = np.asarray(prob, np.float64)
    if xy.ndim != 2 or len(xy) != len(p):
        raise ValueError(f"xy must be (n, 2|3) for n={len(p)} probabilities, got shape {xy.shape}")
    scored = ~np.isnan(p)
    candidate = np.nan_to_num(p, nan=-1.0) >= prior.t_main
    neighbours = np.zeros(len(p), np.int64)
    pool = np.flatnonzero(candidate if prior.among == "candidates" else scored)
    idx = np.flatnonzero(candidate)
    if len(idx) and len(pool) > 1:
        tree = cKDTree(xy[pool])
        # k + 1 hits hold the point itself; a few more are asked for so that ties with the k-th nearest all count.
        k = min(prior.k + 1 + 8, len(pool))
        dist, hit = tree.query(xy[idx], k=k, distance_upper_bound=np.nextafter(prior.radius_m, np.inf))
        dist, hit = np.asarray(dist).reshape(len(idx), k), np.asarray(hit).reshape(len(idx), k)
        found = np.isfinite(dist)
        point = np.where(found, pool[np.minimum(hit, len(pool) - 1)], -1)  # the hit's index into xy
        others = found & (point != idx[:, None])
        # distance of the k-th nearest other patch (inf when fewer lie within the radius)
        ranked = np.sort(np.where(others, dist, np.inf), axis=1)
        kth = ranked[:, min(prior.k, k) - 1][:, None]
        near = others & (dist <= kth * (1 + 1e-9) + 1e-9)
        is_cand = np.zeros(dist.shape, bool)
        is_cand[near] = candidate[point[near]]
        neighbours[idx] = is_cand.sum(axis=1)
    isolated = candidate & (neighbours < prior.min_neighbours)
    keep = candidate & (~isolated | (np.nan_to_num(p, nan=-1.0) >= prior.t_iso))
    return PriorDecision(candidate, isolated, neighbours, keep.astype(np.int64))
