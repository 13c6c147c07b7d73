"""Upstream files: one pinned URL and sha256 each, fetched with pooch or read from a local mirror.

``ASGM_DATA_MIRROR=<dir>`` reads ``<dir>/<relpath>`` (the layout of ``raw.githubusercontent.com``)
instead of the network; tests and CI point it at ``../shared/data``. ``fill_mirror`` makes such a folder
from the pinned URLs (``ASGM_DATA_BASE_URL`` overrides the server).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from asgm import amazon_pins, atomic
from asgm.config import cache_dir, data_base_url, mirror_dir
from asgm.errors import AsgmError

_STUDY = "selmadissing/ASGM-Detector/0c0d3f71aa91b1961cbd2efe20319bc3d174594b/"
_EG = "earthrise-media/mining-detector/bbbcb2d722c930626f322bec751a22e4acb22750/"


@dataclass(frozen=True)
class UpstreamFile:
    """One pinned public file."""

    key: str
    relpath: str
    sha256: str
    size: int
    description: str
    licence: str

    @property
    def url(self) -> str:
        return data_base_url() + self.relpath


FILES: dict[str, UpstreamFile] = {
    f.key: f
    for f in [
        UpstreamFile(
            "study_positives",
            _STUDY + "data/sampling_locations/v2.1_bolivar_positives_cleaned.geojson",
            "d3dd023a7e0d201b94322fe5b23581dadc313daaf223724ef444d3553d0e1975",
            22759,
            "The study's 156 mining positives",
            "MIT (selmadissing/ASGM-Detector)",
        ),
        UpstreamFile(
            "study_curated_negatives",
            _STUDY + "data/sampling_locations/v2.0_bolivar_negatives_cleaned.geojson",
            "f02e419a0fa56925b65114896b94861402df71470be345c45ac49ad80528cf2d",
            46938,
            "The study's 323 curated negatives",
            "MIT (selmadissing/ASGM-Detector)",
        ),
        UpstreamFile(
            "study_random_negatives",
            _STUDY + "data/sampling_locations/random_negatives_bolivar.geojson",
            "eedaf45f1b21075bd6a0a0fa62bd5ee71ff07fa5fa6e92224a99b970a10d2652",
            104517,
            "The study's published 780 random negatives",
            "MIT (selmadissing/ASGM-Detector)",
        ),
        UpstreamFile(
            "eg_positives",
            _EG + "data/sampling_locations/bolivar_2020_thresh_0.8_sumbsample_5_positives_cleaned.geojson",
            "5137ef9cb3e4eed3b846f1e5004c05e04b35335513106127adc098ab0e9537ad",
            26784,
            "209 Bolívar mining positives (Earth Genome)",
            "CC BY 4.0 (Earth Genome)",
        ),
        UpstreamFile(
            "eg_positives_gallery",
            _EG
            + "data/training_gallery/bolivar_2020_thresh_0.8_sumbsample_5_positives_cleaned_S2L1C_clear0.75_2019-01-01_2020-01-01.png",  # noqa: E501
            "1870c50b74ee6d11d3fcb9ee64ff4089e22138a33aebdd50e4dda9c17b5c9873",
            900536,
            "Real Sentinel-2 RGB chips of the 209 positives",
            "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019",
        ),
        UpstreamFile(
            "eg_negatives",
            _EG + "data/sampling_locations/v2.0_bolivar_negatives.geojson",
            "9ffbc52f7e06add810c00653043f5a3e6fcbb9fd999ab0e8d22535110a717a19",
            48210,
            "332 Bolívar negatives (Earth Genome); the study's curated negatives are a subset",
            "CC BY 4.0 (Earth Genome)",
        ),
        UpstreamFile(
            "eg_negatives_gallery_a",
            _EG + "data/training_gallery/v2.0_bolivar_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
            "ac04c171f90f706dd384bddfea5651e8e86343fd04dc6a0ef015d5418d433634",
            855569,
            "Real Sentinel-2 RGB chips of 248 negatives (clear 0.75)",
            "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019",
        ),
        UpstreamFile(
            "eg_negatives_gallery_f",
            _EG + "data/training_gallery/v2.0_bolivar_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
            "7544a19af3d6d9142dcd76cbd72c511af86a86ccb0ceb18f98d09782c01f98eb",
            124559,
            "Real Sentinel-2 RGB chips of 34 more negatives (clear 0.05)",
            "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019",
        ),
        UpstreamFile(
            "eg_mining_polygons_2020",
            _EG
            + "data/outputs/44px_v2.8/mining_bolivar_v44px_v2.8_dissolved_2020-01-01_2021-02-01_period_4_method_median.geojson",  # noqa: E501
            "1be27952520696ff5227202ffb8cceaf2107c1ee0d10ae90acb2bde614bf709b",
            971013,
            "673 mining polygons detected by Earth Genome in Bolívar (2020)",
            "CC BY 4.0 (Earth Genome)",
        ),
        UpstreamFile(
            "runway_points",
            _EG + "data/sampling_locations/osm_runway_points.geojson",
            "bb20030f57deb09e3daa539b0a08e9f092667bef6e21d236c0826cd838c4c735",
            375091,
            "2,409 OSM runway points across the Amazon",
            "ODbL (© OpenStreetMap contributors), via Earth Genome",
        ),
        UpstreamFile(
            "riverbank_negatives",
            _EG + "data/sampling_locations/riverbank_negatives.geojson",
            "3efd36dbfcd18c74a53f5912729ed5bb514a37179b09d11057886ece082ede21",
            15439,
            "105 riverbank hard negatives",
            "CC BY 4.0 (Earth Genome)",
        ),
        UpstreamFile(
            "caroni_holdout",
            _EG + "data/boundaries/geo_holdout_caroni.geojson",
            "9330ea2ae2af21bbecd127fa82c3b8d64ffea94d06400beb5ff761fb77c76d9d",
            385,
            "Geographic holdout rectangle over the Río Caroní",
            "CC BY 4.0 (Earth Genome)",
        ),
        UpstreamFile(
            "ukis_csmask_scene",
            "dlr-eoc/ukis-csmask/bcd8ea0ec73f588a8b58b334a92b85c96b00b6a2/tests/testfiles/sentinel2.npz",
            "b0bb793c4b53dbe99839372de70fcfa1b375147f0c6f0f936b3b2a321a0e7062",
            3850021,
            "A real Sentinel-2 scene (512 x 512, 6 bands of TOA reflectance, clouds; no georeference, no "
            "known mining) for encoding and false-alarm checks",
            "Apache-2.0 (dlr-eoc/ukis-csmask)",
        ),
    ]
}


#: Amazon Mining Watch (shared/data/README.md, "Amazon Mining Watch"): the website's yearly detection layers
#: (each holds the mining new in its period), the territories and countries AMW reports on, the basin outline and
#: AMW's published tables. Keys: ``amw_mining_<period>`` (period 201800 ... 202400, 202502, 202503), and the rest.
AMW_LICENCE = "CC BY 4.0 (Earth Genome, Amazon Mining Watch)"
AMW_PERIODS: tuple[str, ...] = (
    "201800",
    "201900",
    "202000",
    "202100",
    "202200",
    "202300",
    "202400",
    "202502",
    "202503",
)
_AMW_LAYERS: tuple[tuple[str, str, int], ...] = (
    ("201800", "df09e3cb88831da9400366bd20b4f5946ac2436ba486310d50fae8bc456da0b9", 2797019),
    ("201900", "bf7b82dd811af2f54c4a33f7f5f03ccb39c9914c6a559b0a666430b4e5a9b104", 1997728),
    ("202000", "e14c39f5b152d55228c27a19b9d5fdb1239a88d8e54398a969b4295d5fd69815", 1792413),
    ("202100", "fe11ccc4eeb6376b796273778ae37b4c1f2ee1381bb77336ca293bffd90de2c8", 1815942),
    ("202200", "2c59cd3a97ce21a33de7d4c390170b08f2308349072564aa125092d2fd846c87", 2052697),
    ("202300", "e10e3727b2b570f5a5bb22b754bda9079d949c7c2a95608ec0ced708bfb64bed", 1824973),
    ("202400", "853210966f8f404444bfd3fb45abb6e678904259ba8ee24a7b9fec39d0794d31", 2263548),
    ("202502", "4ef616bb4954198bec0588941765eebdbad83fecb897423d6b17b475df0262e0", 1104479),
    ("202503", "6c87187539601a57eaeda81d6db6e372a2cb073867962f90f9aac6a03ac1bee4", 971124),
)
_AMW_BOUNDARIES = "data/boundaries/"
_AMW_OTHER: tuple[tuple[str, str, str, int, str], ...] = (
    (
        "amw_territories",
        _AMW_BOUNDARIES + "protected_areas_and_indigenous_territories/out/indigenous_territories_impacts.geojson",
        "ece3a44d37adc5ec59deb3bf2a39529e233bf70f94ba4fde8bc88f25a56f1486",
        3752199,
        "Amazon Mining Watch: the 237 indigenous territories with detected mining (compiled by AMW from RAISG and "
        "national sources, see each feature's source_field)",
    ),
    (
        "amw_territories_table",
        _AMW_BOUNDARIES + "protected_areas_and_indigenous_territories/out/"
        "mining_by_indigenous_territories/amazon_basin_2018-2025Q3_all_differences.csv",
        "6ae9424931d7ffdbe6350c974e47529a172f686e93d9ae1ea078ea54b9b256cc",
        85109,
        "Amazon Mining Watch's published table of mined area per territory and period",
    ),
    (
        "amw_countries",
        _AMW_BOUNDARIES + "national_admin/out/national_admin_impacts.geojson",
        "b94bf3c61733de59d5af1f8f2088b0197cd241eb7a0915b39e462f86144e137a",
        2418244,
        "Amazon Mining Watch: the 9 Amazon countries and the whole basin (AMAZ)",
    ),
    (
        "amw_countries_table",
        _AMW_BOUNDARIES + "national_admin/out/mining_by_national_admin/amazon_basin_2018-2025Q3_all_differences.csv",
        "834ed2af640a644d25ac60d1754a2082f736fee3109f8b690cfbbaa3705f730c",
        382982,
        "Amazon Mining Watch's published table of mined area per country and period",
    ),
    (
        "amw_basin",
        _AMW_BOUNDARIES + "amazon_basin.geojson",
        "48288f5fa22554e68dfa3c284c63d3ebe544863ccab40fcb54ecb5be4b20a03e",
        1403745,
        "Amazon Mining Watch: the Amazon basin outline",
    ),
)


def amw_layer_key(period: str) -> str:
    """Registry key of AMW's detection layer of ``period`` (``201800`` ... ``202503``)."""
    return f"amw_mining_{period}"


