"""The Map page's data rules, without Streamlit."""

from __future__ import annotations

import pandas as pd

from asgm.data.points import haversine_m
from asgm.maps.points import CLICK_RADIUS_M, clicked_patch, combine_points, filter_points


def _points() -> pd.DataFrame:
    index = pd.DataFrame(
        {
            "sample_id": ["p1", "n1"],
            "label": [1, 0],
            "set": ["positives", "curated"],
            "lon": [-63.0, -62.0],
            "lat": [6.0, 6.0],
        }
    )
    study = pd.DataFrame(
        {
            "sample_id": ["p1", "s9"],
            "label": [1, 0],
            "set": ["positives", "random"],
            "lon": [-63.0, -63.5],
            "lat": [6.0, 6.5],
        }
    )
    pred = pd.DataFrame({"sample_id": ["p1", "n1"], "split": ["test", "val"], "prob": [0.2, 0.9], "pred": [0, 1]})
    return combine_points(study, index, pred)


def test_combine_marks_patches_and_outcomes():
    pts = _points().set_index("sample_id")
    assert list(pts.index) == ["p1", "n1", "s9"]  # the union by sample_id, store rows first
    assert pts["has_patch"].to_dict() == {"p1": True, "n1": True, "s9": False}
    assert pts["outcome"].to_dict() == {"p1": "FN", "n1": "FP", "s9": ""}
    assert list(filter_points(_points(), errors_only=True)["sample_id"]) == ["p1", "n1"]
    assert list(filter_points(_points(), splits=["other"])["sample_id"]) == ["s9"]


def test_click_opens_the_nearest_patch_within_the_radius_only():
    pts = _points()
    near_lon = -63.0 + 0.002  # ~220 m east of p1
    assert haversine_m(near_lon, 6.0, -63.0, 6.0) < CLICK_RADIUS_M
    assert clicked_patch(pts, near_lon, 6.0) == ("p1", None)
    # Next to s9, which has no patch: no patch opens, and the message names the nearest labelled point.
    sid, msg = clicked_patch(pts, -63.5, 6.5 + 0.01)
    assert sid is None and "No patch at lon -63.5000" in msg and "**s9**" in msg and "1.1 km away" in msg
