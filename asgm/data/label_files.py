"""Label files a user imports (GeoJSON, CSV, KML or a labels GeoPackage): read and checked row by row like the
points uploader, all rows or none, before anything reaches the label database (``asgm.data.labels``)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgm.config import read_text
from asgm.data.labels import LAYER, Item, LabelsError, Mark, normalise_label
from asgm.errors import one_line

#: (item) -> None, or a LabelsError for an item its source does not hold (asgm.review.items.check_item).
ItemCheck = Callable[[Item], None]


def read_label_file(path: str | Path, check_item: ItemCheck | None = None, reviewer: str = "") -> list[Mark]:
    """The marks of a label file (GeoJSON, CSV, KML or a labels GeoPackage, by extension), validated like the
    points uploader: every row needs a label (mining / not_mining / unsure, or 1 / 0), lon/lat in range, an
    item (source_kind, source, item_id) that ``check_item`` accepts. The first bad row is a ``LabelsError``
    naming it; nothing is returned (so nothing is written) until every row is good."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: file not found")
    ext = path.suffix.lower()
    if ext == ".csv":
        rows = _csv_rows(path)
    elif ext in (".geojson", ".json"):
        rows = _geojson_rows(path)
    elif ext in (".gpkg", ".kml"):
        rows = _ogr_rows(path)
    else:
        raise LabelsError(f"{path}: expected a .geojson, .csv, .kml or .gpkg file of labels")
    if not rows:
        raise LabelsError(f"{path}: no labels in the file")
    marks = []
    for i, r in enumerate(rows):
        where = f"{path.name}: row {i + 1}"
        label = normalise_label(r.get("label"), f"{where}: label")
        lon, lat = _coord(r.get("lon")), _coord(r.get("lat"))
        if lon is None or lat is None:
            raise LabelsError(
                f"{where} has no coordinates (lon={r.get('lon')!r}, lat={r.get('lat')!r}); every "
                "label needs its point in WGS 84 lon/lat"
            )
        kind, source, item_id = (str(r.get(k) or "").strip() for k in ("source_kind", "source", "item_id"))
        if not (kind and source and item_id):
            raise LabelsError(
                f"{where} names no item (source_kind, source, item_id); a label belongs to a patch of "
                "a store, a window of a scan or an AMW detection — export labels from here to see "
                "the columns"
            )
        year = _coord(r.get("year"))
        prob = _coord(r.get("probability"))
        try:
            item = Item(
                kind, source, item_id, lon, lat, str(r.get("imagery") or ""), int(year) if year is not None else None
            ).check()
            if check_item is not None:
                check_item(item)
            mark = Mark(
                item,
                label,
                str(r.get("note") or ""),
                str(r.get("run_id") or "") or None,
                prob,
                str(r.get("reviewer") or "") or reviewer,
            )
            mark.row("import", "")  # the same checks as a write, before anything is written
        except LabelsError as exc:
            raise LabelsError(f"{where}: {exc}") from None
        marks.append(mark)
    return marks


def _coord(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        reader = csv.DictReader(io.StringIO(read_text(path)))
        rows = [{(k or "").strip().lower(): v for k, v in r.items()} for r in reader]
    except csv.Error as exc:
        raise LabelsError(f"{path}: not a readable CSV ({exc})") from None
    if rows and ("lon" not in rows[0] or "lat" not in rows[0]):
        raise LabelsError(f"{path}: no lon/lat columns (columns: {list(rows[0])}); every label needs its point")
    return rows


def _geojson_rows(path: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(read_text(path))
    except ValueError as exc:
        raise LabelsError(f"{path}: not valid GeoJSON ({one_line(exc)})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("features"), list):
        raise LabelsError(f"{path}: expected a GeoJSON FeatureCollection of Points")
    rows = []
    for feat in raw["features"]:
        props = dict((feat or {}).get("properties") or {})
        geom = (feat or {}).get("geometry") or {}
        coords = geom.get("coordinates") if geom.get("type") == "Point" else None
        ok = isinstance(coords, list) and len(coords) >= 2
        props["lon"], props["lat"] = (coords[0], coords[1]) if ok else (None, None)  # type: ignore[index]
        rows.append(props)
    return rows


def _ogr_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a KML or GeoPackage layer (its ``labels`` layer when there is one), read with pyogrio."""
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        layer = LAYER if LAYER in layers else (layers[0] if layers else None)
        if layer is None:
            return []
        df = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ... for damaged files
        raise LabelsError(f"{path}: not a readable label file ({one_line(exc)})") from None
    rows = []
    for r, geom in zip(df.drop(columns="geometry").to_dict("records"), df.geometry, strict=True):
        r = {str(k).lower(): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        if geom is not None and not geom.is_empty and geom.geom_type == "Point":
            r["lon"], r["lat"] = geom.x, geom.y
        rows.append(r)
    return rows
