"""Integrity of a patch store: every patch file present and readable with the store's size, dtype and bands,
on the grid its index row says, its masked share recomputed from the pixels (``asgm patches check``, and the
check before training)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgm.data.store import PatchStore, PatchStoreError, masked_fraction


@dataclass
class StoreCheck:
    """What ``check_store`` found."""

    store: str
    patches: int  # rows in the index
    checked: int  # patches checked
    problems: dict[str, str] = field(default_factory=dict)  # sample_id -> one-line cause
    store_problems: list[str] = field(default_factory=list)
    masked_fraction: dict[str, float] = field(default_factory=dict)  # from the pixels
    masked_mismatch: dict[str, tuple[float, float]] = field(default_factory=dict)  # (index, pixels)

    @property
    def ok(self) -> bool:
        """No unusable patch and nothing wrong with the store (masked-share drift alone is fixable)."""
        return not self.problems and not self.store_problems

    def summary(self, limit: int = 3) -> str:
        """One line: how many patches are unusable and the first few causes."""
        if self.ok:
            return f"store {self.store!r}: all {self.checked} patches checked are usable"
        parts = list(self.store_problems) + list(self.problems.values())[:limit]
        more = len(self.problems) - min(limit, len(self.problems))
        return (
            f"store {self.store!r}: {len(self.problems)} of {self.checked} patches cannot be used: "
            + "; ".join(parts)
            + (f"; and {more} more" if more else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "ok": self.ok,
            "patches": self.patches,
            "checked": self.checked,
            "problems": dict(self.problems),
            "store_problems": list(self.store_problems),
            "masked_mismatch": {k: {"index": a, "pixels": b} for k, (a, b) in self.masked_mismatch.items()},
        }


def inspect_file(store: PatchStore, sample_id: str, pixels: bool = True) -> float | None:
    """Check one patch file against the store and return its masked share computed from the pixels
    (None with ``pixels=False``, which reads the header only). A file that is missing, empty,
    unreadable, of the wrong size, dtype or bands is a ``PatchStoreError`` with a one-line cause."""
    path = store.patch_path(sample_id)
    where = f"patch {sample_id!r} ({path.relative_to(store.root)})"
    if not path.is_file():
        raise PatchStoreError(f"{where}: file is missing")
    if path.stat().st_size == 0:
        raise PatchStoreError(f"{where}: file is empty (0 bytes)")
    import rasterio
    from rasterio.errors import RasterioError

    size, bands = int(store.meta.size), tuple(store.meta.bands)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise PatchStoreError(f"{where}: GeoTIFF has no CRS")
            if (src.width, src.height) != (size, size):
                raise PatchStoreError(f"{where}: {src.width}x{src.height} px, the store holds {size}x{size} px")
            if src.count != len(bands):
                raise PatchStoreError(f"{where}: {src.count} bands, the store holds {len(bands)} ({','.join(bands)})")
            if set(src.dtypes) != {"uint16"}:
                raise PatchStoreError(f"{where}: pixels are {src.dtypes[0]}, the store holds uint16 DN")
            if tuple(src.descriptions) != bands:
                names = "no band names" if not any(src.descriptions) else f"bands {list(src.descriptions)}"
                raise PatchStoreError(f"{where}: {names}, the store holds {list(bands)}")
            return masked_fraction(src.read()) if pixels else None
    except (RasterioError, OSError, ValueError) as exc:
        cause = " ".join(str(exc).replace(str(path), path.name).split())[:200]
        raise PatchStoreError(f"{where}: unreadable GeoTIFF ({cause})") from None


def _check_placement(store: PatchStore, sample_id: str, row: dict[str, Any]) -> None:
    """``PatchStoreError`` when the file's CRS or centre disagrees with its index row (OSM masks and the
    Map footprint are drawn from the row): a different EPSG, or a centre more than a pixel away."""
    import rasterio
    from pyproj import Transformer

    where = f"patch {sample_id!r} ({store.patch_path(sample_id).relative_to(store.root)})"
    with rasterio.open(store.patch_path(sample_id)) as src:
        epsg, transform, size = src.crs.to_epsg(), src.transform, src.width
    if epsg != int(row["epsg"]):
        raise PatchStoreError(
            f"{where}: CRS is EPSG:{epsg}, its index row says EPSG:{int(row['epsg'])}; "
            "re-fetch the patch or rebuild the store"
        )
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(
        float(row["lon"]), float(row["lat"])
    )
    cx, cy = transform.c + transform.a * (size // 2 + 0.5), transform.f + transform.e * (size // 2 + 0.5)
    off = float(((cx - x) ** 2 + (cy - y) ** 2) ** 0.5)
    if not off <= abs(transform.a) * 1.5:
        raise PatchStoreError(
            f"{where}: its centre is {off:.0f} m from the point of its index row "
            f"({float(row['lon']):.5f}, {float(row['lat']):.5f}); re-fetch the patch or rebuild the store"
        )


def check_store(
    store: PatchStore,
    sample_ids: Sequence[str] | None = None,
    pixels: bool = True,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> StoreCheck:
    """Verify the patches (all, or ``sample_ids``) against the index: every file present and readable
    with the store's size, dtype and bands; with ``pixels``, the masked share recomputed from the
    pixels and compared with the index. An unreadable index raises ``PatchStoreError``."""
    df = store.index()
    ids = list(df["sample_id"]) if sample_ids is None else [str(x) for x in sample_ids]
    indexed = dict(zip(df["sample_id"], df["masked_fraction"].astype(float), strict=True))
    out = StoreCheck(store=store.name, patches=len(df), checked=len(ids))
    if sample_ids is None:
        on_disk = {p.stem for p in (store.root / "patches").glob("*.tif")}
        stray = sorted(on_disk - set(indexed))
        if stray:
            out.store_problems.append(
                f"{len(stray)} patch file(s) are not in the index (e.g. {', '.join(stray[:3])}): the index may "
                "have been cut or replaced"
            )

    dup = sorted(df.loc[df["sample_id"].duplicated(), "sample_id"].astype(str).unique())
    if dup:
        out.store_problems.append(
            f"the index lists {len(dup)} sample_id(s) more than once (e.g. {', '.join(dup[:3])}); rebuild the store"
        )
    rows = {str(r["sample_id"]): r for r in df.to_dict("records")}

    def one(sid: str) -> tuple[str, float | None, str | None]:
        if sid not in indexed:
            return sid, None, "not in the index"
        try:
            label = rows[sid]["label"]
            if label not in (0, 1):
                raise PatchStoreError(
                    f"patch {sid!r}: index label is {label!r}, not 0 or 1 (training would "
                    "drop it); fix the row or rebuild the store"
                )
            frac = inspect_file(store, sid, pixels=pixels)
            _check_placement(store, sid, rows[sid])
            return sid, frac, None
        except PatchStoreError as exc:
            return sid, None, str(exc)

    with ThreadPoolExecutor(max(1, workers)) as pool:  # reading GeoTIFFs releases the GIL
        for done, (sid, frac, problem) in enumerate(pool.map(one, ids), start=1):
            if problem is not None:
                out.problems[sid] = problem
            elif frac is not None:
                out.masked_fraction[sid] = frac
                if abs(frac - indexed[sid]) > 1e-3:
                    out.masked_mismatch[sid] = (indexed[sid], frac)
            if progress:
                progress(done, len(ids))
    return out
