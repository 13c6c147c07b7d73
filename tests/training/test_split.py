"""Spatial split: leak-free on the study's real points, stratified, keyed by sample_id, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asgm.data.points import haversine_m, load_points
from asgm.training.split import SplitError, cluster_points, holdout_mask, spatial_split, split_counts


def _min_dist_to_train(split: pd.DataFrame, name: str) -> float:
    """Brute-force great-circle distance (independent of the module's BallTree check)."""
    tr = split[split["split"] == "train"]
    other = split[split["split"] == name]
    d = haversine_m(
        other["lon"].to_numpy()[:, None],
        other["lat"].to_numpy()[:, None],
        tr["lon"].to_numpy()[None, :],
        tr["lat"].to_numpy()[None, :],
    )
    return float(d.min())


@pytest.mark.parametrize("sets", [("positives", "curated"), ("positives", "random")])
def test_split_leak_free_and_stratified_on_study_points(sets):
    pts = load_points(sets)
    split = spatial_split(pts, 3000.0, (0.70, 0.15, 0.15), seed=7)
    assert len(split) == len(pts) and set(split["split"]) == {"train", "val", "test"}
    for name in ("val", "test"):
        assert _min_dist_to_train(split, name) > 3000.0
    counts = split_counts(split)
    n_pos = int(pts["label"].sum())
    for name, share in zip(("train", "val", "test"), (0.70, 0.15, 0.15), strict=True):
        assert counts[name]["pos"] > 0
        assert abs(counts[name]["pos"] / n_pos - share) < 0.05  # stratified by patches, not cluster count
    # No cluster straddles two splits.
    assert (split.groupby("cluster")["split"].nunique() == 1).all()


def test_split_depends_on_sample_id_not_row_order():
    pts = load_points(("positives", "curated"))
    a = spatial_split(pts, seed=3)
    b = spatial_split(pts.sample(frac=1.0, random_state=11), seed=3)
    merged = a.merge(b, on="sample_id", suffixes=("_a", "_b"))
    assert len(merged) == len(pts)
    assert (merged["split_a"] == merged["split_b"]).all()


def test_split_is_seeded():
    pts = load_points(("positives", "curated"))
    a, b, c = spatial_split(pts, seed=1), spatial_split(pts, seed=1), spatial_split(pts, seed=2)
    assert a["split"].tolist() == b["split"].tolist()
    assert a["split"].tolist() != c["split"].tolist()


def test_eps_is_true_metres_even_far_from_the_equator():
    # At 60°N a degree of longitude is ~55.6 km: 0.05° is ~2.78 km, 0.06° ~3.34 km.
    lon = np.array([10.0, 10.05, 10.0, 10.06])
    lat = np.array([60.0, 60.0, 61.0, 61.0])
    labels = cluster_points(lon, lat, 3000.0)
    assert labels[0] == labels[1]
    assert labels[2] != labels[3]


def test_too_few_positive_clusters_is_a_clear_error():
    rows = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(6)],
            "label": [1, 1, 0, 0, 0, 0],
            "lon": [-63.0, -63.001, -62.0, -61.5, -61.0, -60.5],
            "lat": [6.0] * 6,
        }
    )
    with pytest.raises(SplitError, match="hold positives"):
        spatial_split(rows)


def test_caroni_holdout_is_the_test_set_and_leak_free():
    pts = load_points(("positives", "curated"))
    mask = holdout_mask(pts, "caroni")
    inside = pts.loc[mask, "sample_id"]
    assert 0 < mask.sum() < len(pts)
    assert ((pts.loc[mask, "lon"] >= -64.67) & (pts.loc[mask, "lon"] <= -61.5)).all()
    split = spatial_split(pts, seed=7, test_mask=mask)
    assert set(split.loc[split["split"] == "test", "sample_id"]) == set(inside)
    assert _min_dist_to_train(split, "test") > 3000.0
    assert ((split["split"] == "val") & (split["label"] == 1)).any()
