"""Upstream files: one pinned URL and sha256 each, fetched with pooch or read from a local mirror.

``ASGM_DATA_MIRROR=<dir>`` reads ``<dir>/<relpath>`` (the layout of ``raw.githubusercontent.com``)
instead of the network; tests and CI point it at ``../shared/data``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pooch

from asgm.config import cache_dir, mirror_dir
from asgm.errors import AsgmError

BASE_URL = "https://raw.githubusercontent.com/"
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
        return BASE_URL + self.relpath


FILES: dict[str, UpstreamFile] = {
    f.key: f
    for f in [
        UpstreamFile("study_positives", _STUDY + "data/sampling_locations/v2.1_bolivar_positives_cleaned.geojson",
                     "d3dd023a7e0d201b94322fe5b23581dadc313daaf223724ef444d3553d0e1975", 22759,
                     "The study's 156 mining positives", "MIT (selmadissing/ASGM-Detector)"),
        UpstreamFile("study_curated_negatives", _STUDY + "data/sampling_locations/v2.0_bolivar_negatives_cleaned.geojson",
                     "f02e419a0fa56925b65114896b94861402df71470be345c45ac49ad80528cf2d", 46938,
                     "The study's 323 curated negatives", "MIT (selmadissing/ASGM-Detector)"),
        UpstreamFile("study_random_negatives", _STUDY + "data/sampling_locations/random_negatives_bolivar.geojson",
                     "eedaf45f1b21075bd6a0a0fa62bd5ee71ff07fa5fa6e92224a99b970a10d2652", 104517,
                     "The study's published 780 random negatives", "MIT (selmadissing/ASGM-Detector)"),
        UpstreamFile("eg_positives", _EG + "data/sampling_locations/bolivar_2020_thresh_0.8_sumbsample_5_positives_cleaned.geojson",
                     "5137ef9cb3e4eed3b846f1e5004c05e04b35335513106127adc098ab0e9537ad", 26784,
                     "209 Bolívar mining positives (Earth Genome)", "CC BY 4.0 (Earth Genome)"),
        UpstreamFile("eg_positives_gallery", _EG + "data/training_gallery/bolivar_2020_thresh_0.8_sumbsample_5_positives_cleaned_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
                     "1870c50b74ee6d11d3fcb9ee64ff4089e22138a33aebdd50e4dda9c17b5c9873", 900536,
                     "Real Sentinel-2 RGB chips of the 209 positives", "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019"),
        UpstreamFile("eg_negatives", _EG + "data/sampling_locations/v2.0_bolivar_negatives.geojson",
                     "9ffbc52f7e06add810c00653043f5a3e6fcbb9fd999ab0e8d22535110a717a19", 48210,
                     "332 Bolívar negatives (Earth Genome); the study's curated negatives are a subset", "CC BY 4.0 (Earth Genome)"),
        UpstreamFile("eg_negatives_gallery_a", _EG + "data/training_gallery/v2.0_bolivar_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
                     "ac04c171f90f706dd384bddfea5651e8e86343fd04dc6a0ef015d5418d433634", 855569,
                     "Real Sentinel-2 RGB chips of 248 negatives (clear 0.75)", "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019"),
        UpstreamFile("eg_negatives_gallery_f", _EG + "data/training_gallery/v2.0_bolivar_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
                     "7544a19af3d6d9142dcd76cbd72c511af86a86ccb0ceb18f98d09782c01f98eb", 124559,
                     "Real Sentinel-2 RGB chips of 34 more negatives (clear 0.05)", "CC BY 4.0 (Earth Genome); modified Copernicus Sentinel data 2019"),
        UpstreamFile("eg_mining_polygons_2020", _EG + "data/outputs/44px_v2.8/mining_bolivar_v44px_v2.8_dissolved_2020-01-01_2021-02-01_period_4_method_median.geojson",
                     "1be27952520696ff5227202ffb8cceaf2107c1ee0d10ae90acb2bde614bf709b", 971013,
                     "673 mining polygons detected by Earth Genome in Bolívar (2020)", "CC BY 4.0 (Earth Genome)"),
        UpstreamFile("runway_points", _EG + "data/sampling_locations/osm_runway_points.geojson",
                     "bb20030f57deb09e3daa539b0a08e9f092667bef6e21d236c0826cd838c4c735", 375091,
                     "2,409 OSM runway points across the Amazon", "ODbL (© OpenStreetMap contributors), via Earth Genome"),
        UpstreamFile("riverbank_negatives", _EG + "data/sampling_locations/riverbank_negatives.geojson",
                     "3efd36dbfcd18c74a53f5912729ed5bb514a37179b09d11057886ece082ede21", 15439,
                     "105 riverbank hard negatives", "CC BY 4.0 (Earth Genome)"),
        UpstreamFile("caroni_holdout", _EG + "data/boundaries/geo_holdout_caroni.geojson",
                     "9330ea2ae2af21bbecd127fa82c3b8d64ffea94d06400beb5ff761fb77c76d9d", 385,
                     "Geographic holdout rectangle over the Río Caroní", "CC BY 4.0 (Earth Genome)"),
    ]
}


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
    cached = cache_dir() / f.relpath
    # pooch silently re-downloads a cached copy that fails its checksum; offline that must say so.
    damaged = cached.is_file() and _sha256(cached) != f.sha256
    try:
        return Path(
            pooch.retrieve(
                url=f.url, known_hash=f"sha256:{f.sha256}", fname=Path(f.relpath).name,
                path=cache_dir() / Path(f.relpath).parent, progressbar=progress,
            )
        )
    except ValueError as exc:  # pooch raises ValueError on a hash mismatch
        raise DataFetchError(
            f"{key}: the download from {f.url} failed its checksum ({exc}). Try again later; if it persists the "
            f"upstream file changed and the pin in asgm/registry.py needs review"
        ) from exc
    except Exception as exc:  # network errors come from requests/urllib3 in many shapes
        if damaged:
            raise DataFetchError(
                f"{key}: the cached copy {cached} is damaged (sha256 mismatch) and a fresh download failed "
                f"({type(exc).__name__}); delete it and retry online, or set ASGM_DATA_MIRROR to a local copy"
            ) from exc
        raise DataFetchError(
            f"{key}: could not download {f.url} ({type(exc).__name__}: {exc}). Check the network, or set "
            f"ASGM_DATA_MIRROR to a local copy of the files (see README, 'Data')"
        ) from exc


def status() -> list[dict[str, object]]:
    """For each upstream file: whether it is available locally (mirror or cache) and verified."""
    rows = []
    mirror = mirror_dir()
    for f in FILES.values():
        local = (mirror / f.relpath) if mirror else cache_dir() / Path(f.relpath).parent / Path(f.relpath).name
        ok = local.is_file() and _sha256(local) == f.sha256
        rows.append({"key": f.key, "url": f.url, "path": str(local), "present": local.is_file(), "verified": ok,
                     "bytes": f.size, "description": f.description, "licence": f.licence})
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
