"""Boundaries to count inside: AMW's indigenous territories, the countries (+ the whole basin), the basin
outline, or a polygon file a user brings with a name column they pick.

``Boundaries.gdf`` columns: ``boundary_id`` (unique), ``name``, ``country``, ``type``, ``status``, ``source``
(who compiled the boundary), geometry (EPSG:4326, valid).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from asgm import registry
from asgm.places.vectors import PlaceInputError, clean_polygons, file_sha256, read_polygons

KINDS = ("territories", "countries", "basin")
COLUMNS = ["boundary_id", "name", "country", "type", "status", "source"]
#: Name columns tried when the user names none (case-insensitive).
NAME_GUESSES = ("name", "nombre", "nome", "nom", "name_field", "NAME_1", "shapeName", "label")
AMW_CREDIT = "Earth Genome, Amazon Mining Watch, CC BY 4.0"
_KEYS = {"territories": "amw_territories", "countries": "amw_countries", "basin": "amw_basin"}


@dataclass
class Boundaries:
    """Boundary polygons with names, and their provenance."""

    gdf: gpd.GeoDataFrame
    description: str
    credits: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BoundarySource:
    """``territories``, ``countries``, ``basin`` or ``file`` (a path, or an upload ``(name, bytes)``) with the
    user's ``name_column``. ``key()`` hashes the inputs without parsing them (the cache key)."""

    kind: str
    path: Path | None = None
    upload: tuple[str, bytes] | None = None
    name_column: str | None = None

    def key(self) -> str:
        h = hashlib.sha256(f"{self.kind}\0{self.name_column or ''}".encode())
        if self.kind in _KEYS:
            h.update(registry.FILES[_KEYS[self.kind]].sha256.encode())
        elif self.upload is not None:
            h.update(hashlib.sha256(self.upload[1]).digest())
        else:
            if self.path is None or not self.path.is_file():
                raise PlaceInputError(f"boundary file {self.path} does not exist")
            h.update(file_sha256(self.path).encode())
        return h.hexdigest()

    def load(self) -> Boundaries:
        if self.kind == "territories":
            return amw_territories()
        if self.kind == "countries":
            return amw_countries()
        if self.kind == "basin":
            return amw_basin()
        source = self.upload if self.upload is not None else self.path
        assert source is not None
        return file_boundaries(source, self.name_column)


def boundary_source(value: str, name_column: str | None = None) -> BoundarySource:
    """``territories``, ``countries``, ``basin`` or the path of a polygon file."""
    if value.strip().lower() in KINDS:
        return BoundarySource(value.strip().lower(), name_column=None)
    path = Path(value).expanduser()
    if not path.is_file():
        raise PlaceInputError(f"--boundaries {value}: not one of {', '.join(KINDS)} nor an existing polygon file")
    return BoundarySource("file", path, name_column=name_column)


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().replace("", pd.NA)


def amw_territories() -> Boundaries:
    """AMW's 237 indigenous territories with detected mining; a territory without a name is named by its
    peoples, or its id."""
    g = gpd.read_file(registry.get("amw_territories"))
    name = _text(g["name_field"]).fillna(_text(g["ethnicities_field"])).fillna(g["id"].astype("string"))
    gdf = gpd.GeoDataFrame(
        {
            "boundary_id": g["id"].astype(str),
            "name": name,
            "country": _text(g["country"]),
            "type": _text(g["type_field"]),
            "status": _text(g["status_field"]),
            "source": _text(g["source_field"]),
        },
        geometry=g.geometry.to_numpy(),
        crs=g.crs,
    )
    return _amw(
        gdf,
        "AMW indigenous territories (237 with detected mining)",
        f"Boundaries: {AMW_CREDIT}; territory boundaries compiled by AMW from RAISG and national sources (column source)",  # noqa: E501
    )


def amw_countries() -> Boundaries:
    """The nine countries' Amazon parts and the whole basin (``AMAZ``), as AMW reports them."""
    g = gpd.read_file(registry.get("amw_countries"))
    names = g["country"].replace({"FrenchGuiana": "French Guiana"}).astype("string")
    is_basin = g["id"] == "AMAZ"
    gdf = gpd.GeoDataFrame(
        {
            "boundary_id": g["id"].astype(str),
            "name": names,
            "country": names.where(~is_basin),
            "type": pd.Series(["basin" if b else "country (Amazon part)" for b in is_basin], dtype="string"),
            "status": pd.Series(pd.NA, index=g.index, dtype="string"),
            "source": pd.Series("Amazon Mining Watch", index=g.index, dtype="string"),
        },
        geometry=g.geometry.to_numpy(),
        crs=g.crs,
    )
    return _amw(gdf, "AMW countries (Amazon part of each) and the whole basin", f"Boundaries: {AMW_CREDIT}")


def amw_basin() -> Boundaries:
    """The Amazon basin outline."""
    g = gpd.read_file(registry.get("amw_basin"))
    gdf = gpd.GeoDataFrame(
        {
            "boundary_id": ["basin"],
            "name": ["Amazon basin"],
            "country": [pd.NA],
            "type": ["basin"],
            "status": [pd.NA],
            "source": ["Amazon Mining Watch"],
        },
        geometry=[g.geometry.union_all()],
        crs=g.crs,
    )
    return _amw(gdf, "the Amazon basin outline (AMW)", f"Boundaries: {AMW_CREDIT}")


def _amw(gdf: gpd.GeoDataFrame, description: str, credits: str) -> Boundaries:
    cleaned = clean_polygons(gdf, description)
    return Boundaries(cleaned.gdf, description, credits, cleaned.notes)


def file_boundaries(source: Path | tuple[str, bytes], name_column: str | None = None) -> Boundaries:
    """Boundaries from a polygon file; names from ``name_column`` (refused if absent), else a guessed column,
    else numbered features (said in notes)."""
    polys = read_polygons(source, "the boundary file")
    g, notes = polys.gdf, list(polys.notes)
    attrs = [str(c) for c in g.columns if c != g.geometry.name]
    if name_column is not None and name_column not in attrs:
        raise PlaceInputError(
            f"{polys.name} has no column {name_column!r}; its columns are "
            f"{', '.join(attrs) or '(none)'}: pick one of them as the name column"
        )
    if name_column is None:
        lower = {c.lower(): c for c in attrs}
        name_column = next((lower[n.lower()] for n in NAME_GUESSES if n.lower() in lower), None)
        if name_column is None:
            notes.append(
                f"{polys.name}: no name column picked or found (columns: {', '.join(attrs) or 'none'}); "
                "places are numbered"
            )
        else:
            notes.append(f"{polys.name}: names from column {name_column!r}")
    n = len(g)
    numbers = pd.Series([f"feature {i + 1}" for i in range(n)], dtype="string")
    names = numbers if name_column is None else _text(g[name_column].astype(str)).fillna(numbers)
    ids = (
        g["id"].astype(str)
        if "id" in attrs and g["id"].astype(str).is_unique
        else pd.Series([str(i + 1) for i in range(n)])
    )
    empty = pd.Series(pd.NA, index=range(n), dtype="string")
    gdf = gpd.GeoDataFrame(
        {
            "boundary_id": ids.to_numpy(),
            "name": names.to_numpy(),
            "country": empty,
            "type": empty,
            "status": empty,
            "source": pd.Series(polys.name.split(" ", 3)[-1], index=range(n), dtype="string"),
        },
        geometry=g.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    return Boundaries(gdf, polys.name, "as credited by the file's provider", notes)
