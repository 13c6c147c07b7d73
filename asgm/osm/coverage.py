"""OSM coverage of a patch store, per class and per key, with the right denominator.

The study divided its per-key shares by "patches with any OSM" (study bug B9, docs/study-bugs.md); here every share
is over *all* patches of the class (or set). Presence is read from the stored masks (what the model
sees); tag-value frequencies are read from the vectors the masks were made from (recorded in
``osm.json``), listing also values that a filter left out, so leakage candidates such as
``landuse=quarry`` stay visible (spec B4).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from asgm.config import OSM_LAYERS
from asgm.osm import OsmError

if TYPE_CHECKING:
    from asgm.data.store import PatchStore

GroupBy = Literal["label", "set"]
LABEL_NAMES = {1: "mining", 0: "non-mining"}


def _groups(index: pd.DataFrame, by: GroupBy) -> pd.Series:
    if by == "label":
        return index["label"].astype(int).map(lambda v: LABEL_NAMES.get(v, f"label {v}"))
    if by == "set":
        return index["set"].astype(str)
    raise OsmError(f"group by {by!r} is not supported; use 'label' or 'set'")


def presence(store: PatchStore) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """One row per patch: sample_id and a bool column per stored OSM layer (mask has a 1 anywhere)."""
    ids = store.sample_ids()
    rows, layers = [], None
    missing = []
    for sid in ids:
        got = store.read_osm(sid)
        if got is None:
            missing.append(sid)
            continue
        masks, names = got
        layers = layers or tuple(names)
        if tuple(names) != layers:
            raise OsmError(
                f"patch {sid!r} has OSM layers {names}, others {layers}; rerun `asgm osm rasterize --store {store.name}`"  # noqa: E501
            )
        present = [bool(v) for v in masks.reshape(len(names), -1).max(axis=1)]  # 1 anywhere in each layer
        rows.append([sid, *present])
    if missing:
        raise OsmError(
            f"{len(missing)} of {len(ids)} patches of store {store.name!r} have no OSM masks (e.g. {missing[:3]}); "
            f"run `asgm osm rasterize --store {store.name}` first"
        )
    layers = layers or ()
    return pd.DataFrame(rows, columns=["sample_id", *layers]), layers


def coverage_table(store: PatchStore, by: GroupBy = "label") -> pd.DataFrame:
    """Tidy table: group, key ('any' then the layers), patches_with, patches_total, share (0-1)."""
    index = store.index()
    pres, layers = presence(store)
    df = index[["sample_id"]].assign(group=_groups(index, by).to_numpy()).merge(pres, on="sample_id", how="left")
    df["any"] = df[list(layers)].any(axis=1) if layers else False
    rows = []
    for group, g in df.groupby("group", sort=True):
        total = len(g)  # every patch of the group, with or without OSM
        for key in ("any", *layers):
            n = int(g[key].sum())
            rows.append(
                {
                    "group": group,
                    "key": key,
                    "patches_with": n,
                    "patches_total": total,
                    "share": n / total if total else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["group", "key", "patches_with", "patches_total", "share"])


def tag_values_table(
    store: PatchStore, vectors: gpd.GeoDataFrame | str | Path | None = None, by: GroupBy = "label"
) -> pd.DataFrame:
    """Tidy table: group, key, value, patches (with >= 1 such feature touching the patch),
    patches_total, share, features, excluded (whether the store's masks left the value out)."""
    from asgm.osm.rasterize import RasterizeOptions, patch_grid_of, project_vectors, resolve_vectors

    info = store.osm_info() or {}
    if vectors is None and info.get("source_cache") and Path(info["source_cache"]).is_file():
        vectors = info["source_cache"]
    gdf, _, _ = resolve_vectors(store, vectors)
    gdf = gdf.reset_index(drop=True)
    excluded = (info.get("filters") or {}).get("exclude") or {}
    included = (info.get("filters") or {}).get("include") or {}
    index = store.index()
    groups = dict(zip(index["sample_id"], _groups(index, by), strict=True))
    totals = pd.Series(list(groups.values())).value_counts()
    opts = RasterizeOptions()  # all keys, no filters: list every value
    grids = {sid: patch_grid_of(store, sid) for sid in index["sample_id"]}
    hits = []
    for epsg in sorted({g.epsg for g in grids.values()}):
        pv = project_vectors(gdf, opts, epsg)
        keep = opts.layers
        values = gdf[list(keep)].to_numpy(dtype=object)[pv.rows]
        for sid, g in grids.items():
            if g.epsg != epsg or len(pv.geoms) == 0:
                continue
            idx = pv.tree.query(box(*g.bounds), predicate="intersects")
            for i in idx:
                for j, key in enumerate(keep):
                    if pv.flags[i, j]:
                        hits.append((groups[sid], sid, key, str(values[i, j])))
    h = pd.DataFrame(hits, columns=["group", "sample_id", "key", "value"])
    cols = ["group", "key", "value", "patches", "patches_total", "share", "features", "excluded"]
    if h.empty:
        return pd.DataFrame(columns=cols)
    out = (
        h.groupby(["group", "key", "value"])
        .agg(patches=("sample_id", "nunique"), features=("sample_id", "size"))
        .reset_index()
    )
    out["patches_total"] = out["group"].map(totals).astype(int)
    out["share"] = out["patches"] / out["patches_total"]

    def _is_out(r: pd.Series) -> bool:
        parts = {p.strip() for p in r["value"].split(";")}
        if r["key"] in excluded and parts & set(excluded[r["key"]]):
            return True
        return bool(r["key"] in included and not parts & set(included[r["key"]]))

    out["excluded"] = out.apply(_is_out, axis=1)
    return out.sort_values(["group", "key", "patches", "value"], ascending=[True, True, False, True])[cols].reset_index(
        drop=True
    )


def coverage_report(store: PatchStore, by: GroupBy = "label", tag_values: bool = True, top: int = 10) -> dict[str, Any]:
    """JSON-able report for the CLI and the app: presence per group and key, tag-value frequencies."""
    table = coverage_table(store, by)
    report: dict[str, Any] = {
        "store": store.name,
        "by": by,
        "denominator": "all patches of the group",
        "osm": {
            k: v
            for k, v in (store.osm_info() or {}).items()
            if k in ("layers", "buffer_m", "all_touched", "filters", "snapshot_date", "source_cache")
        },
        "groups": {},
    }
    for group, g in table.groupby("group", sort=True):
        report["groups"][group] = {
            "patches": int(g["patches_total"].iloc[0]),
            "keys": {
                r.key: {"patches_with": int(r.patches_with), "share": round(float(r.share), 6)} for r in g.itertuples()
            },
        }
    if tag_values:
        try:
            tv = tag_values_table(store, by=by)
        except OsmError as exc:
            report["tag_values_error"] = str(exc)
        else:
            for group, g in tv.groupby("group", sort=True):
                per_key = {}
                for key, gk in g.groupby("key", sort=False):
                    per_key[key] = [
                        {
                            "value": r.value,
                            "patches": int(r.patches),
                            "share": round(float(r.share), 6),
                            "features": int(r.features),
                            "excluded": bool(r.excluded),
                        }
                        for r in gk.head(top).itertuples()
                    ]
                report["groups"].setdefault(group, {})["tag_values"] = {
                    k: per_key[k] for k in OSM_LAYERS if k in per_key
                }
    return report