FILES.update(
    (f.key, f)
    for f in [
        *(
            UpstreamFile(
                amw_layer_key(period),
                _EG + f"data/outputs/website/mining_{period}_simplified.geojson",
                sha,
                size,
                f"Amazon Mining Watch: mining detected new in {period[:4]}"
                + (f" Q{int(period[4:])}" if period[4:] != "00" else ""),
                AMW_LICENCE,
            )
            for period, sha, size in _AMW_LAYERS
        ),
        *(UpstreamFile(key, _EG + rel, sha, size, desc, AMW_LICENCE) for key, rel, sha, size, desc in _AMW_OTHER),
    ]
)


#: Earth Genome's Amazon training pack (shared/data/README.md, "Amazon training pack"): its rows are the table in
#: ``asgm.amazon_pins``; a gallery's cloud threshold in its file name -> the code the sources use.
_CLEAR_CODE = {"clear0.75": "A", "clear0.05": "F"}


def amazon_key(set_name: str, code: str | None = None) -> str:
    """Registry key of an Amazon pack set's sampling file (``code`` None) or of its gallery for a
    cloud-threshold code ('A' = clear 0.75, 'F' = clear 0.05)."""
    return f"amazon:{set_name}" + (f":{code}" if code else "")


def _amazon_file(relpath: str, sha256: str, size: int) -> UpstreamFile:
    name = relpath.rsplit("/", 1)[1]
    if relpath.startswith("data/sampling_locations/"):
        set_name = name.removesuffix(".geojson")
        return UpstreamFile(
            amazon_key(set_name),
            _EG + relpath,
            sha256,
            size,
            f"Amazon pack: sampling points of {set_name} (Earth Genome)",
            "CC BY 4.0 (Earth Genome)",
        )
    set_name, rest = name.split("_S2L1C_")
    clear = rest.split("_")[0]
    years = re.findall(r"(\d{4})-\d{2}-\d{2}", name)
    return UpstreamFile(
        amazon_key(set_name, _CLEAR_CODE[clear]),
        _EG + relpath,
        sha256,
        size,
        f"Amazon pack: real Sentinel-2 RGB chips of {set_name} ({clear})",
        f"CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data {years[0]}",
    )


