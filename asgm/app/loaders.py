"""Cached loaders for the pages (stores, patches, models, predictions, runs, map points), keyed by the
version (mtime) of what they read so a rebuilt store or retrained run is picked up; and click-to-classify
with the cached model and patch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import streamlit as st

from asgm.config import ExperimentConfig, data_dir, models_dir
from asgm.data.store import PatchStore, PatchStoreError, list_stores
from asgm.errors import AsgmError
from asgm.model import runs

if TYPE_CHECKING:  # the first page (Home) and the sidebar load neither
    import numpy as np
    import pandas as pd


@st.cache_data(ttl=60, show_spinner=False)
def registry_status() -> list[dict[str, Any]]:
    """Upstream files present locally (hashing them takes ~0.1 s, so cached for a minute)."""
    from asgm import registry

    return registry.status()


def store_summaries() -> list[dict[str, Any]]:
    """``PatchStore.summary()`` of every store on disk; a corrupt store becomes a row with its error."""
    out = []
    for name in list_stores():
        try:
            s = PatchStore.open(name).summary()
        except AsgmError as exc:  # a corrupt store must not hide the others
            s = {"name": name, "error": str(exc)}
        out.append(s)
    return out


def stores_without_meta() -> list[str]:
    """One message per folder of the stores root that holds patches but no store.json (``list_stores`` skips
    them, so a page would otherwise say there is no store at all)."""
    from asgm.config import stores_dir

    root = stores_dir()
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir() and not (folder / "store.json").is_file():
            try:
                PatchStore.open(folder.name)
            except PatchStoreError as exc:
                if "no store.json" in str(exc):
                    out.append(str(exc))
    return out


def store_label(name: str) -> str:
    """A store's name for pickers, marked '(synthetic)' when it holds synthetic patches."""
    try:
        return f"{name} (synthetic)" if open_store(name).meta.synthetic else name
    except AsgmError:  # a broken store still gets listed; opening it shows the error
        return f"{name} (unreadable)"


def osm_caches() -> list[dict[str, Any]]:
    """Files in the OSM fetch cache (``data/osm``)."""
    root = data_dir() / "osm"
    if not root.is_dir():
        return []
    return [
        {"file": str(p.relative_to(root)), "bytes": p.stat().st_size} for p in sorted(root.rglob("*")) if p.is_file()
    ]


def list_runs_safe() -> list[Any]:
    """All runs, newest first; [] when the run store is unreadable (a damaged run folder is listed as
    'corrupt' by ``asgm.model.runs.list_runs``; pages show per-run errors)."""
    try:
        out = list(runs.list_runs())
    except (OSError, AsgmError):
        return []
    return sorted(out, key=lambda r: str(r.created), reverse=True)


def completed_runs() -> list[Any]:
    return [r for r in list_runs_safe() if r.status == "completed" and r.config is not None]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def store_version(name: str) -> float:
    """Changes whenever the store's index is rewritten (cache key for store-derived data)."""
    try:
        from asgm.config import stores_dir

        return _mtime(stores_dir() / name / "index.csv") + _mtime(stores_dir() / name / "osm.json")
    except OSError:
        return 0.0


@st.cache_resource(max_entries=8, show_spinner=False)
def _open_store(name: str, version: float) -> PatchStore:
    return PatchStore.open(name)


def open_store(name: str) -> PatchStore:
    """The store, opened once per version of its index."""
    return _open_store(name, store_version(name))


@st.cache_data(max_entries=8, show_spinner=False)
def _store_index(name: str, version: float) -> pd.DataFrame:
    return PatchStore.open(name).index()


def store_index(name: str) -> pd.DataFrame:
    return _store_index(name, store_version(name))


@st.cache_data(max_entries=1024, show_spinner=False)
def _read_patch(name: str, sid: str, version: float) -> Any:
    return open_store(name).read_patch(sid)


def read_patch(name: str, sid: str) -> Any:
    """A patch, cached (max 1,024 patches, ~5 MB for 48 px RGB)."""
    return _read_patch(name, sid, store_version(name))


