"""Earth Genome's RGB chip galleries cut into patch stores: shared by the demo pack and the Amazon pack.

Each gallery PNG is a grid of 48 x 48 px chips (10 m, north-up UTM, centred on the point) with
RGB = clip([B4, B3, B2] / 3000, 0, 1) * 255 from a Level-1C Cloud Score+ median. We invert the
display stretch (value / 255 x 0.3 reflectance, i.e. x 3000 DN): approximate top-of-atmosphere
reflectance, quantized to 256 levels and saturated above 0.3. That is the ``display_rgb_8bit`` input
encoding (``asgm.config.DISPLAY_RGB_8BIT``), recorded in the stores' ``store.json``; a model trained on
these chips gets every other input encoded the same way (``asgm.model.inputs.encode_bands``).

Negative sets give each point one cloud-threshold code (A = 0.75, F = 0.05, T = 0.1, Z = 0); only A
and F have galleries, and the chip of point i is the number of points before i with the same code.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from asgm import registry
from asgm.config import DISPLAY_RGB_8BIT, RGB_BANDS
from asgm.data.store import Patch, PatchStore, StoreMeta
from asgm.errors import AsgmError
from asgm.grid import patch_grid

CHIP = 48
#: Cloud Score+ threshold of each gallery code (T and Z have no gallery).
CLEAR_THRESHOLDS = {"A": 0.75, "F": 0.05}


class GalleryError(AsgmError):
    """A chip gallery does not match its points; the message says why and what to do."""


@dataclass
class Chip:
    """One labelled gallery chip, ready for the store."""

    sample_id: str
    label: int
    set: str
    lon: float
    lat: float
    dn: np.ndarray  # (3, 48, 48) uint16 DN of B4, B3, B2
    date_start: str
    date_end: str
    clear_threshold: float
    confuser: str = ""


def cut_chips(gallery: np.ndarray, n: int) -> list[np.ndarray]:
    """Cut the first ``n`` chips (row-major, C = width // 48 columns) from a gallery image."""
    cols = gallery.shape[1] // CHIP
    if math.ceil(n / max(cols, 1)) * CHIP > gallery.shape[0] or cols != math.ceil(math.sqrt(n)):
        raise GalleryError(f"gallery of shape {gallery.shape} cannot hold {n} chips of {CHIP} px in a square grid")
    return [
        gallery[(k // cols) * CHIP : (k // cols + 1) * CHIP, (k % cols) * CHIP : (k % cols + 1) * CHIP]
        for k in range(n)
    ]


def to_dn(chip: np.ndarray) -> np.ndarray:
    """(48, 48, 3) uint8 display RGB -> (3, 48, 48) uint16 DN for bands B4, B3, B2."""
    return DISPLAY_RGB_8BIT.levels_to_dn(chip.transpose(2, 0, 1)).astype(np.uint16)


def load_gallery(key: str) -> np.ndarray:
    """The gallery PNG of registry file ``key`` as an (H, W, 3) uint8 array."""
    with Image.open(registry.get(key)) as img:
        return np.asarray(img.convert("RGB"))


def gallery_chips(key: str, n: int) -> list[np.ndarray]:
    """The first ``n`` chips of gallery ``key`` as (3, 48, 48) DN arrays."""
    return [to_dn(c) for c in cut_chips(load_gallery(key), n)]


def coded_chips(codes: str, galleries: Mapping[str, str]) -> list[tuple[np.ndarray, float] | None]:
    """Per point (in file order): its (DN chip, clear threshold) from the gallery of its code, or None
    when its code has no gallery. Raises ``GalleryError`` if a gallery's chip count disagrees."""
    counts = Counter(codes)
    chips = {code: gallery_chips(key, counts[code]) for code, key in galleries.items() if counts[code]}
    seen: Counter[str] = Counter()
    out: list[tuple[np.ndarray, float] | None] = []
    for code in codes:
        k = seen[code]
        seen[code] += 1
        out.append((chips[code][k], CLEAR_THRESHOLDS[code]) if code in chips else None)
    return out


def write_chip_store(
    meta: StoreMeta, chips: Iterable[Chip], root: Path | None = None, progress: bool = True
) -> PatchStore:
    """(Re)build store ``meta.name`` from chips, each georeferenced on its point's 10 m UTM grid."""
    chips = list(chips)
    if len({c.sample_id for c in chips}) != len(chips):
        raise GalleryError(f"store {meta.name!r}: duplicate sample ids among the chips")
    store = PatchStore.create(meta, root=root, overwrite=True)
    store.write_patches(
        Patch(
            sample_id=c.sample_id,
            label=c.label,
            set=c.set,
            lon=c.lon,
            lat=c.lat,
            grid=patch_grid(c.lon, c.lat, CHIP),
            data=c.dn,
            bands=RGB_BANDS,
            source=meta.source,
            date_start=c.date_start,
            date_end=c.date_end,
            product_level="L1C",
            clear_threshold=c.clear_threshold,
            confuser=c.confuser,
        )
        for c in tqdm(chips, desc=f"{meta.name} patches", unit="patch", disable=not progress)
    )
    return store
