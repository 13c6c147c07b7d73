"""The patch store: one GeoTIFF per patch (UTM, 10 m, centred on its point) plus an index table, in
``data/stores/<name>/`` (the files: ``asgm.data.store_files``). ``PatchStore`` opens, writes, reads and
summarises a store; ``asgm.data.store_check.check_store`` verifies the files against the index.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgm import atomic
from asgm.config import stores_dir
from asgm.data.store_files import INDEX_COLUMNS, read_index, recorded_counts, write_geotiff
from asgm.errors import AsgmError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from asgm.grid import PatchGrid

# numpy, pandas, rasterio and asgm.grid (pyproj) are imported inside the methods that use them: the app's
# first page lists stores (``summary``) without them, which saves a second or so of its first load.

#: Store pixels are digital numbers: reflectance x DN_SCALE, as uint16 (0 = no data).
DN_SCALE = 10000.0
#: A pixel is masked when its mean over the bands is below this many DN (study's ``filter_black``).
MASKED_DN = 10.0

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class PatchStoreError(AsgmError):
    """A patch store problem a user can act on; the message says what to do."""


@dataclass(frozen=True)
class StoreMeta:
    """What a patch store holds (``store.json``)."""

    name: str
    source: str  # demo | synthetic | gee | stac
    bands: tuple[str, ...]
    size: int
    product_level: str  # L1C | L2A | L1C-RGB-8bit | synthetic
    date_start: str = ""
    date_end: str = ""
    description: str = ""
    credits: tuple[str, ...] = ()
    synthetic: bool = False
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)
    #: Rows of index.csv at its last write (None for stores made before this was recorded).
    patches: int | None = None
    #: Patches per label and per set at the last write of index.csv (None for older stores), so a summary
    #: needs no read of the index.
    by_label: dict[str, int] | None = None
    by_set: dict[str, int] | None = None
    #: How the pixels are encoded (``asgm.config.InputEncoding`` as a dict); None for stores made before it was
    #: recorded (``asgm.model.store_fit.store_encoding`` then tells it from the source).
    encoding: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoreMeta:
        raw = dict(raw)
        _check_types(raw)
        raw["bands"] = tuple(raw["bands"])
        raw["credits"] = tuple(raw.get("credits", ()))
        return cls(**raw)


def _check_types(raw: dict[str, Any]) -> None:
    """``TypeError`` naming the first store.json field of the wrong type (a hand-edited file)."""
    expect: dict[str, tuple[type, ...]] = {
        "name": (str,),
        "source": (str,),
        "size": (int,),
        "product_level": (str,),
        "synthetic": (bool,),
        "patches": (int, type(None)),
        "date_start": (str,),
        "date_end": (str,),
        "extra": (dict,),
        "by_label": (dict, type(None)),
        "by_set": (dict, type(None)),
    }
    for key, types in expect.items():
        if key in raw and (not isinstance(raw[key], types) or (bool not in types and isinstance(raw[key], bool))):
            raise TypeError(f"field {key!r} is {raw[key]!r}, expected {' or '.join(t.__name__ for t in types)}")
    bands = raw.get("bands")
    if not isinstance(bands, list) or not all(isinstance(b, str) for b in bands):
        raise TypeError(f"field 'bands' is {bands!r}, expected a list of band names")


@dataclass
class Patch:
    """One labelled patch: pixels (bands, H, W) in DN on an exact UTM grid, plus its metadata."""

    sample_id: str
    label: int
    set: str
    lon: float
    lat: float
    grid: PatchGrid
    data: np.ndarray
    bands: tuple[str, ...]
    source: str = ""
    date_start: str = ""
    date_end: str = ""
    product_level: str = ""
    #: Cloud Score+ threshold of the composite the patch was cut from (gallery packs), None when unknown.
    clear_threshold: float | None = None
    #: What a negative looks like that a model may mistake for mining (riverbank, industrial, cloud, ...), by
    #: the set it comes from; "" for positives and sets without one.
    confuser: str = ""

    @property
    def masked_fraction(self) -> float:
        """Share of pixels whose mean over the bands is below 10 DN (cloud-masked or no data)."""
        return masked_fraction(self.data)


def masked_fraction(data: np.ndarray) -> float:
    """Share of pixels of a (bands, H, W) DN array whose band mean is below ``MASKED_DN``."""
    import numpy as np

    if data.ndim != 3 or data.size == 0:
        raise ValueError(f"expected a (bands, H, W) array, got shape {data.shape}")
    return float((data.astype(np.float32).mean(axis=0) < MASKED_DN).mean())


def check_name(name: str) -> str:
    """A store name as given, or ``PatchStoreError`` for one that is not a plain folder name (``../../evil``,
    ``a b``): checked before a job is launched, so the refusal is on the page, not in a job log."""
    if not _NAME_RE.match(name or ""):
        raise PatchStoreError(
            f"invalid store name {name!r}: use letters, digits, '_', '-', '.' (at most 64, "
            "starting with a letter or digit)"
        )
    return name


def list_stores(root: Path | None = None) -> list[str]:
    """Names of the patch stores present on disk."""
    root = root or stores_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "store.json").is_file())


class PatchStore:
    """A folder of GeoTIFF patches with an index. Thread-safe for writers within one process."""

    def __init__(self, root: Path, meta: StoreMeta):
        self.root = Path(root)
        self.meta = meta
        self._lock = threading.Lock()
        self._index: pd.DataFrame | None = None
        self._rows: dict[str, dict[str, Any]] | None = None  # sample_id -> index row, built on demand

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(cls, meta: StoreMeta, root: Path | None = None, overwrite: bool = False) -> PatchStore:
        """Create (or, with ``overwrite``, empty and recreate) a store named ``meta.name``."""
        check_name(meta.name)
        folder = (root or stores_dir()) / meta.name
        if (folder / "store.json").exists() and not overwrite:
            raise PatchStoreError(f"patch store {meta.name!r} already exists at {folder}; pass overwrite to rebuild it")
        if overwrite and folder.exists():
            for sub in ("patches", "osm"):
                for f in (folder / sub).glob("*.tif") if (folder / sub).exists() else []:
                    f.unlink()
            for name in ("index.csv", "osm.json"):
                (folder / name).unlink(missing_ok=True)
        (folder / "patches").mkdir(parents=True, exist_ok=True)
        atomic.write_json(folder / "store.json", asdict(meta))
        store = cls(folder, meta)
        import pandas as pd

        store._index = pd.DataFrame(columns=INDEX_COLUMNS)
        store._write_index()
        return store

    @classmethod
    def open(cls, name: str, root: Path | None = None) -> PatchStore:
        """Open an existing store by name (or path)."""
        folder = Path(name) if Path(name).is_dir() else (root or stores_dir()) / name
        meta_file = folder / "store.json"
        if not meta_file.is_file() and ((folder / "index.csv").is_file() or (folder / "patches").is_dir()):
            raise PatchStoreError(
                f"store {name!r} at {folder} has its patches but no store.json (what the store "
                "holds); restore store.json from a backup or rebuild the store"
            )
        if not meta_file.is_file():
            present = ", ".join(list_stores(root)) or "none"
            hint = " Build it with `asgm demo build`." if name == "demo" else ""
            raise PatchStoreError(f"no patch store {name!r} at {folder} (stores present: {present}).{hint}")
        try:
            meta = StoreMeta.from_dict(json.loads(meta_file.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:  # JSON errors are ValueErrors
            raise PatchStoreError(f"{meta_file} is corrupt ({exc}); restore it or rebuild the store") from None
        if meta.name != folder.name and _NAME_RE.match(folder.name):
            # A copied or renamed store is called by its folder, never by the name it was built under.
            meta = replace(meta, name=folder.name)
        return cls(folder, meta)

    @property
    def name(self) -> str:
        return self.meta.name

    # -- index ---------------------------------------------------------------------------------
    def index(self) -> pd.DataFrame:
        """The index table (a copy), one row per patch, sorted by sample_id."""
        with self._lock:
            return self._load_index().copy()

    def _load_index(self) -> pd.DataFrame:
        if self._index is None:
            self._index = read_index(self.root, self.name, self.meta.patches, PatchStoreError)
        return self._index

    def _write_index(self) -> None:
        df = self._load_index().sort_values("sample_id").reset_index(drop=True)
        self._index = df
        self._rows = None
        atomic.write_text(self.root / "index.csv", df.to_csv(index=False))
        # The count goes in after the index: a crash in between leaves more rows than recorded, never fewer.
        self.meta = replace(self.meta, patches=len(df), by_label=_counts(df, "label"), by_set=_counts(df, "set"))
        atomic.write_json(self.root / "store.json", asdict(self.meta))

    def __len__(self) -> int:
        return len(self.index())

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in set(self.index()["sample_id"])

    def sample_ids(self) -> list[str]:
        return list(self.index()["sample_id"])

    # -- patches -------------------------------------------------------------------------------
    def patch_path(self, sample_id: str) -> Path:
        if not _ID_RE.match(sample_id):
            raise PatchStoreError(f"invalid sample_id {sample_id!r}")
        return self.root / "patches" / f"{sample_id}.tif"

    def write_patch(self, patch: Patch) -> None:
        """Write one patch GeoTIFF atomically and add/replace its index row."""
        self._add_rows([self._write_file(patch)])

    def write_patches(self, patches: Iterable[Patch]) -> int:
        """Write many patches, updating the index once at the end; returns how many were written."""
        rows = [self._write_file(p) for p in patches]
        self._add_rows(rows)
        return len(rows)

    def _write_file(self, patch: Patch) -> dict[str, Any]:
        import numpy as np

        data = np.asarray(patch.data)
        if data.ndim != 3 or data.shape[0] != len(patch.bands):
            raise PatchStoreError(f"{patch.sample_id}: data shape {data.shape} does not match {len(patch.bands)} bands")
        if data.shape[1:] != (patch.grid.size, patch.grid.size):
            raise PatchStoreError(
                f"{patch.sample_id}: data shape {data.shape[1:]} does not match grid size {patch.grid.size}"
            )
        data = np.clip(np.nan_to_num(data, nan=0.0), 0, 65535).astype(np.uint16)
        path = self.patch_path(patch.sample_id)
        tags = {
            "sample_id": patch.sample_id,
            "label": str(int(patch.label)),
            "set": patch.set,
            "lon": repr(float(patch.lon)),
            "lat": repr(float(patch.lat)),
            "source": patch.source,
            "date_start": patch.date_start,
            "date_end": patch.date_end,
            "product_level": patch.product_level,
            "units": "reflectance x 10000 (DN)",
        }
        write_geotiff(path, data, patch.grid.crs, patch.grid.transform, patch.bands, tags, nodata=0)
        return {
            "sample_id": patch.sample_id,
            "label": int(patch.label),
            "set": patch.set,
            "lon": float(patch.lon),
            "lat": float(patch.lat),
            "epsg": patch.grid.epsg,
            "size": patch.grid.size,
            "source": patch.source,
            "bands": ",".join(patch.bands),
            "date_start": patch.date_start,
            "date_end": patch.date_end,
            "product_level": patch.product_level,
            "masked_fraction": round(masked_fraction(data), 6),
            "path": f"patches/{patch.sample_id}.tif",
            # The imagery year (start of the composite window): packs mix years, models should not.
            "year": int(patch.date_start[:4]) if patch.date_start[:4].isdigit() else None,
            "clear_threshold": patch.clear_threshold,
            "confuser": patch.confuser,
        }

    def _add_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        import pandas as pd

        new = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        with self._lock:
            df = self._load_index()
            df = df[~df["sample_id"].isin(new["sample_id"])]
            self._index = pd.concat([df, new], ignore_index=True) if len(df) else new
            self._write_index()

    def read_patch(self, sample_id: str) -> Patch:
        """Read one patch; a missing or unreadable file is a clear ``PatchStoreError``."""
        import rasterio
        from rasterio.errors import RasterioIOError

        from asgm.grid import PatchGrid

        with self._lock:
            # A dict lookup, not a scan of the index: stores of thousands of patches are read patch by
            # patch (training's first epoch, ``asgm predict``), from several threads.
            if self._rows is None:
                self._rows = {str(r["sample_id"]): r for r in self._load_index().to_dict("records")}
            r = self._rows.get(sample_id)
        if r is None:
            raise PatchStoreError(f"no patch {sample_id!r} in store {self.name!r}")
        path = self.patch_path(sample_id)
        if not path.exists():
            raise PatchStoreError(
                f"patch file for {sample_id!r} is missing ({path}); rebuild store {self.name!r} or fetch the patch again"  # noqa: E501
            )
        try:
            with rasterio.open(path) as src:
                data = src.read()
                tags = src.tags()
                bands = tuple(src.descriptions)
                grid = PatchGrid(epsg=src.crs.to_epsg(), transform=src.transform, size=src.width)
        except (RasterioIOError, AttributeError, ValueError) as exc:
            raise PatchStoreError(
                f"patch file for {sample_id!r} is corrupt ({path}: {exc}); delete it and rebuild or re-fetch it"
            ) from exc
        return Patch(
            sample_id=sample_id,
            label=int(r["label"]),
            set=str(r["set"]),
            lon=float(tags.get("lon", r["lon"])),
            lat=float(tags.get("lat", r["lat"])),
            grid=grid,
            data=data,
            bands=bands,
            source=tags.get("source", ""),
            date_start=tags.get("date_start", ""),
            date_end=tags.get("date_end", ""),
            product_level=tags.get("product_level", ""),
            confuser=str(r.get("confuser", "") or ""),
            clear_threshold=_number_or_none(r.get("clear_threshold")),
        )

    # -- OSM masks on the same grid ------------------------------------------------------------
    def osm_path(self, sample_id: str) -> Path:
        return self.root / "osm" / f"{self.patch_path(sample_id).stem}.tif"

    def write_osm(self, sample_id: str, masks: np.ndarray, layers: Sequence[str]) -> None:
        """Write (layers, H, W) uint8 OSM masks for a patch, on the patch's own grid."""
        import numpy as np
        import rasterio

        masks = np.asarray(masks)
        patch_file = self.patch_path(sample_id)
        if not patch_file.exists():
            raise PatchStoreError(f"no patch {sample_id!r} in store {self.name!r} to attach OSM masks to")
        with rasterio.open(patch_file) as src:
            crs, transform, shape = src.crs, src.transform, (src.height, src.width)
        if masks.shape != (len(layers), *shape):
            raise PatchStoreError(f"{sample_id}: OSM masks of shape {masks.shape}, expected {(len(layers), *shape)}")
        write_geotiff(self.osm_path(sample_id), masks.astype(np.uint8), crs, transform, layers)

    def read_osm(self, sample_id: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """(layers, H, W) uint8 masks and their layer names, or None when the patch has none."""
        path = self.osm_path(sample_id)
        if not path.exists():
            return None
        import rasterio
        from rasterio.errors import RasterioIOError

        try:
            with rasterio.open(path) as src:
                return src.read(), tuple(src.descriptions)
        except RasterioIOError as exc:
            raise PatchStoreError(
                f"OSM mask file for {sample_id!r} is corrupt ({path}); rerun `asgm osm rasterize`"
            ) from exc

    def osm_info(self) -> dict[str, Any] | None:
        """How the OSM masks were made (``osm.json``), or None if the store has no OSM layers."""
        path = self.root / "osm.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_osm_info(self, info: dict[str, Any]) -> None:
        atomic.write_json(self.root / "osm.json", info)

    # -- reporting -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts per set and label, for CLI ``--json`` and the app's home page.

        The counts come from store.json when it recorded them at the last write of the index and the index
        still has that many lines (no pandas, no parse: the app's first page lists every store); otherwise
        (older stores, an index changed since) from the index itself, whose checks then report any damage."""
        counts = recorded_counts(self.root, self.meta.patches, self.meta.by_label, self.meta.by_set)
        if counts is None:
            df = self.index()
            counts = (int(len(df)), _counts(df, "label"), _counts(df, "set"))
        patches, by_label, by_set = counts
        return {
            "name": self.name,
            "root": str(self.root),
            "source": self.meta.source,
            "synthetic": self.meta.synthetic,
            "bands": list(self.meta.bands),
            "size": self.meta.size,
            "product_level": self.meta.product_level,
            "date_start": self.meta.date_start,
            "date_end": self.meta.date_end,
            "patches": patches,
            "by_label": by_label,
            "by_set": by_set,
            "osm": self.osm_info() is not None,
            "credits": list(self.meta.credits),
        }


def _number_or_none(value: Any) -> float | None:
    """An index cell as a float, None when empty (NaN) or absent (stores built before the column)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def _counts(df: pd.DataFrame, column: str) -> dict[str, int]:
    """Rows per value of an index column, keys as text in sorted value order ({} for an empty index)."""
    return {str(k): int(v) for k, v in df[column].value_counts().sort_index().items()} if len(df) else {}
