"""Countries of points (Natural Earth admin-0, shipped in a pinned package) and the leave-one-region-out
holdout built on them: region masks, leak-freedom, refusal of a region with no positives, config/CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from asgm.config import HOLDOUTS, ExperimentConfig
from asgm.data.points import haversine_m
from asgm.data.regions import COUNTRIES, RegionError, country_codes, country_mask
from asgm.training.split import SplitError, holdout_mask, spatial_split

# Well inside each country (towns/mining areas), far from any border.
PLACES = {
    "VEN": (-61.85, 7.05),  # El Callao mining belt, Bolívar
    "PER": (-70.3, -12.9),  # Huepetuhe / Madre de Dios
    "BRA": (-60.02, -3.10),  # Manaus
    "BOL": (-68.1, -16.5),  # La Paz
    "COL": (-74.1, 4.6),  # Bogotá
    "ECU": (-78.5, -0.2),  # Quito
    "GUY": (-58.9, 5.5),  # interior Guyana
}


def test_country_codes_of_known_places():
    lon, lat = np.array([p[0] for p in PLACES.values()]), np.array([p[1] for p in PLACES.values()])
    assert country_codes(lon, lat).tolist() == list(PLACES)


def test_points_off_land_take_the_nearest_country_only_when_close():
    # 2 km off the Venezuelan coast near Cumaná (sea), and the middle of the Atlantic.
    codes = country_codes(np.array([-64.18, -30.0]), np.array([10.49, 0.0]))
    assert codes[1] == ""
    assert codes[0] == "VEN"
    assert country_codes(np.array([]), np.array([])).size == 0


def test_country_mask_names_and_unknown_region():
    lon, lat = np.array([PLACES["VEN"][0], PLACES["PER"][0]]), np.array([PLACES["VEN"][1], PLACES["PER"][1]])
    assert country_mask(lon, lat, "venezuela").tolist() == [True, False]
    assert country_mask(lon, lat, "peru").tolist() == [False, True]
    with pytest.raises(RegionError, match="unknown country 'atlantis'"):
        country_mask(lon, lat, "atlantis")


def _border_rows() -> pd.DataFrame:
    """Points on both sides of the Venezuela-Brazil border at Santa Elena de Uairén / Pacaraima (lat ~4.5):
    clusters deep in each country plus pairs 1-2 km apart across the border, positives on both sides."""
    rng = np.random.default_rng(0)
    lon, lat = [], []
    for clon, clat in [
        (-61.9, 7.0),
        (-62.5, 6.3),
        (-63.2, 5.8),
        (-61.1, 4.52),  # Venezuela (last: at the border)
        (-60.7, 2.8),
        (-61.5, 2.0),
        (-60.2, 1.5),
        (-61.1, 4.50),
        (-59.9, 3.5),
        (-60.9, 3.0),
    ]:  # Brazil
        for _ in range(6):
            lon.append(clon + rng.normal(0, 0.003))
            lat.append(clat + rng.normal(0, 0.003))
    n = len(lon)
    return pd.DataFrame(
        {"sample_id": [f"p{i:03d}" for i in range(n)], "label": np.arange(n) % 2, "lon": lon, "lat": lat}
    )


def test_leave_one_country_out_is_the_test_set_and_leak_free():
    rows = _border_rows()
    mask = holdout_mask(rows, "venezuela")
    codes = country_codes(rows["lon"], rows["lat"])
    assert (mask == (codes == "VEN")).all() and 0 < mask.sum() < len(rows)
    split = spatial_split(rows, 3000.0, seed=7, test_mask=mask)
    assert set(split.loc[split["split"] == "test", "sample_id"]) == set(rows.loc[mask, "sample_id"])
    # The Brazilian side of the border cluster is within 3 km of test points: dropped, not trained on.
    assert (split["split"] == "buffer").any()
    tr, te = split[split["split"] == "train"], split[split["split"] == "test"]
    d = haversine_m(
        te["lon"].to_numpy()[:, None],
        te["lat"].to_numpy()[:, None],
        tr["lon"].to_numpy()[None, :],
        tr["lat"].to_numpy()[None, :],
    )
    assert d.min() > 3000.0
    assert not split.loc[split["split"].isin(["train", "val"]), "sample_id"].isin(rows.loc[mask, "sample_id"]).any()


def test_a_country_without_positives_is_refused():
    rows = _border_rows()
    rows.loc[holdout_mask(rows, "venezuela"), "label"] = 0
    with pytest.raises(SplitError, match="holdout region holds no positives"):
        spatial_split(rows, 3000.0, seed=7, test_mask=holdout_mask(rows, "venezuela"))
    # A country with no point at all is refused the same way (an empty test set has no positives).
    with pytest.raises(SplitError, match="no positives"):
        spatial_split(rows, 3000.0, seed=7, test_mask=holdout_mask(rows, "peru"))


def test_config_and_cli_accept_countries():
    assert HOLDOUTS == ("caroni", *COUNTRIES)
    assert ExperimentConfig(holdout="venezuela").holdout == "venezuela"
    with pytest.raises(ValidationError):
        ExperimentConfig(holdout="atlantis")
    from asgm.cli.training import _config_flags

    p = argparse.ArgumentParser()
    _config_flags(p)
    assert p.parse_args(["--holdout", "peru"]).holdout == "peru"
    with pytest.raises(SystemExit):
        p.parse_args(["--holdout", "atlantis"])
