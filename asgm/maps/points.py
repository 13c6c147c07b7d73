"""The Map page's data, without Streamlit: the points to draw (study points, a store's patches, a run's
predictions), the map filters, and which patch a click on the map means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: A click within this distance of a point with a patch opens that patch (half a 48-px patch is 240 m).
CLICK_RADIUS_M = 300.0


def combine_points(study: pd.DataFrame | None, index: pd.DataFrame | None, pred: pd.DataFrame | None) -> pd.DataFrame:
    """All points to draw: the study's labelled points and the store's patches (union by sample_id),
    with ``has_patch`` (the store holds a patch) and, when a run is given, its split/prob/pred/outcome."""
    cols = ["sample_id", "label", "set", "lon", "lat"]
    frames = []
    if index is not None and len(index):
        frames.append(index[cols].assign(has_patch=True))
    if study is not None and len(study):
        frames.append(study[cols].assign(has_patch=False))
    if not frames:
        return pd.DataFrame(columns=[*cols, "has_patch", "split", "prob", "pred", "outcome"])
    df = pd.concat(frames, ignore_index=True).drop_duplicates("sample_id", keep="first")
    df["label"] = df["label"].astype(int)
    if pred is not None and len(pred):
        p = pred[["sample_id", "split", "prob", "pred"]].drop_duplicates("sample_id")
        df = df.merge(p, on="sample_id", how="left")
        ok = df["pred"].notna()
        pr = df.loc[ok, "pred"].astype(int)
        lab = df.loc[ok, "label"]
        df["outcome"] = ""
        df.loc[ok, "outcome"] = np.select(
            [(pr == 1) & (lab == 1), (pr == 0) & (lab == 0), (pr == 1) & (lab == 0)], ["TP", "TN", "FP"], "FN"
        )
    else:
        df = df.assign(split=None, prob=np.nan, pred=np.nan, outcome="")
    return df.reset_index(drop=True)


def filter_points(
    df: pd.DataFrame,
    sets: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    predicted: Sequence[int] | None = None,
    errors_only: bool = False,
    splits: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The map filters: set, true label, split and predicted class of the selected run (points outside its
    validation/test predictions have split 'other'), and errors only (FP/FN)."""
    out = df
    if splits is not None:
        out = out[out["split"].fillna("other").isin(list(splits))]
    if sets is not None:
        out = out[out["set"].isin(list(sets))]
    if labels is not None:
        out = out[out["label"].isin(list(labels))]
    if predicted is not None:
        out = out[out["pred"].isin(list(predicted))]
    if errors_only:
        out = out[out["outcome"].isin(["FP", "FN"])]
    return out


def nearest_point(points: pd.DataFrame, lon: float, lat: float) -> tuple[pd.Series | None, float]:
    """The point nearest to (lon, lat) and its distance in metres (None, inf when there are no points)."""
    if points.empty:
        return None, float("inf")
    from asgm.data.points import haversine_m

    d = haversine_m(points["lon"].to_numpy(), points["lat"].to_numpy(), np.float64(lon), np.float64(lat))
    i = int(np.argmin(d))
    return points.iloc[i], float(d[i])


def clicked_patch(points: pd.DataFrame, lon: float, lat: float) -> tuple[str | None, str | None]:
    """What a click on the map at (lon, lat) opens: (sample_id, None) for the nearest point with a patch
    within ``CLICK_RADIUS_M``, else (None, a message saying there is no patch there and naming the nearest
    labelled point)."""
    near, dist = nearest_point(points[points["has_patch"]], lon, lat)
    if near is not None and dist <= CLICK_RADIUS_M:
        return str(near["sample_id"]), None
    any_near, any_dist = nearest_point(points, lon, lat)
    return None, (
        f"No patch at lon {lon:.4f}, lat {lat:.4f}, and none is available: patches exist only for "
        f"labelled points (`asgm patches fetch` fetches them per point set)."
        + (
            f" The nearest labelled point, **{any_near['sample_id']}**, is {any_dist / 1000:.1f} km away."
            if any_near is not None
            else ""
        )
    )


def no_patch_message(sid: str, store_name: str, point_set: str | None = None) -> str:
    """What to tell a user who clicked a labelled point without a patch in the store: how to fetch one with
    the sources this machine has, or that none is available."""
    from asgm.data.points import STUDY_SETS
    from asgm.sources import configured_source

    if point_set not in STUDY_SETS:
        return (
            f"No patch for **{sid}** in store `{store_name}`, and none is available: this point is not one of "
            f"the study's point sets that `asgm patches fetch` can fetch."
        )
    how = [
        f"`asgm patches fetch --source stac --points {point_set}` (Earth Search, Level-2A; needs the internet, "
        f"no account)"
    ]
    if configured_source() == "gee":
        how.insert(
            0,
            f"`asgm patches fetch --source gee --points {point_set}` (Earth Engine, the study's Level-1C; "
            f"credentials are configured)",
        )
    else:
        how.append("`--source gee` once Earth Engine credentials are set up (docs/sources.md)")
    return (
        f"No patch for **{sid}** in store `{store_name}`. Fetch patches for the study's *{point_set}* points with "
        + " or ".join(how)
        + ", then pick the new store in the sidebar."
    )