@st.cache_data(max_entries=1024, show_spinner=False)
def _read_osm(name: str, sid: str, version: float) -> Any:
    return open_store(name).read_osm(sid)


def read_osm(name: str, sid: str) -> Any:
    """(masks, layers) or None, cached."""
    return _read_osm(name, sid, store_version(name))


def has_osm_vectors(name: str) -> bool:
    """Whether store ``name`` has cached OSM vectors to draw on the map (``asgm.osm.nearby``)."""
    from asgm.osm.nearby import store_vectors_path

    return store_vectors_path(open_store(name)) is not None


@st.cache_resource(max_entries=2, show_spinner="Reading the store's OSM cache…")
def _osm_vectors(path: str, mtime: float) -> Any:
    from asgm.osm.fetch import read_vectors

    return read_vectors(path)


def osm_around(name: str, lon: float, lat: float, radius_m: float) -> Any:
    """The store's cached OSM features around (lon, lat), one row per key; the vector file is read once per
    version (shared, never modified: clipping makes new frames)."""
    from asgm.osm.nearby import features_around

    return features_around(open_store(name), lon, lat, radius_m, read=lambda p: _osm_vectors(str(p), _mtime(Path(p))))


@st.cache_data(show_spinner="Loading the study's labelled points…")
def study_points() -> pd.DataFrame:
    """The study's 1,259 labelled points (positives, curated and random negatives) as a plain DataFrame."""
    import pandas as pd

    from asgm.data.points import load_points

    return pd.DataFrame(load_points().drop(columns="geometry"))


def _run_version(run_id: str) -> float:
    folder = models_dir() / run_id
    return _mtime(folder / "model.keras") + _mtime(folder / "metrics.json") + _mtime(folder / "predictions.csv")


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _load_model(run_id: str, version: float) -> Any:
    model = runs.load_model(run_id)
    _freeze_long_lived()
    return model


def _freeze_long_lived() -> None:
    """Move every object alive now (TensorFlow, the model, the libraries, the caches) out of the cyclic
    garbage collector's sight (``gc.freeze``), after one collection of what is garbage already.

    Why: once Keras is imported, Streamlit calls ``keras.backend.clear_session()`` after every script run,
    and that runs a full ``gc.collect()``; with TensorFlow loaded (~540,000 tracked objects) each one held
    the GIL for 0.3-0.6 s, so the messages of every click and rerun waited for it. With these objects
    frozen it takes a few ms. What is frozen is never cycle-collected (reference counting still frees it),
    so this is done only when a model is loaded, i.e. a few times per server."""
    import gc

    gc.collect()
    gc.freeze()


def load_model(run_id: str) -> Any:
    """The run's Keras model, loaded once (at most 3 kept); reloaded if the model file changes."""
    return _load_model(run_id, _run_version(run_id))


@st.cache_resource(max_entries=3, show_spinner=False)
def _compiled_model(run_id: str, version: float) -> Any:
    from asgm.model.inference import CompiledModel

    return CompiledModel(_load_model(run_id, version))


def compiled_model(run_id: str) -> Any:
    """The run's model with a compiled single-patch forward pass (cached like ``load_model``)."""
    return _compiled_model(run_id, _run_version(run_id))


@st.cache_data(max_entries=8, show_spinner=False)
def _predictions(run_id: str, version: float) -> pd.DataFrame:
    return runs.predictions(run_id)


def predictions(run_id: str) -> pd.DataFrame:
    return _predictions(run_id, _run_version(run_id))


@st.cache_data(max_entries=8, show_spinner=False)
def _store_probabilities(run_id: str, store_name: str, run_v: float, store_v: float) -> pd.DataFrame:
    from asgm.maps.probabilities import store_probabilities as batched

    return batched(run_id, open_store(store_name), model=load_model(run_id))


def store_probabilities(run_id: str, store_name: str) -> pd.DataFrame:
    """``asgm.maps.probabilities.store_probabilities``, computed once per version of the run and the store."""
    return _store_probabilities(run_id, store_name, _run_version(run_id), store_version(store_name))


