"""The items a reviewer marks, resolved from where they come from: a patch of a store (its index row), a window
of a finished region scan (its grid), a detection of an Amazon Mining Watch layer (as given: those layers are
not on this machine's disk yet). Resolving checks the item exists, so a label never points at nothing."""

from __future__ import annotations

from pathlib import Path

from asgm.data.labels import Item, LabelsError, LabelStore, Mark, MarkResult
from asgm.data.store import PatchStore, PatchStoreError
from asgm.errors import AsgmError


class UnknownItemError(LabelsError):
    """A label for an item its store, scan or layer does not hold."""


def store_item(store: str | PatchStore, sample_id: str, root: Path | None = None) -> Item:
    """The item of patch ``sample_id`` of a store: its point, date window and year from the index."""
    try:
        st = store if isinstance(store, PatchStore) else PatchStore.open(store, root=root)
        index = st.index()
    except PatchStoreError as exc:
        raise UnknownItemError(f"no patch {sample_id!r}: {exc}") from None
    rows = index[index["sample_id"].astype(str) == str(sample_id)]
    if rows.empty:
        raise UnknownItemError(
            f"no patch {sample_id!r} in store {st.name!r}; pick a sample id the store holds "
            "(`asgm patches list` or the Patch viewer)"
        )
    r = rows.iloc[0]
    start, end = (str(r.get(k)) if isinstance(r.get(k), str) else "" for k in ("date_start", "date_end"))
    year = r.get("year")
    return Item(
        "store",
        st.name,
        str(sample_id),
        float(r["lon"]),
        float(r["lat"]),
        f"{start}/{end}" if start or end else "",
        int(year) if year == year and year is not None else None,
    )


def scan_item(scan: str, window: str, root: Path | None = None) -> Item:
    """The item of window ``"i,j"`` of a finished scan: the window's centre, the scan's year and date window."""
    from asgm.grid import centre_lonlat
    from asgm.scan import results

    try:
        s = results.open_scan(scan, root)
        i, j = results.parse_window(window)
        grid = results.window_grid(s, i, j)
    except AsgmError as exc:
        raise UnknownItemError(f"no window {window!r} in scan {scan!r}: {exc}") from None
    lon, lat = centre_lonlat(grid)
    src = s.identity.get("source") or {}
    start, end = str(src.get("date_start") or ""), str(src.get("date_end") or "")
    year = s.identity.get("year")
    return Item(
        "scan",
        scan,
        f"{i},{j}",
        float(lon),
        float(lat),
        f"{start}/{end}" if start or end else "",
        int(year) if year else None,
    )


def resolve(
    source_kind: str,
    source: str,
    item_id: str,
    lon: float | None = None,
    lat: float | None = None,
    year: int | None = None,
) -> Item:
    """The item of a store, scan or AMW layer; an AMW detection needs its ``lon``/``lat`` (its layer is not on
    disk to look them up)."""
    if source_kind == "store":
        return store_item(source, item_id)
    if source_kind == "scan":
        return scan_item(source, item_id)
    if source_kind == "amw":
        if lon is None or lat is None:
            raise LabelsError(f"AMW detection {item_id!r} of layer {source!r} needs its lon and lat")
        return Item("amw", source, item_id, float(lon), float(lat), "", year).check()
    raise LabelsError(f"source kind {source_kind!r} is not one of store, scan, amw")


def check_item(item: Item) -> None:
    """``UnknownItemError`` when the item's store or scan does not hold it (for imports); AMW items pass."""
    if item.source_kind == "store":
        store_item(item.source, item.item_id)
    elif item.source_kind == "scan":
        scan_item(item.source, item.item_id)


def mark(
    item: Item,
    label: str,
    *,
    note: str = "",
    run_id: str | None = None,
    probability: float | None = None,
    reviewer: str = "",
    via: str = "app",
    labels: LabelStore | None = None,
) -> MarkResult:
    """Record one mark of a resolved item in the label store (the data folder's unless ``labels``)."""
    return (labels or LabelStore()).mark(Mark(item, label, note, run_id, probability, reviewer), via=via)


def import_file(path: str | Path, reviewer: str = "", labels: LabelStore | None = None) -> dict[str, int]:
    """Import a label file (GeoJSON, CSV, KML, GeoPackage), every item checked against its store or scan; all
    rows or none. Returns counts of rows, of changes written and of repeats of the current label."""
    from asgm.data.label_files import read_label_file

    marks = read_label_file(path, check_item=check_item, reviewer=reviewer)
    out = (labels or LabelStore()).mark_many(marks, via="import")
    changed = sum(r.changed for r in out)
    return {"rows": len(out), "written": changed, "unchanged": len(out) - changed}
