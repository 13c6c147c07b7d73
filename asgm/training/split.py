"""Spatial train/val/test split, leak-free by construction and checked.

DBSCAN with a haversine metric (eps in true metres, min_samples=1, so every patch is in a cluster)
groups patch centres; whole clusters then go to train/val/test. Unlike the study (spec §5, B1, B5):
- coordinates come from each row's own lon/lat keyed by ``sample_id`` (never by file order);
- clusters are assigned stratified by class (greedy on the remaining deficit of positives, then of
  negatives) so the 70/15/15 shares hold in patches and every split has positives;
- the result is verified: no val/test patch lies within eps of a training patch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from asgm.data.points import EARTH_RADIUS_M, nearest_distance_m
from asgm.errors import AsgmError

SPLITS = ("train", "val", "test")


class SplitError(AsgmError):
    """The points cannot be split as asked; the message says why and what to change."""


def cluster_points(lon: np.ndarray, lat: np.ndarray, eps_m: float) -> np.ndarray:
    """DBSCAN cluster label per point (haversine metric, eps in metres, min_samples=1)."""
    from sklearn.cluster import DBSCAN

    coords = np.radians(np.column_stack([np.asarray(lat, float), np.asarray(lon, float)]))
    db = DBSCAN(eps=eps_m / EARTH_RADIUS_M, min_samples=1, metric="haversine", algorithm="ball_tree")
    return db.fit_predict(coords)


def spatial_split(
    rows: pd.DataFrame,
    eps_m: float = 3000.0,
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 7,
    test_mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Split rows (sample_id, label, lon, lat) into train/val/test by DBSCAN cluster.

    Returns a frame sorted by sample_id with columns sample_id, label, lon, lat, cluster, split.
    ``test_mask`` (bool per row, in the rows' sample_id order) forces a geographic holdout: those rows
    form the test set; rows of other clusters go to train/val; rows sharing a cluster with a holdout
    row (i.e. within eps of it) become split 'buffer' and are used nowhere, so nothing leaks."""
    df = rows[["sample_id", "label", "lon", "lat"]].copy()
    if df["sample_id"].duplicated().any():
        raise SplitError("duplicate sample_id values; every patch needs its own id")
    order = np.argsort(df["sample_id"].to_numpy(), kind="stable")
    df = df.iloc[order].reset_index(drop=True)
    if test_mask is not None:
        test_mask = np.asarray(test_mask, bool)[order]
    df["label"] = df["label"].astype(int)
    df["cluster"] = cluster_points(df["lon"].to_numpy(), df["lat"].to_numpy(), eps_m)
    fr = np.asarray(fractions, float)
    if len(fr) != 3 or abs(fr.sum() - 1) > 1e-6 or (fr <= 0).any():
        raise SplitError("fractions must be three positive numbers summing to 1")
    rng = np.random.default_rng(seed)

    per = df.groupby("cluster").agg(pos=("label", "sum"), n=("label", "size")).reset_index()
    per["neg"] = per["n"] - per["pos"]
    assignment: dict[int, str] = {}
    if test_mask is not None:
        held = set(df.loc[test_mask, "cluster"])
        if not df.loc[test_mask, "label"].any():
            raise SplitError("the holdout region holds no positives; it cannot serve as a test set")
        df["split"] = ""
        df.loc[test_mask, "split"] = "test"
        df.loc[~test_mask & df["cluster"].isin(held), "split"] = "buffer"
        rest = per[~per["cluster"].isin(held)]
        tv = fr[:2] / fr[:2].sum()
        assignment = _stratified(rest, tv, ("train", "val"), rng)
        free = df["split"] == ""
        df.loc[free, "split"] = df.loc[free, "cluster"].map(assignment)
    else:
        assignment = _stratified(per, fr, SPLITS, rng)
        df["split"] = df["cluster"].map(assignment)
    for name in SPLITS:
        if not ((df["split"] == name) & (df["label"] == 1)).any():
            raise SplitError(f"the {name} split has no positives; add positives or change the seed/fractions")
    assert_leak_free(df, eps_m)
    return df


