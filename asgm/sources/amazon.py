"""The Amazon training pack: Earth Genome's RGB chips of mines and non-mines across the Amazon (2019-2025).

Sixteen sets of Earth Genome's sampling files and chip galleries (shared/data/README.md, "Amazon training
pack"; only those), cut with ``asgm.sources.gallery`` exactly like the demo pack (same 48 px chips, same DN
encoding, each chip on its point's 10 m UTM grid) and written, together with the demo pack's chips, into one
patch store ``amazon``. Part 2 (16 more sets, data README "Amazon training pack, part 2") goes with all of
those into a store of its own, ``amazon2`` (``build_part2``). Sample ids are ``am-<set prefix>-<position in
the set's file>`` (``am2-...`` for part 2), stable per set; the index records each chip's set, imagery window,
year, cloud threshold and confuser class. Rows the data README keeps for independent evaluation are skipped
and listed in ``store.json`` (``extra.excluded_rows``).

Positive sets: every point has a chip, one to one, in file order (``ACAexpanded_amazon_positives2025-08``:
chip i + 8, see ``SETS2``). Negative sets: each point carries a
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
STORE_NAME2 = "amazon2"
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
    #: What the set's negatives are, for set balancing by confuser class ("" for positives): riverbank,
    #: industrial, landslide, aquaculture, cloud, or mixed (earlier models' false positives of unrecorded kinds).
    confuser: str = ""
    #: Rows (file positions) the data README keeps for independent evaluation: never cut into the store.
    excluded: tuple[int, ...] = ()
    #: Positives: the chip of point i is chip i + chip_offset of the gallery (chips before it are not used).
    chip_offset: int = 0
    #: The cloud-threshold codes whose gallery is mirrored (a code without one gives no chip).
    galleries: str = "AF"

    def window(self) -> tuple[str, str]:
        """(start, end) of the imagery window, from the gallery's file name."""
        key = registry.amazon_key(self.name, self.galleries[0])
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
    PackSet(
        "industrial_negatives2025-08",
        "am-ind",
        0,
        177,
        (
            "AAAAAAAFAFAAFAATAAFAZAFATAAAFAAFAFTFAAAAAAZFAAAAAATAAAAAAAAAAAAAFTAATATZTFAAFAFAZFFFAZAAAZFTAZAAAAAA"
            "AAAAAAZATAFTAAZAAAZAFAAAAAAAFAFAAAFATAFAAATFAFFAZTATAZAAAAATAAAAAFAATATAFTAAA"
        ),
        confuser="industrial",
    ),
    PackSet(
        "landslide_negatives2025-08",
        "am-lsl",
        0,
        121,
        (
            "AAAAAATATAAAAAFTAAFATAAAAAATFAAAAATAAAAAFAFTTAAAZAAAATATAAAFAAFAATAAAAFFATATAAZAZFAATAFAAAZAFAFAATAA"
            "TAAAAAAFAAAAAZTFAAAFA"
        ),
        confuser="landslide",
    ),
    PackSet(
        "aquaculture-faziendas-negatives2025-08",
        "am-aqua",
        0,
        162,
        (
            "ATAFAAATAAAAFATAATAFATATAAFAAAAAZAAFAAZAFFAAFAAAAAAAFAFAAAAAAAFAAAAAATAAAFAATAATZAAAZTAAAFTTTAAAAFAA"
            "AAAAAAAAZAAFATZTAATFAZAAAATAAAAAAAFZAAAAZAAFAAATTAAAFFAAAAAFAA"
        ),
        confuser="aquaculture",
    ),
    PackSet(
        "riverbank_negatives_bolivia_v2025-08",
        "am-rivb",
        0,
        60,
        ("TAAAAAAAATAAAAAAAFTFZZFAAFAAAAFAFFFAAATAAAAAAAAATAAFFAFFAATA"),
        confuser="riverbank",
    ),
    PackSet(
        "ACAexpanded_amazon_negatives2025-08",
        "am-aca",
        0,
        185,
        (
            "FAAAZTAZAAATTAAAFAAAAATATAAAAATFAAAAATATAATAAAAFAAAAATAAAFAAAAAAAAAFTAAAAAAZAAATAAAAAAAFAAATAFAAATZA"
            "TAAAZAAATAAAAAAAAAFAAZAFAAAAAAAZAAAAAAFZAAAAAAZAAAAAAATAAAAAFATATFTAAAAATAAAAAATAFTAA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v2.4_amazon_negatives",
        "am-v24n",
        0,
        245,
        (
            "AAAAFAFAAAAAAATFAZAAAAAAAAATAAFAAAAAAAAAZAATAAAAATAAAAAAATATAAAAAZAFFAAAATTAFAFAAAAATFATFAFAAAAAAAAA"
            "ATAAAAAAAAAAAFTFFAAZZAZAAAAFAAATAAFFFAAAAAAAAAAFAAAATAFAAATAAAAZAAAFAAAFTAAAAAAZAAAFAAAATAFAAFTAFZAA"
            "AAAAAZAFAAAAZTAATAAAAFAAZAAFAATATFAAAAFAAAAZA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v3.1_2023_negatives",
        "am-v31n",
        0,
        195,
        (
            "TAZFTAAAAAFAAATFAAFAAAAAZAAAAAATFZAAAAZAAAAAAAAFAAFATAATFFAAFATZAAAAAAAAAAAAAZAATAAAAAAZAZFZFAZAAAAA"
            "AFAAAAZAAAAAAAAAAAAAAAZAATAAAAAAAAFAATATAATFAAFTFTAAAAAAAAAFAAAFAAAAAAAAATAZAAFAAAATAATTFFAFAAA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v3.2_2023_negatives",
        "am-v32n",
        0,
        225,
        (
            "AFTZAAAAAZTTTAFAAFAAAAFFAAAAAATAAAAAAFZAATAAAFZAAAAAAAAFAFFAAAAAAAAAAATFAAZAFAFAAATTATAZTATAAATAAAAA"
            "ATTAATATAAAFFAAAAAAAATZTAAAAAFAAAAFAAFAAFAAAAAATAAAAAAAAATAAAAAAAFAATAFAAAAAZAAAAAFAAFAAZATAAFAAAAAF"
            "AAFAFAAAFFATZZFTAAAAAAZAA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "full_amazon_v9_negatives",
        "am-v9n",
        0,
        377,
        (
            "AAAAAAAAZATFAAAAAAFATAAAFAAZATTTAAZATAFAAAAAAAAAAAAAAAAAAAAFATATAATAAATZAFAAZAAFAAAAZZAAAAAAAAAAAAAA"
            "AATAAAAAZTFAZZATTAAAAATTTAAATAAAAATAAAAAAAAZAAAAAAAATATATAATAAAAAAAAAAAAAAAAAAFATAFATFTAFTAAAZFZAAAF"
            "AZAAZAZAATAFTAAZAAAAFFAFAAAAZAFAAAAAAAFAAAATTFAAZAAFTAAAAZAAAAAAAAAATATAAAAAAAAAAAAAAAATATAATAAAAAZF"
            "FAAAFAAZAAAAATTFAAAAAAATTFAAAAAAAZAFAFATAAAAAZTAAZAAAAAAFAAZAAAZZFFAFTFAAAZAA"
        ),
        confuser="mixed",
    ),
)


#: Part 2 (data README, "Amazon training pack, part 2"): 341 positive and 3,477 negative chips once the excluded
#: rows are left out. Codes from the same location file as part 1, as recorded in the README.
SETS2: tuple[PackSet, ...] = (
    PackSet("v2.4_amazon_positives", "am2-v24p", 1, 210, excluded=(99,)),
    # The gallery holds the 140 points of an earlier version of the file; upstream then removed its first 8
    # (sand mining): point i of the pinned file is chip i + 8.
    PackSet("ACAexpanded_amazon_positives2025-08", "am2-acap", 1, 132, chip_offset=8),
    PackSet(
        "v2.1.1_bolivar_negatives",
        "am2-v211n",
        0,
        87,
        ("AAFFTFFAAFAAATAAATATAAAAAFFAAAAAAAAAATAAZFFAAAAAFATAFAAFAAAAAAFZATTATAAAAAAAAFAFTAZAFAA"),
        confuser="mixed",
        excluded=(1, 2, 7),
    ),
    PackSet(
        "v2.4_amazonas_negatives",
        "am2-v24azn",
        0,
        183,
        (
            "AAATAAAAAAFFAAAZAAAAATAAAAATFTFAAATFATAAAZAAAFAAAATZFFAAATFAAAFAAATATAAATZATAAFTAAAZAAAAAAZAAAAAFFAT"
            "ATAAAAFAAAAAAAAAAAZATAAAAAATAAAAAAAAATTAATATAAAAZZAAFAAAAAAAAAAAAAFAAFAAAATAATAAATA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "amazonas_2020_thresh_0.5_2_negatives",
        "am2-az20n",
        0,
        86,
        ("AAAAFTTTAAFTATAAAATAAAAFAAAAFFAAAAAFAAAAAAATTAAAAAAAAFFFAAFZAAAATAFAAFAAAAAAAAAAZTAAAT"),
        confuser="mixed",
    ),
    PackSet(
        "v2.6_amazon_thresh_0.8_negatives",
        "am2-v26t8n",
        0,
        213,
        (
            "TATAAFFAAATATAAAAFAATAAAAAFAZAFAAAFFZAFAAAFAAAFAFATAAAFAAAAAFAAAFZATZATAAAAFAAAATAZZAAZFAAAAAAAAZTAA"
            "AAAFAAAFFAFAAZAAAAZAAAFAAAFAAZAFAAZTAAAATFAAAAZAAAAAATAZAATAFAAZAAAAAAAAAAFTAAAFAAATAAAAAAAZAAATAATA"
            "AZFTAAAAAFAAA"
        ),
        confuser="mixed",
        excluded=(212,),
    ),
    PackSet(
        "v2.6_amazon_negatives",
        "am2-v26n",
        0,
        108,
        (
            "AFAAFAAZTTAAFTAAAZAFAFFAAATAFAAZAAAAAAAAZAAAZAAAAATAAAAAATAAATTZTAAAZAAAFZAFAAZAATFAAATAAATFAAAAFAAA"
            "AAAZTAFA"
        ),
        confuser="mixed",
    ),
    PackSet("v2.6_amazon_negatives_v2", "am2-v26n2", 0, 27, ("ATAAATAFAAZAAAAAAAAAAAFTAZT"), confuser="mixed"),
    PackSet(
        "v3.4_2023_negatives",
        "am2-v34n",
        0,
        75,
        ("AAAAAAAATAAAAATAAAAATAAZAAAFAAAAFAAAFFTATAAAAAAZAAAAAAAAAFAAAFFAAAAFAAAAATA"),
        confuser="mixed",
    ),
    PackSet(
        "v3.5_2023_negatives",
        "am2-v35n",
        0,
        70,
        ("TAAZTAAFAFAATAAAAAAATFTAAAAAAAATAAZAAAAAAAAAZAAZTAAAZAATAAAAAFAAAAAAAF"),
        confuser="mixed",
    ),
    PackSet(
        "v0.xx-SSL4EO-2023combined-negatives",
        "am2-ssl23n",
        0,
        691,
        (
            "AAAAAAAAAAAAATAAAAAAAFAAAAAFAAATAAAFFTAATAAAATAZAAAFAAZAAAAZATAAAAAATAAZFAZFFZFFTAAAAAAAAAAAZTAFAAAA"
            "AFAZZAAATAAATFAAAATFFAAAAAAAFAAAAATAAFFFAATATFZAAAAAZFAZZAFZATFAAFAAAAZATAAFAZAATFAAAAAAAAAAFFAAAAAA"
            "AATAATAATAAAAAAFAFAAATAAAAFAZAAZAAAFTTZZAFAAAAATAFFAAFZAAATAATAAAAAAAATAAAAZAAAZAAAAFFAFAAATAAAAAAAA"
            "AAAAFAAAATAAAAAAAAAAAATAAAAFAAAFAFZAAAAAFTATATAAAAZAAAAFTTAAFTAAAAAAAFZTAAAAAAAAAATAAAAFTAAFZFAAAATA"
            "AFAAAAAAFTAAAAFAZAAAAAATATAAAFAAAAAAAAAAAAAAAAAZAAAAAAATATAATAAFTAAAAAAATFFAAATAATATZAZAAZFAAAAAAAZA"
            "AAAAZAAAAAAAAAAAAFTTATAAAFTAAAAAAAAAAZFFAAZFAAAAFAFAAAAFFAZAAFZATAAFAATFAFFAAAAAAAZAAAAATATTAAZTAAAA"
            "AAAAAAATTAZTAAAAAAAATAAAFTTFTAAAAAFFTTFAFAATZAAAFZAFATAAAAAFAAATFATAAFZAFTZFTAAAAAZZAAZFAFA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v0.4-6SSL4EO-MLP_bolivia_2023_negatives",
        "am2-bo23n",
        0,
        185,
        (
            "FATFAAAAAATAAAAAAAAZAAAAFTAAAAFAAAAAAAATAAAZAAFTAAAAAAAAATAAFAFAAAAAAFAAAAAAAAATAZAFTAFAAAAATAFFTATA"
            "AFATAAAZAZTAAFFATAAFATAAAZAATAAAAAAATFAAAFFTAAAFATAAAZAATAAAAAAAFAAFAFAAAAAZTTAAAZAAT"
        ),
        confuser="mixed",
    ),
    PackSet(
        "riverbank_negatives_v2025-08",
        "am2-rivn",
        0,
        241,
        (
            "AAAAAAZAFAFTATAAZZAAATZAAAAAAATAAAAAAFFZAAFAFAAAAAATTAAFTAZAAAAAFTAAAAZAZAAAAAAAFAFAFAFAAAFAAAFAAZZA"
            "AATAAAAFTAAAATFZTATAAAAAAAAATAATAAZAAAFAAAATAAAAAAAATAFAFAAAAZAFAFFATTAAFTAAZZAFAAAAAAAAAFAAAFAATFAA"
            "ATZAAAAATTFAAAAAAZAAATAAAFFAFFTAFAAAAAAZT"
        ),
        confuser="riverbank",
        excluded=(30, 32, 33),
    ),
    PackSet(
        "v4.0-CNN-2025_acre_negatives",
        "am2-acre",
        0,
        944,
        (
            "AAAAAATAAAAAFAAFAAAAFAAAAAZTAAATZAAZAAAAAAZAAAAZAATAAAAAAATAAAFTAAAAAAATAAAAAFAAFATAFAAAAAAAAAFAAFAA"
            "AATTAFAAAAAZAAAAATAAAAAAAFAFATAAAAAAAFAFTTTAATAAAAAAAAAFAAZAAAAFFAAAAAAAFATAAAATAAAAATAAAAAAAAAAAAAA"
            "FAAATAAAAAATAAAFAAAAAAAAAAAFAATAAFAAAAAAAAAAAAAAAATAFAAAAAAAAAAAAAAAATAAAAFZAATFZAAAAAZAAAATAAAAATAF"
            "AAAAAZAAAAAZTAAAAATAAZAAATAAAAATAAAFAATAAFTZATAAAAATAAAZAAFAAAAZFAAAAFAAAAAAZATAAAAAAAAAAAAAATZATTFA"
            "ZAAAAZTFFAFAAAFAATAAAAFFAAAFAAAAAZAAAAAAFAAATATAFAFTAAAAAAZAAAFAAAAAAAAAAAAAAAAAATZTFAAAAAAFZZFFAAAA"
            "AAAFAAAFAAAAAFZAAAAAATAAAAAATAAAAAAAAAFAAAAATFATAFAZATAAAATAAFZTAATAFAAAAAAZAAAAAZAAAAAAFFFAFAAAAAAA"
            "AAAZAAATAATAAAAAAAAAAAATAAFTAAZTAAAAAAATTAAAAAFAFAZAFAAAAAAAAAAZAAAAAAFTAAAFAAAAAAATATAAAZAAAATAAAFZ"
            "TAATFAAAFATAAAAAFAAAAAZAAAAAAAAAFAAAAAAAAAAAAFFAFFAAAAAAATATFAAATAAAAAATAAAAAAAAAAATATTAATTAFTAAAAAA"
            "FAAAAAAATAAAAAAAAFFAAAAAZFAAZAAAAAZAATAAAAZFAAAAZAAATAAAAAAAAAAAAAFAAAFATAAAFAATZAATAAAZFAAAAAAAAAAA"
            "AAAAATAAAAFAAFFTFAAAAAAAAFAAAATZAAAATAAATAAT"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v0.X-SSL4EO-2025Q4-negatives",
        "am2-q4n",
        0,
        1000,
        (
            "FAZAFAFAAAAAAAAAAZAAATATAAATAZAAZFFZFAAAAZFAAAFZAAFAAATFZZTAAAAFFAAAAAATAAAZTAAFAAAFAAAAAAFATAAAAAAT"
            "FAAAAAAAAAAATFAAFTAAZAFAAAFAAZATAAATAAAAAAAAFATAZAAZAAATAAAAAAAAFAAAAZAAAFATAATAAAAAAAZZAFAAAAAAFAFT"
            "AAAZFAAFTAAAAAAFAAAAATAAAZAAAATAATFAAAAATAAAZFTFFAAAAAAATATAAAAAAFATZAAAZAAAAAAAAAAAAAFFAAFAAAAAFAAT"
            "AFAAFAAAAAAAAAAAAFAAAAAAFAAAFAAAAFAAATAFFATAAAAZATAAAAAAAFZAAAAAAAAAAAAAAAFATFAFAAAATAAFAAFATTTAAAFF"
            "AAATAAAAAAAAAAAAAAAAAAFAFAAAATAATZAAAAAAAAAATAAAAFAFAAATFAAAAAAFAZATAAAAFAFATAAAAAFTTAAZTATAAFAATAAT"
            "TAAATATFAAAAAAAAAAAAFAAAAFAZTAAAAAAAAAZAAAAATAAZAAAAFAAAFZAAAAAAAFFFAFTAAAATZAAAAFFTZTAAAFATTAAAAATA"
            "FAAAAZTAAAATAAATAFAAATAAAAAAAZAAAAZFFAAAAAAATZAFATAZAAAAFAAAAATATAAATAFFAZATAAFFAAAAZAZAAZAAAFAZAAZA"
            "AAAAATAATAAFAZAATAAFFAAAAAAATTAAAAAAAFAAZFAFZAAAAAFAAAAAAAAAAAAAAFAAAAAAAAAAAAAAAFAATAAAAAAAATAAAAAF"
            "AATTAAATAAAAAAAAAAAATFFTAAAAAAATFFFATAAAAAFTAAAATTAAAFAAAATATAAAAAAAAAAZAATAAAAAAZZAAAATAFAATATTAAAA"
            "AAAAAAAAFFAATFFAAAAZAAFAAZAFAFATAAAAAFAFAAAATFAAAAZFZAZAAAAAAAZAATAAATZTAAAAAAZFFTAAAAAATAAAAAAATAAA"
        ),
        confuser="mixed",
    ),
    PackSet(
        "v0.X-SSL4EO-2025Q2cumulative-negatives",
        "am2-q2n",
        0,
        2000,
        (
            "ZAAAFAAAZAAAAAAAAAFAAAZAAAATAAFFZAAZAAAFAAAAAAAAAATTAAAAATFTATTFAAZAAAAZAAATAFAAAAAFAAAAAAATAAATAAAA"
            "AAAAAFAAATAAFAFAATTAAAZFATFAATFAAAAAAFAFAATAAZAAAAATFTTAAFTATAAAATAAATAZAAAAZAATAAFAAAFAAATAATTFAAAA"
            "AFFAFAFAFTTAAAAAAAFZAAAAAZAAAAATAZATAZFATFAZFFAAFAAFFFZAZAFAZZAAAAAZAAAAAAAAAAAAAAAAAAAAAAATAATAZAZA"
            "FAZAFAAATAAAAAFAFFZTFTAZAAAAAAAAAAAZAAAZAAFZATAAZAATAAAAAAAAAATTAAZAZFAAAAFAAAAAAAAATATAAAZAAAAAATAF"
            "AAAATAAAAAAFTATAAAATZFAZFTAAAAZATTZAAAFAAAZAAFZAAFTAAAAAFFAAAAAAAAAAAAAAAFAFAFAAAATAAAAAAAZTAATZAAAA"
            "AAZAATAAAFAFAATAATFTTZAAAAAAAAAAATAAAAAAFAAAATAZAAZAAAAAAAAAFFTAAAAAFAZAFAFAATFAAAFAAFAZFAAAAAFAAAAA"
            "AATFZFAAAAAAAAAZAAFFAAAFTTTAAAATAAAFATAATAAAFAAAAAAZAAZAAZAFAATAATAAAAATAAATAAAAZAAATZAAFFAAAZAAZFZA"
            "TAAZFAAAAAATTAAAAAAAAFAAAAAAAFAAAAAATAAFAAAAFAAAFAFAAAAAAAAZATAAAAAAAAATAAAAFAAAAAATAAAATAAFFTAAATAT"
            "TZATFATTTAAAAFZTAAATATAAAAAATAAFAAFAATAAAAAAAAAAFTAAATAFTATAFAAAAAZAFATAAAAAAATTZAAAAAZATATAAFTAAAAA"
            "AFAATAAAATAZATAAAAZAAAATAAFAAZAAAAAAAAAAFTAZFAAAFTAAFTAFAAAAAAAATATAAAZAZAAATAFTAAAFTFAATAAAAAAAAAZA"
            "AAFAAAAAAAAAATZFAAAAAAAAAAAAAAAAAAATAAAATAAFAAAAAATZTAAAZAAATAZTZTAAAAFAAAFAAAATAAAAZAAAAATAAAAATAAT"
            "AAZAAAAAAAAAAAFAAATAZAFAAATAAAATFAZAATAFFAATAAAAAAAZFTFAAAAAAATAFATTAAAAFAAAAAATAAAFAATAATAAAAAFAAAA"
            "FAAAAAAAATFAAAAATAAAFAAAAAAAAAFTTAAAZTTAAAAAATAAFATAAAAAAAAAAAAAATAAAATAFZAAAFAZAAAAAAAAAAATAAAAAAAA"
            "TAFAZAAATAAFAAFAAAAAAFAAFATATAAAFAAAAAAAAAFZAAAAFAAAAAAAAAAAAAFAAAAAAAAAAAAAATFAAAAAFAFTFAZAAAAAFAAA"
            "AAFAATAAAAAFAAAAATTAZAFAAAAAZFTAAAAAAAAAZAAAAAAAAAAAAAFAFTATFFAAAFAAAAAFAAAAAFAAAAAAAAAAAAAAAATAFAAA"
            "AFFTAATATFATAAAAAAAFAAFAAAFTAFTAAFAFFAAAFFAAFAAAAFAFAAAAAAAAAAAZAAAATAAAATATAAAAZAFAAAAAZAAAAAAFAAAA"
            "AAAAFAATTAFATAAATAAAATAAAFFATAAATTAAAAAAAAAAAATAAATATFAFAAAATFAFAAAAAAATAAATAAAAAAAAZTATFAAAAAAZAAAA"
            "FATFAAAAAFTAAAAAAAAAAAAATAAAZZAAAAAATAFTAAFFAAAAAAAFAZAATFAAATAAAATAFAAAAFAAAAAFAAFAAFAATAAAAFAAFAAZ"
            "AAAATTAAAAAAAAAAAATAATTAAAAAFAFATAFAAAATAAATZAAAFAFATTTTAAAATZAAAAAAAFAAAAAAAZAAAFTFAAAAAAAAAAAAAATA"
            "AZAAFAAAAATAAAATAAAAZAAAAAAFAAAAAZAAATAZATAAAAAAAAAAAFZAAAAAAAAAAFTAZAAATAFAFAAAATAAAAZATAAAAAAAFTAA"
        ),
        confuser="cloud",
        galleries="F",
    ),
)


def pack_chips(sets: tuple[PackSet, ...] = SETS) -> list[Chip]:
    """Every chip of the pack's sets. A point repeated within its file keeps its first chip only
    (one upstream positive file lists one point twice); excluded rows are skipped."""
    out: list[Chip] = []
    for s in sets:
        pts = read_points_file(
            registry.get(registry.amazon_key(s.name)), s.prefix, s.label, s.name, allow_duplicates=True
        )
        if len(pts) != s.n_points:
            raise AmazonPackError(
                f"{s.name}: expected {s.n_points} points, the file has {len(pts)}; "
                "the pinned file changed: check asgm/registry.py"
            )
        start, end = s.window()
        chips: list[tuple[np.ndarray, float] | None]
        if s.codes is None:
            cut = gallery_chips(registry.amazon_key(s.name, "A"), len(pts) + s.chip_offset)[s.chip_offset :]
            chips = [(dn, CLEAR_THRESHOLDS["A"]) for dn in cut]
        else:
            chips = coded_chips(s.codes, {c: registry.amazon_key(s.name, c) for c in s.galleries})
        seen: set[tuple[float, float]] = set()
        excluded = set(s.excluded)
        for i, (row, chip) in enumerate(zip(pts.itertuples(), chips, strict=True)):
            if chip is None or i in excluded or (row.lon, row.lat) in seen:
                continue
            seen.add((row.lon, row.lat))
            out.append(Chip(row.sample_id, s.label, s.name, row.lon, row.lat, chip[0], start, end, chip[1], s.confuser))
    return out


def excluded_rows(sets: tuple[PackSet, ...]) -> dict[str, list[int]]:
    """Per set, the rows left out for independent evaluation (recorded in the store's ``store.json``)."""
    return {s.name: list(s.excluded) for s in sets if s.excluded}


def build(progress: bool = True, root: Path | None = None) -> PatchStore:
    """Build (or rebuild) the ``amazon`` store: the demo pack's chips plus the Amazon pack's."""
    meta = demo.store_meta(
        STORE_NAME,
        source="amazon",
        date_start="2019-01-01",
        date_end="2026-01-01",
        description=(
            "Real Sentinel-2 L1C RGB chips of mines and non-mines across the Amazon (Earth Genome): the demo "
            "pack (Bolívar, 2019) plus the Amazon training pack (2019-2025); per-chip imagery window and year "
            "in the index; approximate TOA reflectance from 8-bit display values (value/255 x 0.3)."
        ),
        credits=(CREDITS["earth_genome"], CREDIT_SENTINEL, CREDITS["study"]),
    )
    meta.extra["sets"] = {"demo": list(demo.SETS), "amazon": [s.name for s in SETS]}
    return write_chip_store(meta, demo.demo_chips() + pack_chips(), root=root, progress=progress)


def build_part2(progress: bool = True, root: Path | None = None) -> PatchStore:
    """Build (or rebuild) the ``amazon2`` store: the ``amazon`` store's chips (same ids) plus part 2's.

    A store of its own, so the ``amazon`` store, and with it the split and figures of every run trained on
    it (the shipped ``detector-default``), stays as it was."""
    meta = demo.store_meta(
        STORE_NAME2,
        source="amazon",
        date_start="2019-01-01",
        date_end="2026-01-01",
        description=(
            "Real Sentinel-2 L1C RGB chips of mines and non-mines across the Amazon (Earth Genome): the demo "
            "pack (Bolívar, 2019), the Amazon training pack and its part 2 (hard negatives by confuser class, "
            "2019 mines; 2019-2025); per-chip imagery window, year, cloud threshold and confuser class in the "
            "index; approximate TOA reflectance from 8-bit display values (value/255 x 0.3)."
        ),
        credits=(CREDITS["earth_genome"], CREDIT_SENTINEL, CREDITS["study"]),
    )
    meta.extra["sets"] = {"demo": list(demo.SETS), "amazon": [s.name for s in SETS], "amazon2": [s.name for s in SETS2]}
    meta.extra["excluded_rows"] = excluded_rows(SETS2)
    chips = demo.demo_chips() + pack_chips(SETS) + pack_chips(SETS2)
    return write_chip_store(meta, chips, root=root, progress=progress)
