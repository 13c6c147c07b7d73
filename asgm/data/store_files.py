"""The patch store's files on disk: ``index.csv`` read and checked, GeoTIFFs (patches and OSM masks) written
atomically and read back. ``asgm.data.store.PatchStore`` is the API over them; nothing else calls this module.

Layout of ``data/stores/<name>/``::

    store.json          what the store holds: source, bands, product level, date range, credits
    index.csv           one row per patch (sample_id, label, set, lon, lat, epsg, ...), GIS-readable;
                        store.json records how many rows it has, so a cut index is detected
    patches/<id>.tif    Sentinel-2 digital numbers (reflectance x 10000) as uint16, 0 = no data
    osm/<id>.tif        optional OSM masks on the very same grid, one uint8 band per layer
    osm.json            how the OSM masks were made (layers in order, buffer, snapshot date, ...)

Every write is atomic (temp file, then rename). No pickles anywhere. ``asgm.data.store_check`` verifies the
files against the index (present, readable, right size, dtype and bands; masked share from the pixels).
numpy, pandas and rasterio are imported inside the functions: the app's first page lists stores without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgm import atomic
from asgm.errors import AsgmError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

INDEX_COLUMNS = [
    "sample_id",
    "label",
    "set",
    "lon",
    "lat",
    "epsg",
    "size",
    "source",
    "bands",
    "date_start",
    "date_end",
    "product_level",
    "masked_fraction",
    "path",
    "year",
    "clear_threshold",
    "confuser",
]
#: Index columns a row cannot do without (a row missing one was cut short).
_REQUIRED = ["sample_id", "label", "set", "lon", "lat", "epsg", "size", "masked_fraction"]


def read_index(root: Path, name: str, recorded: int | None, error: type[AsgmError]) -> pd.DataFrame:
    """``root/index.csv`` of store ``name``, checked: present when the store has patches, parseable, rows
    complete, and not shorter than the ``recorded`` count store.json holds from the last write. A failed
    check raises ``error`` (the store's error type) with what to do."""
    import pandas as pd

    path = root / "index.csv"
    fix = f"rebuild the store (or fetch its patches again); `asgm patches check --store {name}` lists what is wrong"
    if not path.exists():
        files = len(list((root / "patches").glob("*.tif")))
        if files or recorded:
            raise error(
                f"the index of store {name!r} ({path}) is missing although {files} patch file(s) are "
                f"present (store.json records {recorded}); {fix}"
            )
        return pd.DataFrame(columns=INDEX_COLUMNS)
    try:
        df = pd.read_csv(path, dtype={"sample_id": str, "set": str, "bands": str})
    except pd.errors.EmptyDataError:
        raise error(f"the index of store {name!r} ({path}) is empty (0 bytes); {fix}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise error(f"the index of store {name!r} ({path}) is corrupt ({exc}); {fix}") from None
    lacking = [c for c in _REQUIRED if c not in df.columns]
    if lacking:
        raise error(f"the index of store {name!r} ({path}) lacks columns {lacking}; {fix}")
    cut = df[df[_REQUIRED].isna().any(axis=1)]
    if len(cut):
        where = ", ".join(f"line {i + 2} ({sid})" for i, sid in zip(cut.index[:3], cut["sample_id"][:3], strict=True))
        raise error(
            f"the index of store {name!r} ({path}) has {len(cut)} incomplete row(s): {where}; the file was "
            f"cut short or edited; {fix}"
        )
    if recorded is not None and len(df) < recorded:
        raise error(
            f"the index of store {name!r} ({path}) lists {len(df)} patches but store.json records "
            f"{recorded}: the index was truncated; {fix}"
        )
    return df.fillna({"date_start": "", "date_end": "", "confuser": ""})


def recorded_counts(
    root: Path, patches: int | None, by_label: dict[str, int] | None, by_set: dict[str, int] | None
) -> tuple[int, dict[str, int], dict[str, int]] | None:
    """(patches, by_label, by_set) as store.json recorded them, when they agree with each other and with the
    lines of ``root/index.csv`` (a header plus one line per patch, counted without parsing); None when they
    cannot be trusted."""
    if patches is None or by_label is None or by_set is None:
        return None
    if sum(by_label.values()) != patches or sum(by_set.values()) != patches:
        return None
    try:
        lines = (root / "index.csv").read_bytes().count(b"\n")
    except OSError:
        return None
    return (patches, dict(by_label), dict(by_set)) if lines == patches + 1 else None


def write_geotiff(
    target: Path,
    data: np.ndarray,
    crs: Any,
    transform: Any,
    descriptions: Sequence[str],
    tags: dict[str, str] | None = None,
    nodata: int | None = None,
) -> None:
    """Write ``data`` (bands, H, W; its dtype kept) as a deflated GeoTIFF at ``target`` atomically, one band
    description each, and read it back before it replaces ``target`` (``DiskFullError`` when it does not)."""
    with atomic.atomic_path(target) as tmp:
        import rasterio

        with rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=data.shape[2],
            height=data.shape[1],
            count=data.shape[0],
            dtype=str(data.dtype),
            crs=crs,
            transform=transform,
            nodata=nodata,
            compress="deflate",
        ) as dst:
            dst.write(data)
            if tags:
                dst.update_tags(**tags)
            for i, description in enumerate(descriptions, start=1):
                dst.set_band_description(i, description)
        _written(tmp, data, target)


def _written(tmp: Path, data: np.ndarray, target: Path) -> None:
    """Read a just-written GeoTIFF back: GDAL only logs a failed write (a full disk, a file size limit) and
    leaves a cut file, so a file that does not read back as ``data`` is a ``DiskFullError`` before it can
    replace ``target``."""
    import numpy as np
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(tmp) as src:
            same = bool(np.array_equal(src.read(), data))
    except (RasterioError, OSError):
        same = False
    if not same:
        raise atomic.DiskFullError(
            f"could not write {target} completely (the disk or quota is probably full); free disk space and try "
            "again. The previous version of the file, if any, is unchanged"
        )
