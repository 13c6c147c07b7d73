"""The spatial prior (dual threshold with isolation) on hand-made point layouts whose answer is known."""

import numpy as np
import pytest

from asgm.model.spatial_prior import SpatialPrior, SpatialPriorError, apply_prior, lonlat_xyz


def test_lone_candidate_needs_t_iso_a_clustered_one_t_main():
    # two candidates 1 km apart, one 20 km away from both; one point below t_main next to the lone one
    xy = np.array([[0, 0], [1000, 0], [20_000, 0], [20_500, 0]], float)
    prob = np.array([0.5, 0.5, 0.6, 0.1])
    d = apply_prior(xy, prob)
    assert d.candidate.tolist() == [True, True, True, False]
    assert d.isolated.tolist() == [False, False, True, False]
    assert d.decision.tolist() == [1, 1, 0, 0]
    assert d.counts() == {"candidates": 3, "isolated": 1, "dropped_isolated": 1, "kept": 2}
    # the lone one clears t_iso: kept
    assert apply_prior(xy, np.array([0.5, 0.5, 0.8, 0.1])).decision.tolist() == [1, 1, 1, 0]


def test_radius_and_min_neighbours():
    xy = np.array([[0, 0], [2900, 0], [9000, 0], [9000, 3100]], float)
    prob = np.full(4, 0.5)
    assert apply_prior(xy, prob).decision.tolist() == [1, 1, 0, 0]  # 2.9 km in, 3.1 km out
    assert apply_prior(xy, prob, SpatialPrior(radius_m=3200)).decision.tolist() == [1, 1, 1, 1]
    # three in a row 2 km apart: the middle one has 2 neighbours within 3 km, the ends 1
    row = np.array([[0, 0], [2000, 0], [4000, 0]], float)
    d = apply_prior(row, np.full(3, 0.5), SpatialPrior(min_neighbours=2, k=5))
    assert d.neighbours.tolist() == [1, 2, 1] and d.decision.tolist() == [0, 1, 0]


def test_k_nearest_patches_hide_a_candidate_behind_non_candidates():
    # a candidate at the origin ringed by 6 non-candidates 100 m away; another candidate 1 km away
    ring = [[100 * np.cos(a), 100 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    xy = np.array([[0, 0], *ring, [1000, 0], [1100, 0]], float)
    prob = np.array([0.5] + [0.1] * 6 + [0.5, 0.5])
    # among its 5 nearest patches (the ring) there is no candidate: isolated
    assert apply_prior(xy, prob).isolated[0]
    # among its 5 nearest candidates, two lie within 3 km: not isolated
    assert not apply_prior(xy, prob, SpatialPrior(among="candidates")).isolated[0]


def test_ties_with_the_kth_nearest_all_count():
    # a 3 x 3 grid of windows 240 m apart: the centre's 5 nearest are 4 sides and the diagonals tie for 5th
    xy = np.array([[i * 240.0, j * 240.0] for i in range(3) for j in range(3)])
    for corner in (0, 2, 6, 8):
        prob = np.zeros(9)
        prob[4] = prob[corner] = 0.5
        d = apply_prior(xy, prob)
        assert d.neighbours[4] == 1 and d.decision[4] == 1, corner


def test_nan_is_never_a_candidate_or_a_neighbour_and_duplicates_count_once_each():
    xy = np.array([[0, 0], [500, 0], [0, 0]], float)
    assert apply_prior(xy, np.array([0.5, np.nan, 0.1])).isolated.tolist() == [True, False, False]
    d = apply_prior(xy, np.array([0.5, 0.0, 0.5]))
    assert d.neighbours.tolist() == [1, 0, 1] and d.decision.tolist() == [1, 0, 1]
    assert apply_prior(xy[:1], np.array([0.9])).decision.tolist() == [1]
    assert apply_prior(np.empty((0, 2)), np.empty(0)).decision.tolist() == []


def test_lonlat_points_across_a_utm_zone_edge():
    # 0.02 degrees apart at the equator (2.2 km) on both sides of the -60 meridian (zones 20 and 21)
    lon, lat = np.array([-60.01, -59.99, -58.0]), np.zeros(3)
    xyz = lonlat_xyz(lon, lat)
    assert np.isclose(np.linalg.norm(xyz[0] - xyz[1]), 2223.9, atol=1.0)
    assert apply_prior(xyz, np.full(3, 0.5)).decision.tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    "kw", [dict(t_main=0.8, t_iso=0.7), dict(k=0), dict(min_neighbours=6), dict(radius_m=0), dict(among="everything")]
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(SpatialPriorError):
        SpatialPrior(**kw)
