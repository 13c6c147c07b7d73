"""The Amazon training pack: Earth Genome's RGB chips of mines and non-mines across the Amazon (2019-2025).

Sixteen sets of Earth Genome's sampling files and chip galleries (shared/data/README.md, "Amazon training
pack"; only those), cut with ``asgm.sources.gallery`` exactly like the demo pack (same 48 px chips, same DN
encoding, each chip on its point's 10 m UTM grid) and written, together with the demo pack's chips, into one
patch store ``amazon``. Sample ids are ``am-<set prefix>-<position in the set's file>``, stable per set; the
index records each chip's set, imagery window and year.

Positive sets: every point has a chip, one to one, in file order. Negative sets: each point carries a
cloud-threshold code (A/F/T/Z, recovered from Earth Genome's location file
``data/sampling_locations/collected_locations2026-05-04T09:47.geojson`` at commit bbbcb2d, as recorded in
the data README); only A and F have galleries.

Credits: Earth Genome, Amazon Mining Watch (CC BY 4.0); contains modified Copernicus Sentinel data 2019,
2023, 2024, 2025.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asgm import CREDITS, registry
from asgm.data.points import read_points_file
from asgm.data.store import PatchStore
from asgm.errors import AsgmError
from asgm.sources import demo
from asgm.sources.gallery import CLEAR_THRESHOLDS, Chip, coded_chips, gallery_chips, write_chip_store

STORE_NAME = "amazon"
CREDIT_SENTINEL = "Contains modified Copernicus Sentinel data 2019, 2023, 2024, 2025."


class AmazonPackError(AsgmError):
    """The Amazon pack could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class PackSet:
    """One sampling file + its galleries: name upstream, sample_id prefix, label, points, codes."""

    name: str
    prefix: str
    label: int
    n_points: int
    codes: str | None = None  # negatives only: one cloud-threshold letter per point, file order

    def window(self) -> tuple[str, str]:
        """(start, end) of the imagery window, from the gallery's file name."""
        key = registry.amazon_key(self.name, "A")
        dates = re.findall(r"(\d{4}-\d{2}-\d{2})", Path(registry.FILES[key].relpath).name)
        return dates[0], dates[1]


SETS: tuple[PackSet, ...] = (
    PackSet("v3.6_2023_positives", "am-v36p", 1, 25),
    PackSet("dredge_mining_positives2025-08", "am-dredge", 1, 41),
    PackSet("v3.3_2023_positives", "am-v33p", 1, 121),
    PackSet("v0.5-0.8-0.9ensemble_2023_positives", "am-ens23p", 1, 129),
    PackSet("BD_MineriaAurifera_Peru-curated2025-09", "am-peru", 1, 188),
    PackSet("v3.2-3.7ensemble_positives2025-08", "am-ens25p", 1, 478),
    PackSet("v4.18_2025old_core_positives", "am-v418p", 1, 479),
    PackSet("industrial_negatives2025-08", "am-ind", 0, 177, (
        "AAAAAAAFAFAAFAATAAFAZAFATAAAFAAFAFTFAAAAAAZFAAAAAATAAAAAAAAAAAAAFTAATATZTFAAFAFAZFFFAZAAAZFTAZAAAAAA"
        "AAAAAAZATAFTAAZAAAZAFAAAAAAAFAFAAAFATAFAAATFAFFAZTATAZAAAAATAAAAAFAATATAFTAAA"
    )),
    PackSet("landslide_negatives2025-08", "am-lsl", 0, 121, (
        "AAAAAATATAAAAAFTAAFATAAAAAATFAAAAATAAAAAFAFTTAAAZAAAATATAAAFAAFAATAAAAFFATATAAZAZFAATAFAAAZAFAFAATAA"
        "TAAAAAAFAAAAAZTFAAAFA"
    )),
    PackSet("aquaculture-faziendas-negatives2025-08", "am-aqua", 0, 162, (
        "ATAFAAATAAAAFATAATAFATATAAFAAAAAZAAFAAZAFFAAFAAAAAAAFAFAAAAAAAFAAAAAATAAAFAATAATZAAAZTAAAFTTTAAAAFAA"
        "AAAAAAAAZAAFATZTAATFAZAAAATAAAAAAAFZAAAAZAAFAAATTAAAFFAAAAAFAA"
    )),
    PackSet("riverbank_negatives_bolivia_v2025-08", "am-rivb", 0, 60, (
        "TAAAAAAAATAAAAAAAFTFZZFAAFAAAAFAFFFAAATAAAAAAAAATAAFFAFFAATA"
    )),
    PackSet("ACAexpanded_amazon_negatives2025-08", "am-aca", 0, 185, (
        "FAAAZTAZAAATTAAAFAAAAATATAAAAATFAAAAATATAATAAAAFAAAAATAAAFAAAAAAAAAFTAAAAAAZAAATAAAAAAAFAAATAFAAATZA"
        "TAAAZAAATAAAAAAAAAFAAZAFAAAAAAAZAAAAAAFZAAAAAAZAAAAAAATAAAAAFATATFTAAAAATAAAAAATAFTAA"
    )),
    PackSet("v2.4_amazon_negatives", "am-v24n", 0, 245, (
        "AAAAFAFAAAAAAATFAZAAAAAAAAATAAFAAAAAAAAAZAATAAAAATAAAAAAATATAAAAAZAFFAAAATTAFAFAAAAATFATFAFAAAAAAAAA"
        "ATAAAAAAAAAAAFTFFAAZZAZAAAAFAAATAAFFFAAAAAAAAAAFAAAATAFAAATAAAAZAAAFAAAFTAAAAAAZAAAFAAAATAFAAFTAFZAA"
        "AAAAAZAFAAAAZTAATAAAAFAAZAAFAATATFAAAAFAAAAZA"
    )),
    PackSet("v3.1_2023_negatives", "am-v31n", 0, 195, (
        "TAZFTAAAAAFAAATFAAFAAAAAZAAAAAATFZAAAAZAAAAAAAAFAAFATAATFFAAFATZAAAAAAAAAAAAAZAATAAAAAAZAZFZFAZAAAAA"
        "AFAAAAZAAAAAAAAAAAAAAAZAATAAAAAAAAFAATATAATFAAFTFTAAAAAAAAAFAAAFAAAAAAAAATAZAAFAAAATAATTFFAFAAA"
    )),
    PackSet("v3.2_2023_negatives", "am-v32n", 0, 225, (
        "AFTZAAAAAZTTTAFAAFAAAAFFAAAAAATAAAAAAFZAATAAAFZAAAAAAAAFAFFAAAAAAAAAAATFAAZAFAFAAATTATAZTATAAATAAAAA"
        "ATTAATATAAAFFAAAAAAAATZTAAAAAFAAAAFAAFAAFAAAAAATAAAAAAAAATAAAAAAAFAATAFAAAAAZAAAAAFAAFAAZATAAFAAAAAF"
        "AAFAFAAAFFATZZFTAAAAAAZAA"
    )),
    PackSet("full_amazon_v9_negatives", "am-v9n", 0, 377, (
        "AAAAAAAAZATFAAAAAAFATAAAFAAZATTTAAZATAFAAAAAAAAAAAAAAAAAAAAFATATAATAAATZAFAAZAAFAAAAZZAAAAAAAAAAAAAA"
        "AATAAAAAZTFAZZATTAAAAATTTAAATAAAAATAAAAAAAAZAAAAAAAATATATAATAAAAAAAAAAAAAAAAAAFATAFATFTAFTAAAZFZAAAF"
        "AZAAZAZAATAFTAAZAAAAFFAFAAAAZAFAAAAAAAFAAAATTFAAZAAFTAAAAZAAAAAAAAAATATAAAAAAAAAAAAAAAATATAATAAAAAZF"
        "FAAAFAAZAAAAATTFAAAAAAATTFAAAAAAAZAFAFATAAAAAZTAAZAAAAAAFAAZAAAZZFFAFTFAAAZAA"
    )),
)


