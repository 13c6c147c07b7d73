"""The Data page's browser-test world: a small labelled point file, a local STAC API with Sentinel-2-like COGs
over those points, and OSM ways for the local Overpass stand-in (a road through every positive, a stream
through every negative), so an RGB + OSM model learns the road and the Patch viewer's toggle matters."""

from __future__ import annotations

import json
from pathlib import Path

from stac_catalogue import Scene, StacApi, area_around

from asgm.grid import utm_epsg

#: 6 clusters ~3.9 km apart (the spatial split's DBSCAN eps is 3 km), 2 positives and 2 negatives each.
CENTRES = [(-61.80 + 0.035 * k, 6.40 + 0.035 * j) for j in range(2) for k in range(3)]
OFFSETS = [(-0.003, 0.0, 1), (0.003, 0.0, 1), (0.0, -0.003, 0), (0.0, 0.003, 0)]


def points() -> list[tuple[float, float, int]]:
    """(lon, lat, label) of the upload, in file order."""
    return [(round(cx + dx, 6), round(cy + dy, 6), label) for cx, cy in CENTRES for dx, dy, label in OFFSETS]


def write_points(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                        "properties": {"label": label},
                    }
                    for lon, lat, label in points()
                ],
            }
        )
    )
    return path


def stac_api(server, tmp: Path) -> StacApi:
    """Two 2021 scenes (and one 2022 scene outside the default date window) covering every point."""
    api = StacApi(server, tmp)
    lonlats = [(lon, lat) for lon, lat, _ in points()]
    area = area_around(lonlats, utm_epsg(*lonlats[0]), margin=600.0)
    for i, day in enumerate(("2021-03-10", "2021-08-22", "2022-02-01")):
        api.add_scene(area, Scene(day, shift=150 * i, cloud_cover=5), f"S2B_E2E_{day.replace('-', '')}")
    return api


def osm_elements() -> list[dict]:
    """Overpass JSON elements: a 600 m east-west road through each positive, a north-south stream through each
    negative."""
    out: list[dict] = []
    for i, (lon, lat, label) in enumerate(points()):
        a, b = 2 * i + 1, 2 * i + 2
        if label:
            ends = [(lon - 0.003, lat), (lon + 0.003, lat)]
            tags = {"highway": "track"}
        else:
            ends = [(lon, lat - 0.003), (lon, lat + 0.003)]
            tags = {"waterway": "stream"}
        out += [
            {"type": "node", "id": a, "lon": ends[0][0], "lat": ends[0][1]},
            {"type": "node", "id": b, "lon": ends[1][0], "lat": ends[1][1]},
            {"type": "way", "id": 1000 + i, "nodes": [a, b], "tags": tags},
        ]
    return out