def checked_patch(name: str, sid: str) -> Any:
    """A patch to classify, checked as ``asgm patches check`` and the batched pass check it (size, bands, band
    names, uint16 DN against the store): a damaged or foreign file is a ``DatasetError``, never a probability."""
    from asgm.model.inputs import validate_patch

    patch = read_patch(name, sid)
    meta = open_store(name).meta
    validate_patch(sid, patch.data, patch.bands, int(meta.size), tuple(meta.bands))
    return patch


def model_input(run_id: str, store_name: str, sid: str) -> tuple[Any, Any, np.ndarray]:
    """(model, config, x) for one patch; the patch and model come from the caches."""
    from asgm.model import inference

    info = runs.get_run(run_id)
    inference.run_threshold(info)  # only a completed run (with its config) has a model
    config = cast(ExperimentConfig, info.config)
    model = load_model(run_id)
    patch = checked_patch(store_name, sid)
    osm = read_osm(store_name, sid) if config.osm_layers else None
    x = inference.prepare_input(patch, osm, config)
    return model, config, x


def classify(run_id: str, store_name: str, sid: str, zero_layers: Sequence[str] = ()) -> dict[str, Any]:
    """Probability, threshold, decision and true label of one patch under the selected run.

    ``asgm.model.inference.classify`` with the model and patch taken from the app caches, so a click costs one
    forward pass."""
    from asgm.model import inference

    info = runs.get_run(run_id)
    inference.run_threshold(info)  # a run without a threshold is the problem to report, before loading its model
    config = cast(ExperimentConfig, info.config)  # run_threshold refused a run without one
    model = compiled_model(run_id)
    patch = checked_patch(store_name, sid)
    osm = read_osm(store_name, sid) if config.osm_layers else None
    return inference.classify_patch(model, info, patch, osm, zero_layers)


def store_problems(run_config: ExperimentConfig, store_name: str) -> list[str]:
    """Why a run cannot classify (or a config cannot train on) the patches of a store
    (``asgm.model.store_fit.store_problems`` on the cached store); [] when it can."""
    from asgm.model.store_fit import store_problems as problems

    try:
        store = open_store(store_name)
    except PatchStoreError as exc:
        return [str(exc)]
    return problems(store, run_config)


def product_level_note(run_config: ExperimentConfig, store_name: str) -> str | None:
    """A caution when the run was trained on another Sentinel-2 product level (L1C vs L2A) than this store holds."""
    from asgm.model.store_fit import product_level_note as note

    try:
        trained, here = open_store(run_config.store), open_store(store_name)
    except PatchStoreError:
        return None
    return note(trained, here)


def encoding_note(run_config: ExperimentConfig, store_name: str) -> str | None:
    """The one line saying which input encoding the run expects and that the store's patches get it
    (``asgm.model.store_fit.encoding_note``); None when the store cannot be opened."""
    from asgm.model.store_fit import encoding_note as note

    try:
        return note(run_config, open_store(store_name))
    except PatchStoreError:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def _map_points(store_name: str | None, run_id: str | None, store_v: float, run_v: float) -> pd.DataFrame:
    try:
        study = study_points()
    except AsgmError:  # shown as a warning by the page; the store's points are still drawn
        study = None
    try:
        index = store_index(store_name) if store_name else None
    except AsgmError:
        index = None
    try:
        pred = predictions(run_id) if run_id else None
    except AsgmError:
        pred = None
    from asgm.maps.points import combine_points

    return combine_points(study, index, pred)


def map_points(store_name: str | None, run_id: str | None) -> pd.DataFrame:
    """``combine_points`` of the study points, the store's patches and the run's predictions, cached per
    version of the store and the run."""
    return _map_points(
        store_name, run_id, store_version(store_name) if store_name else 0.0, _run_version(run_id) if run_id else 0.0
    )


def ablation_results(run_ids: Sequence[str]) -> pd.DataFrame:
    """``asgm.training.experiments.ablation_results``, with a warning shown per unreadable results file."""
    from asgm.training import experiments

    table, problems = experiments.ablation_results(run_ids)
    for problem in problems:
        st.warning(problem)
    return table
