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

from asgm import atomic
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


#: Earth Genome's Amazon training pack (shared/data/README.md, "Amazon training pack"): sampling files
#: and RGB chip galleries of the sets listed there, and only those. (relpath under the EG commit, sha256, bytes)
_AMAZON_PACK: tuple[tuple[str, str, int], ...] = (
    (
        "data/sampling_locations/v3.6_2023_positives.geojson",
        "b86cbfa0cd5b06cad2bb14e03717d330236ca6a354ed34391b4be8e97be5f407",
        3522,
    ),
    (
        "data/training_gallery/v3.6_2023_positives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "a4ecb184540c76e1904396cb8706e9e46295c70ff76d038a555be57d6c242790",
        95756,
    ),
    (
        "data/sampling_locations/dredge_mining_positives2025-08.geojson",
        "89d958579ab8d0653a6e8ac58103b804b5f459720f10e03cbb913594b61b70dd",
        5699,
    ),
    (
        "data/training_gallery/dredge_mining_positives2025-08_S2L1C_clear0.75_2024-08-01_2024-11-01.png",
        "43a94064920c5ac4cb4738d5578bb85a7676be839be7c981d8deb8a08de0ad01",
        175437,
    ),
    (
        "data/sampling_locations/v3.3_2023_positives.geojson",
        "9b303067d709cb473c538a24de634ddc0a94da0c60050b0aad3f9a80fd3bb8a5",
        17785,
    ),
    (
        "data/training_gallery/v3.3_2023_positives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "39ee87899c32aef967c4de1cf89a5fd123e7ee7b714abb8c6cbabb6cede88363",
        424327,
    ),
    (
        "data/sampling_locations/v0.5-0.8-0.9ensemble_2023_positives.geojson",
        "01984bed16417b51534e438b1310ecc7243a66ab4464f6483f7cc71a35b63a91",
        17493,
    ),
    (
        "data/training_gallery/v0.5-0.8-0.9ensemble_2023_positives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "f7d6ebf44f59b74224568e7e5d2ef4df1579230ca673ff880d727bb0e2c3e28a",
        434014,
    ),
    (
        "data/sampling_locations/BD_MineriaAurifera_Peru-curated2025-09.geojson",
        "02f4309e7f4c77e7e0f3ef55f6534a6c8de0de15301ce05bf641395aa65d203c",
        42340,
    ),
    (
        "data/training_gallery/unused_in_final_model_training/BD_MineriaAurifera_Peru-curated2025-09_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "a368b409e957d7b4e4d2010fb22364a648ddab57daf2dc661e4ec21ada43d6a9",
        662201,
    ),
    (
        "data/sampling_locations/v3.2-3.7ensemble_positives2025-08.geojson",
        "e04799a1b6380b5ee547dd7dff1d49c6763cf00d11966a8a63d50292b980e41b",
        69865,
    ),
    (
        "data/training_gallery/v3.2-3.7ensemble_positives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "f24e133823b5fafc46a68af363b78009bd80cf16ab99b8ae18311117630354ee",
        1640526,
    ),
    (
        "data/sampling_locations/v4.18_2025old_core_positives.geojson",
        "2bd85678f314375eee485a3043becc687a2870ae19fd70b374b833e486056d38",
        62715,
    ),
    (
        "data/training_gallery/v4.18_2025old_core_positives_S2L1C_clear0.75_2025-01-01_2026-01-01.png",
        "339535a19d2a6881f8fe327b16f166bbb1d16ac731a62080e054848617d7eb3d",
        1790374,
    ),
    (
        "data/sampling_locations/industrial_negatives2025-08.geojson",
        "6e40244430f40286eedcf1b721284937d46835f0d6504d1e719ededf6d8309ec",
        25981,
    ),
    (
        "data/training_gallery/industrial_negatives2025-08_S2L1C_clear0.05_2024-01-01_2025-01-01.png",
        "421c24278b919ed41f6504149b012896b125502cb8e64042f7ce68f447c2ea8f",
        120154,
    ),
    (
        "data/training_gallery/industrial_negatives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "41b57a56bdd1e90e45946ff40a52fc5a42ac71423abbdfe6b10cfe4d2fb1483c",
        471446,
    ),
    (
        "data/sampling_locations/landslide_negatives2025-08.geojson",
        "bde1c33469ad2a59135b4665c533012b866ff65bce54d62a93f4fea434a4ba55",
        17795,
    ),
    (
        "data/training_gallery/landslide_negatives2025-08_S2L1C_clear0.05_2024-01-01_2025-01-01.png",
        "6a1fae73d32b6ed78819442e25c401a6f2266651e20214463363b4a9803106ec",
        48447,
    ),
    (
        "data/training_gallery/landslide_negatives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "9fb9c94fcf33fe7d4a9b51de05f3d1b55be9f15f989cd4a98a36219dd258d529",
        292469,
    ),
    (
        "data/sampling_locations/aquaculture-faziendas-negatives2025-08.geojson",
        "0e1b15c26f85a8652ea72d6658b8fb0d06e86ffb476bc06068f23cf88dd2b931",
        23858,
    ),
    (
        "data/training_gallery/aquaculture-faziendas-negatives2025-08_S2L1C_clear0.05_2024-01-01_2025-01-01.png",
        "43288ec85fa7191f26706c4200ad30a409daee2c64b65eec35d17379b4f30d98",
        77825,
    ),
    (
        "data/training_gallery/aquaculture-faziendas-negatives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "dbf9f4c656167c243247f74c5f55c279063a2e2fb06c30667206196966f6c46a",
        385460,
    ),
    (
        "data/sampling_locations/riverbank_negatives_bolivia_v2025-08.geojson",
        "a3e3486e92730ae82e82ed73c0ba526984dd784f2dd88783ee45e6eba6b763de",
        8988,
    ),
    (
        "data/training_gallery/riverbank_negatives_bolivia_v2025-08_S2L1C_clear0.05_2024-08-01_2024-11-01.png",
        "3ba4e2b2e77b851aae0f70907554c3c0817b3a91a47dd45208e06831401349f3",
        36558,
    ),
    (
        "data/training_gallery/riverbank_negatives_bolivia_v2025-08_S2L1C_clear0.75_2024-08-01_2024-11-01.png",
        "f333ae530d84d3bd0d3039fa444ec92cb7c6afe2a46da6eaf7dee85fa5ba8a8d",
        114141,
    ),
    (
        "data/sampling_locations/ACAexpanded_amazon_negatives2025-08.geojson",
        "5f0d86ec2b433b44b1d35360de265b214f9f5b477e409cc0c4913067af8be6ba",
        27265,
    ),
    (
        "data/training_gallery/ACAexpanded_amazon_negatives2025-08_S2L1C_clear0.05_2024-01-01_2025-01-01.png",
        "36c01fb3c700838527b75c71d1939ea62a6065365575d663ff698d80e19707ec",
        54884,
    ),
    (
        "data/training_gallery/ACAexpanded_amazon_negatives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "18b59f31ed8711c733eb15e344b070a5db6065ad731827314df912c82f0121d6",
        523697,
    ),
    (
        "data/sampling_locations/v2.4_amazon_negatives.geojson",
        "14f9116e7c07dc5db62f86f308173d615a2e6e1bbd3eaf8c2a62cc5b0fa5b23f",
        35866,
    ),
    (
        "data/training_gallery/v2.4_amazon_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "bc19976523dce4d4450615004e38d47d5fcc22d166d31bef639e958090bff3be",
        97140,
    ),
    (
        "data/training_gallery/v2.4_amazon_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "7c6d05e4510593e5abe81c464799842e88be4606d0f92f47e6cb5c09dd7ec220",
        595531,
    ),
    (
        "data/sampling_locations/v3.1_2023_negatives.geojson",
        "79396e097a4851ec3133d09faacc347648030f369f95e5e57e4e0bb3530f61bf",
        28728,
    ),
    (
        "data/training_gallery/v3.1_2023_negatives_S2L1C_clear0.05_2023-01-01_2024-01-01.png",
        "7cf35a7db2409a84e4babd90395ed7ac0102f94023fd726831943a71fe492fcc",
        76258,
    ),
    (
        "data/training_gallery/v3.1_2023_negatives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "3ba5fad2c6a655f0d1c111aaacc10f250a248a63c1c22a0a25d50802e253df01",
        501406,
    ),
    (
        "data/sampling_locations/v3.2_2023_negatives.geojson",
        "b58c2b9adb3852f825166a00d138ec3b5c6682c9ff853d00ccdb68eec653f1d2",
        33125,
    ),
    (
        "data/training_gallery/v3.2_2023_negatives_S2L1C_clear0.05_2023-01-01_2024-01-01.png",
        "c18d818c727ed99118beb8b1f0ddb534d5a8f9145e54638deb389bfd6caa8252",
        106536,
    ),
    (
        "data/training_gallery/v3.2_2023_negatives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "dfced8f71a85924f7761ca28532e6d2fd8a5f8bc5c7bd1fffe4131cbf184fc4a",
        554568,
    ),
    (
        "data/sampling_locations/full_amazon_v9_negatives.geojson",
        "ca4c30fc39f5f16dddb00dda49a366fd8d36604982e916d24072d10de08674ea",
        50999,
    ),
    (
        "data/training_gallery/full_amazon_v9_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "f893b791fc98d206fcd7c7d718fc04171f484b7a5e9ea0f96b5f7df857913518",
        129657,
    ),
    (
        "data/training_gallery/full_amazon_v9_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "feea232860d2b3572e2cd5ec6f4662629241812c300aefc2ad882dd2ef62a916",
        952782,
    ),
)
#: Part 2 of the Amazon training pack (shared/data/README.md, "Amazon training pack, part 2"): the sets listed
#: there, and only those; same layout as ``_AMAZON_PACK``.
_AMAZON_PACK2: tuple[tuple[str, str, int], ...] = (
    (
        "data/sampling_locations/v2.4_amazon_positives.geojson",
        "5d0d9a636fbe11ff8dcb37b56811b6fc2c970c1a0d4073732f23f0c54ec32a42",
        30821,
    ),
    (
        "data/training_gallery/v2.4_amazon_positives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "b1a7455cebf562830105a37f96f654240247b29c24da79f561816531d80c152d",
        870333,
    ),
    (
        "data/sampling_locations/ACAexpanded_amazon_positives2025-08.geojson",
        "3759b48811d58cb00d94c084a7ff30f5746cc6911cb567108a081a6f09e1fe37",
        19543,
    ),
    (
        "data/training_gallery/ACAexpanded_amazon_positives2025-08_S2L1C_clear0.75_2024-01-01_2025-01-01.png",
        "81100353df8953e2b5b37e0973c961ad6aeafff8a6a74141f3a036a99a3d7c3a",
        515314,
    ),
    (
        "data/sampling_locations/v2.1.1_bolivar_negatives.geojson",
        "cd07b811f81339ed7c2411570813f2ef2133572fc4b1d3318a1fb2e88e975483",
        12743,
    ),
    (
        "data/training_gallery/v2.1.1_bolivar_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "95cdca1f8af75901147737441cc5b4edefc61262f1fff7851f01849e2452bd00",
        62515,
    ),
    (
        "data/training_gallery/v2.1.1_bolivar_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "0d0644decb4d2435961715bf8f02f3e7541f603d810039c0673eb6930012ec35",
        199576,
    ),
    (
        "data/sampling_locations/v2.4_amazonas_negatives.geojson",
        "7f8a9d8f3652d53c632473c01326ce9655affaf80accf6f6272c5c3cd4afd194",
        26656,
    ),
    (
        "data/training_gallery/v2.4_amazonas_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "f77f4790cbc6f5a9a386a4d5f795c9732d1c3e9a544d8feeac6ad92ca810bd51",
        64899,
    ),
    (
        "data/training_gallery/v2.4_amazonas_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "847fef9577a0c16c625d26d2751851009efb2f3e4f57646330a12a3e458c6b0d",
        474099,
    ),
    (
        "data/sampling_locations/amazonas_2020_thresh_0.5_2_negatives.geojson",
        "7f250f7ce962a025ffb62695541bf46c8fe64c8f1629ea4081597094b9090246",
        14706,
    ),
    (
        "data/training_gallery/amazonas_2020_thresh_0.5_2_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "e950aa805c407cabf074de53643274a5f7f2e8fe01e2cbfb25b7aacf174868f5",
        46825,
    ),
    (
        "data/training_gallery/amazonas_2020_thresh_0.5_2_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "cc9fe1c9a544e847fc265a74227bb93a70d1195b6a6c6af268561e03871cb031",
        193033,
    ),
    (
        "data/sampling_locations/v2.6_amazon_thresh_0.8_negatives.geojson",
        "0ba8abb9c0aff1a0dd73b134cf5d23d24b1cc07dbe4000464471d48cc4790f2f",
        31235,
    ),
    (
        "data/training_gallery/v2.6_amazon_thresh_0.8_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "784be0cc5f26468a6fbfaf533036fe97efbb19f816b5b1cda6cb3a863ec9dc3d",
        107172,
    ),
    (
        "data/training_gallery/v2.6_amazon_thresh_0.8_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "376379806a178214d605925d3d20522be6f821121fcf21054854ef2548ecdf44",
        521565,
    ),
    (
        "data/sampling_locations/v2.6_amazon_negatives.geojson",
        "6eb8c9149de9a4bb5fde962fcd2f4e11cfc870b9ba044a7960c7e76592017e4d",
        15892,
    ),
    (
        "data/training_gallery/v2.6_amazon_negatives_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "a91c7a26e38fa3f79ea12f341a53f69cf4685c0f7a547d04be2aad1a7adf4be8",
        45232,
    ),
    (
        "data/training_gallery/v2.6_amazon_negatives_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "612c79910327754cd082812de4411d591dfa145c26fe28fb35ddfdcd88df0815",
        240012,
    ),
    (
        "data/sampling_locations/v2.6_amazon_negatives_v2.geojson",
        "c13059a7bd7938f74efdbabe907f0f2d21a371c8f07cfc70349d9a1eabc27680",
        4084,
    ),
    (
        "data/training_gallery/v2.6_amazon_negatives_v2_S2L1C_clear0.05_2019-01-01_2020-01-01.png",
        "4dccc7109efd636f6ed65eb7c15040c5608cd9cad6740d0b5e35c64243d2f1bb",
        7279,
    ),
    (
        "data/training_gallery/v2.6_amazon_negatives_v2_S2L1C_clear0.75_2019-01-01_2020-01-01.png",
        "446e2cfe49d521ef1c89719d10fdabcc34b93b73611ae706d36786ebe0490f24",
        66871,
    ),
    (
        "data/sampling_locations/v3.4_2023_negatives.geojson",
        "86318008f90adae4c941226620c0891f44ac23d445a38215132ac3735d297f4b",
        11134,
    ),
    (
        "data/training_gallery/v3.4_2023_negatives_S2L1C_clear0.05_2023-01-01_2024-01-01.png",
        "ad27ed16656d1a9e66e9a30f35d1bf80a2ebefd244fa38b90bce478f490aae68",
        27321,
    ),
    (
        "data/training_gallery/v3.4_2023_negatives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "42ff494464e506279b32edb45bbaf5c115b9c43f399f9884eba02bef5cbd9c87",
        199691,
    ),
    (
        "data/sampling_locations/v3.5_2023_negatives.geojson",
        "b8808a08b90ea116868769f9a1ab2014a6b067a7d21eb258673c76fcda4fd6fd",
        9591,
    ),
    (
        "data/training_gallery/v3.5_2023_negatives_S2L1C_clear0.05_2023-01-01_2024-01-01.png",
        "dab0c123d272873fe62ca07e9a858001c9cef4ac007ef6ecaf00a337136a57e5",
        18546,
    ),
    (
        "data/training_gallery/v3.5_2023_negatives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "fe590b3b577de93c51a8c0f1324e8bddc1511a26dbca1fda8c69c8f0e386c9f3",
        183035,
    ),
    (
        "data/sampling_locations/v0.xx-SSL4EO-2023combined-negatives.geojson",
        "438b7c1ccc2ea54d2024161bc74d1be06da21c548e43857150371fde7642c35d",
        93462,
    ),
    (
        "data/training_gallery/v0.xx-SSL4EO-2023combined-negatives_S2L1C_clear0.05_2023-01-01_2024-01-01.png",
        "384d029bf22814aadf61eca873e4d36fc5e2807d7495ce681b751b37c1d91892",
        310463,
    ),
    (
        "data/training_gallery/v0.xx-SSL4EO-2023combined-negatives_S2L1C_clear0.75_2023-01-01_2024-01-01.png",
        "1342a3685d7a85d1ceaddec53eaf5c38159e30f9466403c8d5e1c81ed7645567",
        1619845,
    ),
    (
        "data/sampling_locations/riverbank_negatives_v2025-08.geojson",
        "2c71f51fe6bd0b383f787c8e770147fbcabb2cf040d05b94a11fbe8cd6d03417",
        35155,
    ),
    (
        "data/training_gallery/riverbank_negatives_v2025-08_S2L1C_clear0.05_2024-02-01_2024-05-01.png",
        "38a4f7be82049a52e26c73ff11f1b70f2bd27d75d0f6ace07a724df430b50e7e",
        124068,
    ),
    (
        "data/training_gallery/riverbank_negatives_v2025-08_S2L1C_clear0.75_2024-02-01_2024-05-01.png",
        "3bc8e2d0d89a18c70e3ae340a9461e67d2f06019c691b034b3276267d56bc06f",
        577441,
    ),
    (
        "data/sampling_locations/v0.4-6SSL4EO-MLP_bolivia_2023_negatives.geojson",
        "de1971b0d692da54c6c3b3f34bef5c303758ed4975f2bb1db8cd9737d69e7e4f",
        25263,
    ),
    (
        "data/training_gallery/v0.4-6SSL4EO-MLP_bolivia_2023_negatives_S2L1C_clear0.05_2023-08-01_2023-11-01.png",
        "5d81e879b7a96a1118996d19c1440be94a46db56b5535a17f444e4843c4f2d24",
        77101,
    ),
    (
        "data/training_gallery/v0.4-6SSL4EO-MLP_bolivia_2023_negatives_S2L1C_clear0.75_2023-08-01_2023-11-01.png",
        "15179121b10d9e50a8ff793fe0365ecf406307e83b9eea47a5d610514bc2cf4d",
        426727,
    ),
    (
        "data/sampling_locations/v0.X-SSL4EO-2025Q4-negatives.geojson",
        "771c03ab47417dfbea7873a27e5ca1963e2438d4a8732e050028968d5aabd9a0",
        135029,
    ),
    (
        "data/training_gallery/v0.X-SSL4EO-2025Q4-negatives_S2L1C_clear0.05_2025-10-01_2025-12-31.png",
        "2680434bf0df379d971ba97d500fe0627b82e8dd0c8c1aa4600d1d09446aa6a4",
        467349,
    ),
    (
        "data/training_gallery/v0.X-SSL4EO-2025Q4-negatives_S2L1C_clear0.75_2025-10-01_2025-12-31.png",
        "2f1eef49807bb165a5e7ff7a12247b130a4ce16099235346717679718accbc40",
        2725989,
    ),
    (
        "data/sampling_locations/v4.0-CNN-2025_acre_negatives.geojson",
        "9ce37d16d9c0ef25d5ba7f0088b3c39112ab16bb62e4acebded206c9f96f103d",
        127724,
    ),
    (
        "data/training_gallery/v4.0-CNN-2025_acre_negatives_S2L1C_clear0.05_2025-07-01_2025-09-30.png",
        "e0d5a5c4e0dddb9fa8f6676c66ba9a9d75be31bb2406dcd48e6d7ad619b98faf",
        306340,
    ),
    (
        "data/training_gallery/v4.0-CNN-2025_acre_negatives_S2L1C_clear0.75_2025-07-01_2025-09-30.png",
        "74b4ea164f229a8507ed15980c160de53e43ea419500fd692ae0c41d6902c305",
        2433077,
    ),
    (
        "data/sampling_locations/v0.X-SSL4EO-2025Q2cumulative-negatives.geojson",
        "43069474482c0905e89f622daf402c3912b785c98a8761e8936ab350c539c797",
        269915,
    ),
    (
        "data/training_gallery/v0.X-SSL4EO-2025Q2cumulative-negatives_S2L1C_clear0.05_2025-04-01_2025-06-30.png",
        "ab411696c69a086eefe953c24539af3543832400ea8c1d5c324d0d3f755a1aa3",
        737813,
    ),
)
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


FILES.update((f.key, f) for f in (_amazon_file(*row) for row in _AMAZON_PACK + _AMAZON_PACK2))


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