FILES.update((f.key, f) for f in (_amazon_file(*row) for row in amazon_pins.PACK1 + amazon_pins.PACK2))


class DataFetchError(AsgmError):
    """An upstream file could not be had; the message names the file, the URL and what to do."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get(key: str, progress: bool = False) -> Path:
    """Local path of upstream file ``key``, verified against its sha256.

    With ``ASGM_DATA_MIRROR`` set the file is read from the mirror (never copied); otherwise it is
    downloaded once into the cache with pooch.
    """
    try:
        f = FILES[key]
    except KeyError:
        raise DataFetchError(f"unknown data file {key!r}; known: {', '.join(FILES)}") from None
    mirror = mirror_dir()
    if mirror is not None:
        path = mirror / f.relpath
        if not path.is_file():
            raise DataFetchError(
                f"{key}: not in the mirror at {path} (ASGM_DATA_MIRROR={mirror}). Point ASGM_DATA_MIRROR at a "
                f"folder holding {f.relpath}, or unset it to download {f.url}"
            )
        digest = _sha256(path)
        if digest != f.sha256:
            raise DataFetchError(
                f"{key}: checksum mismatch for {path} (sha256 {digest}, expected {f.sha256}). The mirror copy is "
                f"damaged or a different version: replace it with {f.url}"
            )
        return path
    return _download(f.key, f.relpath, f.sha256, cache_dir(), progress)


def _download(key: str, relpath: str, sha256: str, root: Path, progress: bool) -> Path:
    """``root/relpath``, downloaded from the pinned server if missing and verified against ``sha256``."""
    url = data_base_url() + relpath
    cached = root / relpath
    # pooch silently re-downloads a cached copy that fails its checksum; offline that must say so.
    damaged = cached.is_file() and _sha256(cached) != sha256
    import pooch  # here, not at the top: listing what is present (the app's first page) needs no downloader

    if not progress:  # pooch announces every download on stderr; a quiet caller asked for none of it
        pooch.get_logger().setLevel("WARNING")
    try:
        return Path(
            pooch.retrieve(
                url=url,
                known_hash=f"sha256:{sha256}",
                fname=cached.name,
                path=cached.parent,
                progressbar=progress,
            )
        )
    except ValueError as exc:  # pooch raises ValueError on a hash mismatch
        raise DataFetchError(
            f"{key}: the download from {url} failed its checksum ({exc}). Try again later; if it persists the "
            f"upstream file changed and the pin in asgm/registry.py needs review"
        ) from exc
    except Exception as exc:  # network errors come from requests/urllib3 in many shapes
        if damaged:
            raise DataFetchError(
                f"{key}: the cached copy {cached} is damaged (sha256 mismatch) and a fresh download failed "
                f"({type(exc).__name__}); delete it and retry online, or set ASGM_DATA_MIRROR to a local copy"
            ) from exc
        raise DataFetchError(
            f"{key}: could not download {url} ({type(exc).__name__}: {exc}). Check the network, or set "
            f"ASGM_DATA_MIRROR to a local copy of the files (docs/data.md)"
        ) from exc


def fill_mirror(root: Path, extra: dict[str, str] | None = None, progress: bool = False) -> Path:
    """Make ``root`` a mirror (upstream layout) of every pinned file plus ``extra`` (relpath -> sha256),
    downloading only what is missing or damaged; returns ``root``. Raises ``DataFetchError`` on the first
    file that cannot be had."""
    wanted = {f.relpath: (f.key, f.sha256) for f in FILES.values()}
    wanted.update({rel: (rel, sha) for rel, sha in (extra or {}).items()})
    for relpath, (key, sha256) in wanted.items():
        _download(key, relpath, sha256, root, progress)
    return root


def status() -> list[dict[str, object]]:
    """For each upstream file: whether it is available locally (mirror or cache) and verified.

    A file's sha256 is remembered with its size and modification time (``verified.json`` in the download
    cache) and computed again only when either changed: hashing every file took ~0.1 s of the app's first
    page at each server start."""
    rows = []
    mirror = mirror_dir()
    memo_file = cache_dir() / "verified.json"
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    changed = False
    for f in FILES.values():
        local = (mirror / f.relpath) if mirror else cache_dir() / Path(f.relpath).parent / Path(f.relpath).name
        ok = False
        if local.is_file():
            stat = local.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            seen = memo.get(str(local))
            if not (isinstance(seen, dict) and seen.get("stamp") == stamp and isinstance(seen.get("sha256"), str)):
                seen = memo[str(local)] = {"stamp": stamp, "sha256": _sha256(local)}
                changed = True
            ok = seen["sha256"] == f.sha256
        rows.append(
            {
                "key": f.key,
                "url": f.url,
                "path": str(local),
                "present": local.is_file(),
                "verified": ok,
                "bytes": f.size,
                "description": f.description,
                "licence": f.licence,
            }
        )
    if changed:
        try:
            atomic.write_json(memo_file, memo)
        except (OSError, AsgmError):  # a read-only data folder: hash again next time
            pass
    return rows


def pull(progress: bool = True) -> list[dict[str, object]]:
    """Fetch and verify every upstream file; returns one report row per file (errors included)."""
    rows = []
    for key, f in FILES.items():
        try:
            path = get(key, progress=progress)
            rows.append({"key": key, "ok": True, "path": str(path), "sha256": f.sha256, "url": f.url})
        except DataFetchError as exc:
            rows.append({"key": key, "ok": False, "error": str(exc), "url": f.url})
    return rows