def pack_chips(sets: tuple[PackSet, ...] = SETS) -> list[Chip]:
    """Every chip of the pack's sets. A point repeated within its file keeps its first chip only
    (one upstream positive file lists one point twice)."""
    out: list[Chip] = []
    for s in sets:
        pts = read_points_file(registry.get(registry.amazon_key(s.name)), s.prefix, s.label, s.name,
                               allow_duplicates=True)
        if len(pts) != s.n_points:
            raise AmazonPackError(f"{s.name}: expected {s.n_points} points, the file has {len(pts)}; "
                                  "the pinned file changed: check asgm/registry.py")
        start, end = s.window()
        chips: list[tuple[np.ndarray, float] | None]
        if s.codes is None:
            chips = [(dn, CLEAR_THRESHOLDS["A"]) for dn in gallery_chips(registry.amazon_key(s.name, "A"), len(pts))]
        else:
            chips = coded_chips(s.codes, {c: registry.amazon_key(s.name, c) for c in CLEAR_THRESHOLDS})
        seen: set[tuple[float, float]] = set()
        for row, chip in zip(pts.itertuples(), chips, strict=True):
            if chip is None or (row.lon, row.lat) in seen:
                continue
            seen.add((row.lon, row.lat))
            out.append(Chip(row.sample_id, s.label, s.name, row.lon, row.lat, chip[0], start, end, chip[1]))
    return out


def build(progress: bool = True, root: Path | None = None) -> PatchStore:
    """Build (or rebuild) the ``amazon`` store: the demo pack's chips plus the Amazon pack's."""
    meta = demo.store_meta(
        STORE_NAME, source="amazon", date_start="2019-01-01", date_end="2026-01-01",
        description=(
            "Real Sentinel-2 L1C RGB chips of mines and non-mines across the Amazon (Earth Genome): the demo "
            "pack (Bolívar, 2019) plus the Amazon training pack (2019-2025); per-chip imagery window and year "
            "in the index; approximate TOA reflectance from 8-bit display values (value/255 x 0.3)."
        ),
        credits=(CREDITS["earth_genome"], CREDIT_SENTINEL, CREDITS["study"]),
    )
    meta.extra["sets"] = {"demo": list(demo.SETS), "amazon": [s.name for s in SETS]}
    return write_chip_store(meta, demo.demo_chips() + pack_chips(), root=root, progress=progress)
