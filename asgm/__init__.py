"""ASGM Explorer core package: find artisanal and small-scale gold mining in Sentinel-2 imagery.

Data flows one way: sources -> patch store -> dataset -> model -> run store -> pages.
"""

__version__ = "0.1.0"

#: Credits shown wherever the corresponding data is used (README, app footer, CLI reports).
CREDITS = {
    "study": "Study points and code: Dissing & Kalo, selmadissing/ASGM-Detector (MIT).",
    "earth_genome": "Earth Genome, Amazon Mining Watch (CC BY 4.0): chips, reference polygons, runway points, the "
    "yearly detection layers, indigenous territories, countries and basin of the place statistics "
    "(territory boundaries compiled by AMW from RAISG and national sources, each territory's source).",
    "sentinel": "Contains modified Copernicus Sentinel data 2019 (demo chips) / as fetched (other stores).",
    "osm": "© OpenStreetMap contributors (ODbL).",
}
