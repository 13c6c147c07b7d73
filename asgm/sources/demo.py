"""The embedded real demo pack: Earth Genome's Sentinel-2 RGB chips of Bolívar cut into a patch store.

Each gallery PNG is a grid of 48 x 48 px chips (10 m, north-up UTM, centred on the point) with
RGB = clip([B4, B3, B2] / 3000, 0, 1) * 255 from a 2019 Level-1C Cloud Score+ median. We invert the
display stretch (value / 255 x 0.3 reflectance, i.e. x 3000 DN): approximate top-of-atmosphere
reflectance, quantized to 256 levels and saturated above 0.3.

Credits: Earth Genome, Amazon Mining Watch (CC BY 4.0); contains modified Copernicus Sentinel data 2019.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from PIL import Image
from tqdm import tqdm

from asgm import CREDITS, registry
from asgm.config import RGB_BANDS
from asgm.errors import AsgmError
from asgm.grid import patch_grid
from asgm.points import read_points_file
from asgm.store import Patch, PatchStore, StoreMeta

STORE_NAME = "demo"
CHIP = 48
DATE_START, DATE_END = "2019-01-01", "2020-01-01"

#: Cloud-threshold code of each of Earth Genome's 332 v2.0 Bolívar negatives, in file order
#: (A = 0.75, F = 0.05, T = 0.1, Z = 0; only A and F have galleries). Provenance: Earth Genome's
#: data/sampling_locations/collected_locations2026-05-04T09:47.geojson at commit bbbcb2d
#: (earthrise-media/mining-detector), as recorded in shared/data/README.md.
NEGATIVE_CODES = (
    "AAAAATAFAZTAAAAZAFAATAAAAAFAFTAAAAAAAAAATFAAATAAAFAFAFTATAFTFZTZAAATTTFAAAAAAAAAAFAAFAAAAFZTAAAAAAAAATTZAAAFAA"
    "AAAATAAAAAAAFAAAAAFAZAAFTAAAAAAFTAAAAAAAAAAAAATAAAAAAFAAAAAAZTAAAAATAAATAFAAAAAFAAAAATATAAAFATFAAAAATAZAAAATAAAA"
    "TAFAAAATFAAATFAATAAAAAAAAAAAATAAAAAATAAAATAAAAFFAAAAAFAAAAATATAAAFAAAAAAAAFAFAAAAAAATTAAAAAAAAFAAATAAAAAAAAATA"
)
GALLERY_KEYS = {"A": "eg_negatives_gallery_a", "F": "eg_negatives_gallery_f"}
CLEAR_THRESHOLDS = {"A": 0.75, "F": 0.05}


class DemoBuildError(AsgmError):
    """The demo pack could not be built; the message says why and what to do."""


def _chips(gallery: np.ndarray, n: int) -> list[np.ndarray]:
    """Cut the first ``n`` chips (row-major, C = width // 48 columns) from a gallery image."""
    cols = gallery.shape[1] // CHIP
    if math.ceil(n / cols) * CHIP > gallery.shape[0] or cols != math.ceil(math.sqrt(n)):
        raise DemoBuildError(f"gallery of shape {gallery.shape} cannot hold {n} chips of {CHIP} px in a square grid")
    return [gallery[(k // cols) * CHIP:(k // cols + 1) * CHIP, (k % cols) * CHIP:(k % cols + 1) * CHIP] for k in range(n)]


def _to_dn(chip: np.ndarray) -> np.ndarray:
    """(48, 48, 3) uint8 display RGB -> (3, 48, 48) uint16 DN for bands B4, B3, B2."""
    return np.rint(chip.astype(np.float64).transpose(2, 0, 1) / 255.0 * 3000.0).astype(np.uint16)


def _load_gallery(key: str) -> np.ndarray:
    with Image.open(registry.get(key)) as img:
        return np.asarray(img.convert("RGB"))


def demo_items() -> list[dict]:
    """Every demo chip as a dict: sample_id, label, set, lon, lat, dn (3, 48, 48), clear_threshold."""
    from asgm.points import STUDY_SETS

    items: list[dict] = []
    pos = read_points_file(registry.get("eg_positives"), "egp", 1, "eg-positives")
    for chip, row in zip(_chips(_load_gallery("eg_positives_gallery"), len(pos)), pos.itertuples(), strict=True):
        items.append(dict(sample_id=row.sample_id, label=1, set="eg-positives", lon=row.lon, lat=row.lat,
                          dn=_to_dn(chip), clear_threshold=0.75))

    neg = read_points_file(registry.get("eg_negatives"), "egn", 0, "eg-negatives")
    if len(neg) != len(NEGATIVE_CODES):
        raise DemoBuildError(f"expected {len(NEGATIVE_CODES)} Earth Genome negatives, the file has {len(neg)}")
    # The study's curated negatives are a subset of these points with identical coordinates: reuse
    # their study sample ids so the demo and the study share identities.
    key, prefix, label = STUDY_SETS["curated"]
    curated = read_points_file(registry.get(key), prefix, label, "curated")
    # The two files print the same coordinates with different float rounding (last digit): match
    # to the nearest study point within 1 m.
    from asgm.points import nearest_index_m

    idx, dist = nearest_index_m(neg[["lon", "lat"]].to_numpy(), curated[["lon", "lat"]].to_numpy())
    study_ids = [curated.sample_id.iloc[i] if d < 1.0 else None for i, d in zip(idx, dist, strict=True)]
    counts = Counter(NEGATIVE_CODES)
    chips = {code: _chips(_load_gallery(g), counts[code]) for code, g in GALLERY_KEYS.items()}
    seen: Counter[str] = Counter()
    for row, code, sid in zip(neg.itertuples(), NEGATIVE_CODES, study_ids, strict=True):
        k = seen[code]
        seen[code] += 1
        if code not in chips:
            continue
        items.append(dict(sample_id=sid or row.sample_id, label=0, set="curated" if sid else "eg-negatives",
                          lon=row.lon, lat=row.lat, dn=_to_dn(chips[code][k]), clear_threshold=CLEAR_THRESHOLDS[code]))
    return items


def build(progress: bool = True, root=None) -> PatchStore:
    """Build (or rebuild) the ``demo`` patch store from the mirror or the upstream URLs."""
    items = demo_items()
    meta = StoreMeta(
        name=STORE_NAME, source="demo", bands=RGB_BANDS, size=CHIP, product_level="L1C",
        date_start=DATE_START, date_end=DATE_END,
        description=(
            "Real Sentinel-2 L1C RGB chips of Bolívar (Earth Genome), 2019 Cloud Score+ median; approximate "
            "TOA reflectance from 8-bit display values (value/255 x 0.3)."
        ),
        credits=(CREDITS["earth_genome"], "Contains modified Copernicus Sentinel data 2019.", CREDITS["study"]),
        extra={"stretch": "DN = value / 255 * 3000", "clear_thresholds": {"A": 0.75, "F": 0.05}},
    )
    store = PatchStore.create(meta, root=root, overwrite=True)
    store.write_patches(
        Patch(
            sample_id=it["sample_id"], label=it["label"], set=it["set"], lon=it["lon"], lat=it["lat"],
            grid=patch_grid(it["lon"], it["lat"], CHIP), data=it["dn"], bands=RGB_BANDS, source="demo",
            date_start=DATE_START, date_end=DATE_END, product_level="L1C",
        )
        for it in tqdm(items, desc="demo patches", unit="patch", disable=not progress)
    )
    return store