def _stratified(
    per: pd.DataFrame, fractions: np.ndarray, names: Sequence[str], rng: np.random.Generator
) -> dict[int, str]:
    """Assign clusters (rows of ``per``: cluster, pos, neg) to ``names`` by class-stratified greedy.

    Positive-holding clusters are placed first, each to the split with the largest remaining
    deficit of positives (target share minus current); the first ones seed every split. Then the
    negative-only clusters by the deficit of negatives. Within each pass clusters are visited in a
    seeded random order, larger ones first, so the shares land close to target."""
    k = len(names)
    pos_cl = per[per["pos"] > 0]
    neg_cl = per[per["pos"] == 0]
    if len(pos_cl) < k:
        raise SplitError(
            f"only {len(pos_cl)} cluster(s) hold positives; {k} are needed so that every split has positives "
            "(use a smaller split eps or more positives)"
        )
    out: dict[int, str] = {}
    pos_count = np.zeros(k)
    neg_count = np.zeros(k)
    tot_pos, tot_neg = float(per["pos"].sum()), float(per["neg"].sum())

    def visit(frame: pd.DataFrame, key: str) -> list[pd.Series]:
        shuffled = frame.iloc[rng.permutation(len(frame))]
        return [r for _, r in shuffled.sort_values(key, ascending=False, kind="stable").iterrows()]

    pos_rows = visit(pos_cl, "pos")
    # Seed: the smallest splits (by target share) get a positive cluster first, from the smallest
    # positive clusters, so that val/test are not emptied of positives by one big cluster.
    seed_rows = sorted(pos_rows[-k:], key=lambda r: r["pos"]) if len(pos_rows) > k else pos_rows
    for j, r in zip(np.argsort(fractions, kind="stable"), seed_rows, strict=False):
        out[int(r["cluster"])] = names[j]
        pos_count[j] += r["pos"]
        neg_count[j] += r["neg"]
    for r in pos_rows:
        c = int(r["cluster"])
        if c in out:
            continue
        j = int(np.argmax(fractions * tot_pos - pos_count))
        out[c] = names[j]
        pos_count[j] += r["pos"]
        neg_count[j] += r["neg"]
    for r in visit(neg_cl, "neg"):
        j = int(np.argmax(fractions * tot_neg - neg_count))
        out[int(r["cluster"])] = names[j]
        neg_count[j] += r["neg"]
    return out


def assert_leak_free(split: pd.DataFrame, eps_m: float) -> None:
    """Raise ``SplitError`` if a val or test patch lies within ``eps_m`` of a training patch."""
    train = split[split["split"] == "train"][["lon", "lat"]].to_numpy(float)
    for name in ("val", "test"):
        other = split[split["split"] == name]
        if other.empty or len(train) == 0:
            continue
        d = nearest_distance_m(other[["lon", "lat"]].to_numpy(float), train)
        if (d <= eps_m).any():
            worst = other.iloc[int(np.argmin(d))]["sample_id"]
            raise SplitError(f"leak: {name} patch {worst!r} is {d.min():.0f} m from a training patch (< {eps_m:.0f} m)")


def split_counts(split: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Positives/negatives/clusters per split, for the run store."""
    out = {}
    for name in (*SPLITS, "buffer"):
        part = split[split["split"] == name]
        if name == "buffer" and part.empty:
            continue
        out[name] = {
            "pos": int((part["label"] == 1).sum()),
            "neg": int((part["label"] == 0).sum()),
            "clusters": int(part["cluster"].nunique()),
        }
    return out


def holdout_mask(rows: pd.DataFrame, region: str) -> np.ndarray:
    """Bool per row: inside the named holdout region — 'caroni' (Earth Genome's Caroní rectangle) or a
    country of ``asgm.data.regions.COUNTRIES`` (Natural Earth borders), for leave-one-region-out."""
    from asgm.data.regions import COUNTRIES, country_mask

    if region in COUNTRIES:
        return country_mask(rows["lon"].to_numpy(float), rows["lat"].to_numpy(float), region)
    import geopandas as gpd

    from asgm import registry

    keys = {"caroni": "caroni_holdout"}
    if region not in keys:
        raise SplitError(f"unknown holdout region {region!r}; choose from {[*keys, *COUNTRIES]}")
    shape = gpd.read_file(registry.get(keys[region])).to_crs("EPSG:4326").union_all()
    pts = gpd.GeoSeries(gpd.points_from_xy(rows["lon"], rows["lat"]), crs="EPSG:4326")
    return pts.within(shape).to_numpy()
