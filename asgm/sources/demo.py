"""The embedded real demo pack: Earth Genome's Sentinel-2 RGB chips of Bolívar cut into a patch store.

The chips (2019 Level-1C Cloud Score+ median) and their DN encoding are described in
``asgm.sources.gallery``, which does the cutting, georeferencing and writing.

Credits: Earth Genome, Amazon Mining Watch (CC BY 4.0); contains modified Copernicus Sentinel data 2019.
"""

from __future__ import annotations

from pathlib import Path

from asgm import CREDITS, registry
from asgm.config import DISPLAY_RGB_8BIT, RGB_BANDS
from asgm.data.points import read_points_file
from asgm.data.store import PatchStore, StoreMeta
from asgm.errors import AsgmError
from asgm.sources.gallery import CHIP, CLEAR_THRESHOLDS, Chip, coded_chips, gallery_chips, write_chip_store

STORE_NAME = "demo"
DATE_START, DATE_END = "2019-01-01", "2020-01-01"
#: The demo pack's sets (all in north-east Bolívar, 2019).
SETS = ("eg-positives", "eg-negatives", "curated")

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


class DemoBuildError(AsgmError):
    """The demo pack could not be built; the message says why and what to do."""


def demo_chips() -> list[Chip]:
    """Every demo chip (sample_id, label, set, lon, lat, DN, dates, clear threshold)."""
    from asgm.data.points import STUDY_SETS, nearest_index_m

    out: list[Chip] = []
    pos = read_points_file(registry.get("eg_positives"), "egp", 1, "eg-positives")
    for dn, row in zip(gallery_chips("eg_positives_gallery", len(pos)), pos.itertuples(), strict=True):
        out.append(
            Chip(row.sample_id, 1, "eg-positives", row.lon, row.lat, dn, DATE_START, DATE_END, CLEAR_THRESHOLDS["A"])
        )

    neg = read_points_file(registry.get("eg_negatives"), "egn", 0, "eg-negatives")
    if len(neg) != len(NEGATIVE_CODES):
        raise DemoBuildError(f"expected {len(NEGATIVE_CODES)} Earth Genome negatives, the file has {len(neg)}")
    # The study's curated negatives are a subset of these points with identical coordinates: reuse
    # their study sample ids so the demo and the study share identities.
    key, prefix, label = STUDY_SETS["curated"]
    curated = read_points_file(registry.get(key), prefix, label, "curated")
    # The two files print the same coordinates with different float rounding (last digit): match
    # to the nearest study point within 1 m.
    idx, dist = nearest_index_m(neg[["lon", "lat"]].to_numpy(), curated[["lon", "lat"]].to_numpy())
    study_ids = [curated.sample_id.iloc[i] if d < 1.0 else None for i, d in zip(idx, dist, strict=True)]
    for row, chip, sid in zip(neg.itertuples(), coded_chips(NEGATIVE_CODES, GALLERY_KEYS), study_ids, strict=True):
        if chip is None:
            continue
        out.append(
            Chip(
                sid or row.sample_id,
                0,
                "curated" if sid else "eg-negatives",
                row.lon,
                row.lat,
                chip[0],
                DATE_START,
                DATE_END,
                chip[1],
            )
        )
    return out


def store_meta(name: str = STORE_NAME, **overrides: object) -> StoreMeta:
    """The demo store's description (the Amazon pack extends it)."""
    fields: dict = dict(
        name=name,
        source="demo",
        bands=RGB_BANDS,
        size=CHIP,
        product_level="L1C",
        date_start=DATE_START,
        date_end=DATE_END,
        description=(
            "Real Sentinel-2 L1C RGB chips of Bolívar (Earth Genome), 2019 Cloud Score+ median; approximate "
            "TOA reflectance from 8-bit display values (value/255 x 0.3)."
        ),
        credits=(CREDITS["earth_genome"], "Contains modified Copernicus Sentinel data 2019.", CREDITS["study"]),
        extra={"stretch": "DN = value / 255 * 3000", "clear_thresholds": dict(CLEAR_THRESHOLDS)},
        encoding=DISPLAY_RGB_8BIT.model_dump(),
    )
    fields.update(overrides)
    return StoreMeta(**fields)


def build(progress: bool = True, root: Path | None = None) -> PatchStore:
    """Build (or rebuild) the ``demo`` patch store from the mirror or the upstream URLs."""
    return write_chip_store(store_meta(), demo_chips(), root=root, progress=progress)
