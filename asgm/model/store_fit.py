"""Does a patch store fit an experiment config? One check for "can this store train this config" and "can
this run classify this store's patches" (a run is its config), reporting every problem at once; and the input
encoding a store's pixels are in (``store_encoding``), which a config without one takes (``with_store_encoding``).

Used by ``asgm.model.inputs.check_store`` (training, CLI and background runs), ``asgm.model.run_jobs.launch`` (nothing
is launched that would fail in the background), and the app's Train, Map and Patch viewer pages.
"""

from __future__ import annotations

from pathlib import Path

from asgm.config import DISPLAY_RGB_8BIT, REFLECTANCE, ExperimentConfig, InputEncoding
from asgm.data.store import PatchStore, PatchStoreError, StoreMeta
from asgm.errors import one_line


def store_problems(store: PatchStore, config: ExperimentConfig) -> list[str]:
    """Every reason ``store`` cannot feed a model of ``config`` (bands, patch size, OSM layers), each saying
    what to do; empty when it can."""
    problems = []
    missing = [b for b in config.bands if b not in store.meta.bands]
    if missing:
        problems.append(
            f"store {store.name!r} has bands {list(store.meta.bands)}; the config asks for {missing} too. "
            f"Choose bands from the store (e.g. --bands {','.join(store.meta.bands)}) or another store"
        )
    if int(store.meta.size) != int(config.patch_size):
        problems.append(
            f"store {store.name!r} holds {store.meta.size}-px patches, the config asks for {config.patch_size} px; "
            f"set patch_size={store.meta.size} or pick a {config.patch_size}-px store"
        )
    if config.osm_layers:
        info = store.osm_info()
        have = tuple((info or {}).get("layers", ()))
        lacking = [x for x in config.osm_layers if x not in have]
        if info is None:
            problems.append(
                f"store {store.name!r} has no OSM masks (the config uses {list(config.osm_layers)}); run "
                f"`asgm osm fetch` then `asgm osm rasterize --store {store.name}`, or drop the OSM layers"
            )
        elif lacking:
            problems.append(
                f"store {store.name!r} has no OSM masks for {lacking} (has: {list(have) or 'none'}); run "
                f"`asgm osm rasterize --store {store.name} --layers {' '.join(config.osm_layers)}`, or drop them"
            )
    return problems


def product_level_note(trained_on: PatchStore, store: PatchStore) -> str | None:
    """A caution when a run trained on ``trained_on`` is applied to patches of another Sentinel-2 product
    level (L1C vs L2A) in ``store``, else None."""
    from asgm.sources.common import product_level_warning

    return product_level_warning(trained_on.meta.product_level, store.meta.product_level)


def encoding_note(
    config: ExperimentConfig, held: InputEncoding | PatchStore, what: str = "this store's patches"
) -> str:
    """One line for where a model meets a store or a scan: the encoding the model expects and that it was
    applied to ``what`` (pixels held in encoding ``held``, or a store's own)."""
    if isinstance(held, PatchStore):
        held = store_encoding(held.meta)
    expects = config.encoding or REFLECTANCE
    if expects == held or expects == REFLECTANCE:
        how = f"{what} are fed as they are ({held.name})"
    elif held == REFLECTANCE:
        how = f"{what} hold reflectance and are encoded that way before the model sees them"
    else:
        how = f"{what} ({held.name}) are re-encoded that way (pixels already encoded stay unchanged)"
    return f"Input encoding: the model expects {expects.describe()}; {how}."


#: Sources whose stores hold Earth Genome's display-stretched chips (asgm.sources.gallery).
GALLERY_SOURCES = ("demo", "amazon")


def store_encoding(meta: StoreMeta) -> InputEncoding:
    """The encoding of a store's pixels: the one ``store.json`` records, else (stores built before it was
    recorded) ``display_rgb_8bit`` for the gallery packs and ``reflectance`` for every other store."""
    if meta.encoding is not None:
        try:
            return InputEncoding.model_validate(meta.encoding)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise PatchStoreError(
                f"store {meta.name!r} records an invalid encoding {meta.encoding!r} "
                f"({one_line(exc)}); rebuild the store"
            ) from None
    if meta.source in GALLERY_SOURCES or "stretch" in meta.extra:
        return DISPLAY_RGB_8BIT
    return REFLECTANCE


def with_store_encoding(config: ExperimentConfig, root: Path | None = None) -> ExperimentConfig:
    """``config`` with its input encoding filled in from its training store when it records none (configs
    written before encodings were recorded, or a new config about to train). A training store that is gone
    leaves the gallery packs' names (``demo``, ``amazon``) their encoding and every other name reflectance."""
    if config.encoding is not None:
        return config
    try:
        encoding = store_encoding(PatchStore.open(config.store, root=root).meta)
    except PatchStoreError:
        encoding = DISPLAY_RGB_8BIT if config.store in GALLERY_SOURCES else REFLECTANCE
    return config.model_copy(update={"encoding": encoding})
