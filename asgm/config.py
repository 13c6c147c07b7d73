"""Paths, environment variables and the one typed experiment config shared by CLI, UI and run store."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from asgm.errors import AsgmError, one_line

#: The repository root (the folder holding ``app.py``), when running from a checkout.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The study's 12 Sentinel-2 bands, in the study's order (B8A before B8, no B10).
S2_BANDS: tuple[str, ...] = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B8", "B9", "B11", "B12")
#: The demo pack's bands (Earth Genome's RGB chips).
RGB_BANDS: tuple[str, ...] = ("B4", "B3", "B2")
#: The five OSM keys of the study, in the one fixed order this project uses everywhere.
OSM_LAYERS: tuple[str, ...] = ("highway", "waterway", "building", "landuse", "aeroway")

OsmLayer = Literal["highway", "waterway", "building", "landuse", "aeroway"]


def data_dir() -> Path:
    """Root of caches and patch stores (``ASGM_DATA_DIR``, default ``<repo>/data``)."""
    return Path(os.environ.get("ASGM_DATA_DIR") or PROJECT_ROOT / "data")


def models_dir() -> Path:
    """Root of the run store (``ASGM_MODELS_DIR``, default ``<repo>/models``)."""
    return Path(os.environ.get("ASGM_MODELS_DIR") or PROJECT_ROOT / "models")


def stores_dir() -> Path:
    """Folder holding one sub-folder per patch store."""
    return data_dir() / "stores"


def cache_dir() -> Path:
    """Download cache for upstream files (pooch)."""
    return data_dir() / "cache"


def data_base_url() -> str:
    """Where upstream files are downloaded from, in the layout of ``raw.githubusercontent.com``
    (``ASGM_DATA_BASE_URL`` points it at another server holding the same layout, e.g. a local copy)."""
    value = os.environ.get("ASGM_DATA_BASE_URL") or "https://raw.githubusercontent.com/"
    return value if value.endswith("/") else value + "/"


def mirror_dir() -> Path | None:
    """Local mirror of upstream files (``ASGM_DATA_MIRROR``), or None to use the network."""
    value = os.environ.get("ASGM_DATA_MIRROR")
    return Path(value).expanduser().resolve() if value else None


class TextEncodingError(AsgmError):
    """A text file the user gave that is not UTF-8."""


def read_text(path: str | Path) -> str:
    """A user's text file (GeoJSON, JSON, TOML, CSV) as UTF-8, with or without a BOM (common from Windows
    tools); another encoding (e.g. Latin-1) is a ``TextEncodingError`` saying to save it as UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextEncodingError(
            f"{path} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}; "
            "Latin-1 or another encoding?): save it as UTF-8 and try again"
        ) from None


def invalid_fields(exc: ValidationError, limit: int = 5) -> str:
    """A pydantic validation error as one line: ``field: problem; field: problem``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()[:limit])


class ConfigError(AsgmError):
    """An experiment config file that cannot be used; the message names the problem."""


#: Holdout regions: Earth Genome's Caroní rectangle, or a country (asgm.data.regions.COUNTRIES, same names).
Holdout = Literal["caroni", "venezuela", "peru", "brazil", "bolivia", "colombia", "ecuador", "guyana"]
HOLDOUTS: tuple[str, ...] = get_args(Holdout)


class InputEncoding(BaseModel):
    """How a model's band inputs are encoded before they reach it (recorded with the store and the run).

    ``reflectance``: the store's reflectance as it is (DN / 10000, clipped to [0, 1]). ``display_rgb_8bit``:
    what Earth Genome's chip galleries hold, reflectance clipped at ``clip`` and quantised to ``levels``
    display levels (level = round(min(r, clip) / clip x (levels - 1)), r = level / (levels - 1) x clip;
    ``asgm.model.inputs.encode_bands`` applies it). Encoding is idempotent: pixels already encoded stay as
    they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["reflectance", "display_rgb_8bit"] = "reflectance"
    clip: float | None = Field(None, gt=0, le=1, description="Reflectance shown at the top display level.")
    levels: int | None = Field(None, ge=2, le=65536, description="Display levels (256 for 8 bits).")

    @model_validator(mode="after")
    def _fields_fit_name(self) -> InputEncoding:
        if self.name == "reflectance" and (self.clip is not None or self.levels is not None):
            raise ValueError("the reflectance encoding takes no clip or levels")
        if self.name == "display_rgb_8bit" and (self.clip is None or self.levels is None):
            raise ValueError("the display_rgb_8bit encoding needs clip and levels")
        return self

    def describe(self) -> str:
        """One phrase for pages and reports."""
        if self.name == "reflectance":
            return "reflectance (DN / 10000)"
        return f"{self.name} (reflectance clipped at {self.clip:g}, {self.levels} levels)"

    def display_levels(self, dn: Any) -> Any:
        """Display levels (float64 integers 0..levels-1) of DN (reflectance x 10000): the gallery stretch."""
        import numpy as np

        top = float(self.clip or 1.0) * 10000.0
        return np.rint(np.clip(np.asarray(dn, dtype=np.float64) / top, 0.0, 1.0) * ((self.levels or 2) - 1))

    def levels_to_dn(self, levels: Any) -> Any:
        """DN (float64 integers) of display levels: how the gallery packs turn chips into store pixels."""
        import numpy as np

        top = float(self.clip or 1.0) * 10000.0
        return np.rint(np.asarray(levels, dtype=np.float64) / ((self.levels or 2) - 1) * top)


#: Full-range reflectance: fetched (STAC, Earth Engine) and synthetic stores.
REFLECTANCE = InputEncoding()
#: Earth Genome's chip galleries (demo and Amazon packs): RGB = clip(DN / 3000, 0, 1) x 255 as 8 bits.
DISPLAY_RGB_8BIT = InputEncoding(name="display_rgb_8bit", clip=0.3, levels=256)


class ExperimentConfig(BaseModel):
    """Everything that defines a training run. Saved as ``config.json`` in every run folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="Free label for the run (shown in tables).")
    store: str = Field("demo", description="Patch store name under data/stores/.")
    bands: tuple[str, ...] = Field(RGB_BANDS, description="Sentinel-2 bands, in channel order.")
    osm_layers: tuple[OsmLayer, ...] = Field((), description="OSM channels; always kept in OSM_LAYERS order.")
    patch_size: Literal[48, 256] = 48
    negatives: Literal["curated", "random"] = "curated"
    class_weight: bool = False
    seed: int = 7
    epochs: int = Field(160, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    augment: bool = True
    affine_augment: bool = Field(False, description="Small shifts/zoom on top of flips and 90° rotations.")
    early_stopping_patience: int | None = Field(None, ge=1)
    split_eps_m: float = Field(3000.0, gt=0, description="DBSCAN eps for the spatial split, true metres.")
    split_fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    holdout: Holdout | None = Field(
        None,
        description="Geographic holdout used as the test set: 'caroni' (Earth Genome's Caroní box) or a "
        "country (leave-one-region-out: train without it, test in it).",
    )
    masked_limit_pos: float = 0.10
    masked_limit_neg: float = 0.60
    # The recipe beyond the study (issue 14); the defaults reproduce the study's pipeline exactly.
    architecture: Literal["study", "detector"] = Field(
        "study", description="'study': the study's CNN (Table 1); 'detector': BatchNorm + global pooling net."
    )
    jitter: bool = Field(False, description="Brightness, per-band gain and haze jitter on top of D4 (training).")
    balance_sets: bool = Field(False, description="Weight samples by 1/sqrt(set size) within each class.")
    balance_by: Literal["set", "confuser"] = Field(
        "set",
        description="What balance_sets groups chips by: their set, or for negatives their confuser class "
        "(the store index's 'confuser': riverbank, industrial, cloud, ...; a negative without one keeps its set).",
    )
    hard_negatives_from: str | None = Field(
        None,
        description="Hard-negative mining: a finished first-pass run whose false positives among this run's "
        "training negatives weigh hard_negative_weight times more (never validation or test chips).",
    )
    hard_negative_weight: float = Field(
        3.0, ge=1.0, le=20.0, description="Sample-weight factor of the mined hard negatives (hard_negatives_from)."
    )
    tta: bool = Field(False, description="Average the logits over the 8 D4 symmetries at prediction time.")
    calibrate: bool = Field(False, description="Temperature scaling fitted on validation (probabilities).")
    split_seed: int | None = Field(None, description="Seed of the spatial split (None: same as seed).")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="'cosine': learning rate decays to 0 over the epochs (cosine)."
    )
    encoding: InputEncoding | None = Field(
        None,
        description="How band inputs are encoded (asgm.config.InputEncoding); None: the training store's, "
        "recorded in the run's config.json when training starts (asgm.model.store_fit.with_store_encoding).",
    )
    members: tuple[str, ...] = Field(
        (),
        description="An ensemble's member runs, whose logits its model averages (built by `asgm ensemble`, "
        "never trained); empty for a trained net.",
    )

    @field_validator("osm_layers", mode="before")
    @classmethod
    def _order_layers(cls, value: Any) -> tuple[str, ...]:
        layers = tuple(value or ())
        unknown = [x for x in layers if x not in OSM_LAYERS]
        if unknown:
            raise ValueError(f"unknown OSM layer(s) {unknown}; choose from {list(OSM_LAYERS)}")
        return tuple(x for x in OSM_LAYERS if x in layers)

    @field_validator("split_fractions")
    @classmethod
    def _fractions_sum(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if abs(sum(value) - 1.0) > 1e-6 or min(value) <= 0:
            raise ValueError("split_fractions must be three positive numbers summing to 1")
        return value

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names in input order: bands, then OSM layers."""
        return tuple(self.bands) + tuple(f"osm:{x}" for x in self.osm_layers)

    @classmethod
    def from_file(cls, path: str | Path) -> ExperimentConfig:
        """Load a config from a ``.toml`` or ``.json`` file; a missing, unparsable or invalid file is a
        ``ConfigError`` naming the problem."""
        path = Path(path)
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        try:
            text = read_text(path)
            raw = tomllib.loads(text) if kind == "TOML" else json.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSON/TOML decode errors are ValueErrors
            raise ConfigError(
                f"config file {path} is not valid {kind} ({one_line(exc)}); write a .json or .toml experiment config"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a {kind} object of experiment settings")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"config file {path} is not a valid experiment config: {invalid_fields(exc)}") from None

    @property
    def split_seed_used(self) -> int:
        """The seed the spatial split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def to_json(self) -> str:
        """Serialize to indented JSON (the run store's ``config.json``)."""
        return self.model_dump_json(indent=2)
