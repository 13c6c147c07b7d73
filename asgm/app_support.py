"""App glue shared by the Streamlit pages: cached loaders, the selected run, local map assets, data status,
and the one-click "prepare the demo" background job.

This is the only module of ``asgm`` that imports streamlit. TensorFlow is never imported at module level:
``asgm.inference`` (and with it Keras) is imported only inside the functions that run a model, so the
map and home pages open fast.

``python -m asgm.app_support prepare`` is the background job behind "prepare the demo": it builds the
demo patch store when missing, then launches the small default training run (``asgm.runs.launch``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from asgm import CREDITS, atomic
from asgm.config import PROJECT_ROOT, RGB_BANDS, ExperimentConfig, data_dir, models_dir
from asgm.store import PatchStore, PatchStoreError, list_stores

# -- local Leaflet / jQuery ------------------------------------------------------------------------
#: Where Streamlit serves ``static/`` from (next to app.py) and the URL prefix it uses.
STATIC_DIR = PROJECT_ROOT / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_URL = "/app/static/vendor"
LEAFLET_JS = [("leaflet", f"{STATIC_URL}/leaflet/leaflet.js"), ("jquery", f"{STATIC_URL}/jquery/jquery.min.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC_URL}/leaflet/leaflet.css")]


def ensure_static_assets(vendor_dir: Path = VENDOR_DIR) -> Path:
    """Copy Leaflet and jQuery from the xstatic packages into ``static/vendor/`` (idempotent: files that
    are already there with the same size are left alone). Offline, the CDN copies folium asks for never
    load, so the map would stay blank."""
    import xstatic.pkg.jquery as xjq
    import xstatic.pkg.leaflet as xll

    wanted = {
        Path(xll.BASE_DIR) / "leaflet.js": vendor_dir / "leaflet" / "leaflet.js",
        Path(xll.BASE_DIR) / "leaflet.css": vendor_dir / "leaflet" / "leaflet.css",
        Path(xjq.BASE_DIR) / "jquery.min.js": vendor_dir / "jquery" / "jquery.min.js",
    }
    for img in (Path(xll.BASE_DIR) / "images").glob("*.png"):
        wanted[img] = vendor_dir / "leaflet" / "images" / img.name
    for src, dst in wanted.items():
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(dst) as tmp:  # a concurrent session never reads half a file
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the server may run as another user
    return vendor_dir


# -- page setup --------------------------------------------------------------------------------------
def page_setup(title: str) -> None:
    """Common first lines of every page: page config, local map assets, first-start preparation."""
    st.set_page_config(page_title=f"{title} · ASGM Explorer", page_icon=_favicon(), layout="wide")
    try:
        _static_once()
    except Exception as exc:  # a read-only checkout must not take the app down; only the map suffers
        st.warning(f"Could not copy the local map assets into {VENDOR_DIR} ({exc}); maps need the network.")
    auto_prepare()


@st.cache_resource
def _favicon():
    """A small local favicon (a gold dot on dark green): emoji and material icons would be fetched from a
    CDN, which fails offline."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (27, 94, 32, 255))
    ImageDraw.Draw(img).ellipse((8, 8, 24, 24), fill=(230, 171, 2, 255))
    return img


@st.cache_resource
def _static_once() -> Path:
    return ensure_static_assets()


def engine_runs():
    """The run store module, or None (with a message) when the training engine is not installed."""
    try:
        from asgm import runs
    except ImportError as exc:
        st.error(f"The training engine (asgm.runs) is not available: {exc}. Reinstall the project "
                 "(`pip install -r requirements.txt`).")
        return None
    return runs


def patch_viewer_link(store_name: str, sid: str) -> None:
    """A link to the patch viewer for one patch (store and sample carried in the query string)."""
    from urllib.parse import urlencode

    try:
        st.page_link("pages/2_Patch_viewer.py", label="Open in the patch viewer →",
                     query_params={"store": store_name, "sample": sid})
    except Exception:  # page not registered (a page run on its own, e.g. in tests): a plain link does the same
        st.markdown(f"[Open in the patch viewer](Patch_viewer?{urlencode({'store': store_name, 'sample': sid})})")


def show_error(exc: BaseException, way_out: str = "") -> None:
    """One user-facing error box: what went wrong and what to do."""
    st.error(f"{exc}" + (f"\n\n**What to do:** {way_out}" if way_out else ""))


# -- data present ----------------------------------------------------------------------------------
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
        except Exception as exc:  # a corrupt store must not hide the others
            s = {"name": name, "error": str(exc)}
        out.append(s)
    return out


def store_label(name: str) -> str:
    """A store's name for pickers, marked '(synthetic)' when it holds synthetic patches."""
    try:
        return f"{name} (synthetic)" if open_store(name).meta.synthetic else name
    except Exception:  # a broken store still gets listed; opening it shows the error
        return f"{name} (unreadable)"


def osm_caches() -> list[dict[str, Any]]:
    """Files in the OSM fetch cache (``data/osm``)."""
    root = data_dir() / "osm"
    if not root.is_dir():
        return []
    return [{"file": str(p.relative_to(root)), "bytes": p.stat().st_size} for p in sorted(root.rglob("*")) if p.is_file()]


def list_runs_safe() -> list[Any]:
    """All runs, newest first; [] when the engine is missing or the run store unreadable."""
    try:
        from asgm import runs
    except ImportError:
        return []
    try:
        out = list(runs.list_runs())
    except Exception:  # one corrupt run folder must not empty the app; pages show per-run errors
        return []
    return sorted(out, key=lambda r: str(r.created), reverse=True)


# -- selected run -----------------------------------------------------------------------------------
def completed_runs() -> list[Any]:
    return [r for r in list_runs_safe() if r.status == "completed" and r.config is not None]


def seconds_since(stamp: Any) -> float | None:
    """Seconds since an ISO timestamp (or epoch seconds); None when absent or unparsable."""
    if isinstance(stamp, (int, float)):
        return time.time() - float(stamp)
    try:
        return time.time() - pd.Timestamp(stamp).timestamp()
    except (TypeError, ValueError):
        return None


def run_label(r: Any) -> str:
    c = r.config
    osm = "+OSM(" + ",".join(c.osm_layers) + ")" if c.osm_layers else "RGB" if tuple(c.bands) == RGB_BANDS else "bands"
    f1 = (r.metrics or {}).get("f1")
    f1s = f" F1 {f1:.2f}" if isinstance(f1, (int, float)) else ""
    return f"{r.run_id} · {c.name or c.store} · {c.store} {c.patch_size}px {osm}{f1s}"


def selected_run_id(sidebar: bool = True) -> str | None:
    """The run the pages classify with (``st.session_state['run_id']``), picked in the sidebar.

    Defaults to the newest completed run; kept across page switches in session state."""
    done = completed_runs()
    if not done:
        if sidebar:
            st.sidebar.info("No trained run yet. The default model trains on first start; see **Home** or **Train**.")
        return None
    ids = [r.run_id for r in done]
    if st.query_params.get("run") in ids and st.session_state.get("_run_from_url") != st.query_params["run"]:
        # A shared link names its run (?run=ID): adopt it once, then the sidebar picker rules.
        st.session_state["run_id"] = st.session_state["_run_from_url"] = st.query_params["run"]
    current = st.session_state.get("run_id")
    if current not in ids:
        current = ids[0]
        st.session_state["run_id"] = current
    if sidebar:
        labels = {r.run_id: run_label(r) for r in done}

        def _pick() -> None:
            st.session_state["run_id"] = st.session_state["_run_picker"]

        st.sidebar.selectbox("Model (run)", ids, index=ids.index(current), format_func=labels.get,
                             key="_run_picker", on_change=_pick)
    return st.session_state["run_id"]


# -- cached loaders ----------------------------------------------------------------------------------
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
    except Exception:
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
def _read_patch(name: str, sid: str, version: float):
    return open_store(name).read_patch(sid)


def read_patch(name: str, sid: str):
    """A patch, cached (max 1,024 patches, ~5 MB for 48 px RGB)."""
    return _read_patch(name, sid, store_version(name))


@st.cache_data(max_entries=1024, show_spinner=False)
def _read_osm(name: str, sid: str, version: float):
    return open_store(name).read_osm(sid)


def read_osm(name: str, sid: str):
    """(masks, layers) or None, cached."""
    return _read_osm(name, sid, store_version(name))


@st.cache_data(show_spinner="Loading the study's labelled points…")
def study_points() -> pd.DataFrame:
    """The study's 1,259 labelled points (positives, curated and random negatives) as a plain DataFrame."""
    from asgm.points import load_points

    return pd.DataFrame(load_points().drop(columns="geometry"))


REFERENCE_LAYERS = ("eg_mining_polygons_2020", "runway_points", "caroni_holdout")


@st.cache_resource(show_spinner="Preparing reference layers…")
def reference_layer_url(key: str) -> str:
    """URL of a compact copy of an upstream reference layer (mining polygons, runway points, Caroní
    holdout) under ``static/vendor/layers/``, written once; the browser fetches it, Python never re-sends it."""
    import geopandas as gpd

    from asgm import registry
    from asgm.viz import reference_geojson

    if key not in REFERENCE_LAYERS:
        raise ValueError(f"unknown reference layer {key!r}; choose from {REFERENCE_LAYERS}")
    gdf = gpd.read_file(registry.get(key))
    if key == "runway_points":  # 2,409 points across the Amazon: keep those around Bolívar
        gdf = gdf.cx[-68.0:-59.5, 3.5:9.0]
    target = VENDOR_DIR / "layers" / f"{key}.geojson"
    atomic.write_text(target, reference_geojson(gdf))
    os.chmod(target, 0o644)
    return f"{STATIC_URL}/layers/{key}.geojson"


def _run_version(run_id: str) -> float:
    folder = models_dir() / run_id
    return _mtime(folder / "model.keras") + _mtime(folder / "metrics.json") + _mtime(folder / "predictions.csv")


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _load_model(run_id: str, version: float):
    from asgm import runs

    return runs.load_model(run_id)


def load_model(run_id: str):
    """The run's Keras model, loaded once (at most 3 kept); reloaded if the model file changes."""
    return _load_model(run_id, _run_version(run_id))


class CompiledModel:
    """A Keras model's forward pass compiled once with ``tf.function`` for single patches.

    ``asgm.inference.predict`` calls ``model(x, training=False)``: eagerly that costs ~35 ms per patch on
    2 CPU cores, compiled ~4 ms, same numbers. It quacks like the model for ``predict`` (``input_shape``,
    ``__call__``); Grad-CAM still gets the real model."""

    def __init__(self, model: Any):
        import tensorflow as tf

        self.model = model
        self.input_shape = model.input_shape

        def forward(x):
            return model(x, training=False)

        spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
        self._forward = tf.function(forward, input_signature=[spec], autograph=False)
        self._tf = tf

    def __call__(self, x: Any, training: bool = False) -> Any:
        return self._forward(self._tf.convert_to_tensor(x, self._tf.float32))


@st.cache_resource(max_entries=3, show_spinner=False)
def _compiled_model(run_id: str, version: float) -> CompiledModel:
    return CompiledModel(_load_model(run_id, version))


def compiled_model(run_id: str) -> CompiledModel:
    """The run's model with a compiled single-patch forward pass (cached like ``load_model``)."""
    return _compiled_model(run_id, _run_version(run_id))


@st.cache_data(max_entries=8, show_spinner=False)
def _predictions(run_id: str, version: float) -> pd.DataFrame:
    from asgm import runs

    return runs.predictions(run_id)


def predictions(run_id: str) -> pd.DataFrame:
    return _predictions(run_id, _run_version(run_id))


@st.cache_data(max_entries=8, show_spinner=False)
def _store_probabilities(run_id: str, store_name: str, run_v: float, store_v: float) -> pd.DataFrame:
    from asgm.store_inference import store_probabilities as batched

    return batched(run_id, open_store(store_name), model=load_model(run_id))


def store_probabilities(run_id: str, store_name: str) -> pd.DataFrame:
    """``asgm.store_inference.store_probabilities``, computed once per version of the run and the store."""
    return _store_probabilities(run_id, store_name, _run_version(run_id), store_version(store_name))


def get_run(run_id: str):
    from asgm import runs

    return runs.get_run(run_id)


def selected_run(run_id: str | None):
    """The selected run's RunInfo, or None (with the reason shown) when there is none or it cannot be read."""
    if not run_id:
        return None
    try:
        return get_run(run_id)
    except Exception as exc:
        show_error(exc, "Pick another run in the sidebar.")
        return None


# -- classification ----------------------------------------------------------------------------------
def model_input(run_id: str, store_name: str, sid: str) -> tuple[Any, Any, np.ndarray]:
    """(model, config, x) for one patch; the patch and model come from the caches."""
    from asgm import inference

    info = get_run(run_id)
    model = load_model(run_id)
    patch = read_patch(store_name, sid)
    osm = read_osm(store_name, sid) if info.config.osm_layers else None
    x = inference.prepare_input(patch, osm, info.config)
    return model, info.config, x


def classify(run_id: str, store_name: str, sid: str, zero_layers: Sequence[str] = ()) -> dict[str, Any]:
    """Probability, threshold, decision and true label of one patch under the selected run.

    Same result as ``asgm.inference.classify`` but with the model and patch taken from the app caches,
    so a click costs one forward pass."""
    from asgm import inference
    from asgm.evaluate import decide

    info = get_run(run_id)
    if not info.metrics or "threshold" not in info.metrics:
        raise inference.InferenceError(f"run {run_id!r} is {info.status} and has no threshold; pick a completed run")
    _, config, x = model_input(run_id, store_name, sid)
    prob = float(inference.predict(compiled_model(run_id), x, zero_layers=tuple(zero_layers), config=config))
    threshold = float(info.metrics["threshold"])
    patch = read_patch(store_name, sid)
    return {"prob": prob, "threshold": threshold, "decision": int(decide(np.array([prob]), threshold)[0]),
            "label": int(patch.label), "sample_id": sid}


def store_mismatch(run_config: ExperimentConfig, store_name: str) -> str | None:
    """Why a run cannot classify the patches of a store (missing bands or OSM masks), else None."""
    try:
        store = open_store(store_name)
    except PatchStoreError as exc:
        return str(exc)
    missing = [b for b in run_config.bands if b not in store.meta.bands]
    if missing:
        return (f"the run uses bands {list(run_config.bands)} but store {store_name!r} has {list(store.meta.bands)}; "
                f"pick a run trained on this store's bands")
    if run_config.osm_layers and store.osm_info() is None:
        return (f"the run uses OSM layers {list(run_config.osm_layers)} but store {store_name!r} has no OSM masks; "
                f"run `asgm osm fetch` then `asgm osm rasterize --store {store_name}`")
    return None


def product_level_note(run_config: ExperimentConfig, store_name: str) -> str | None:
    """A caution when the run was trained on another Sentinel-2 product level (L1C vs L2A) than this store holds."""
    from asgm.sources.common import product_level_warning

    try:
        trained, here = open_store(run_config.store), open_store(store_name)
    except PatchStoreError:
        return None
    return product_level_warning(trained.meta.product_level, here.meta.product_level)


def run_can_classify(run_id: str, run_config: ExperimentConfig, store_name: str) -> bool:
    """Show why a run cannot classify a store's patches (or a product-level caution); True when it can."""
    mismatch = store_mismatch(run_config, store_name)
    if mismatch:
        st.warning(f"Run {run_id} cannot classify this store: {mismatch}.")
        return False
    if note := product_level_note(run_config, store_name):
        st.warning(note)
    return True


# -- map data ----------------------------------------------------------------------------------------
def combine_points(study: pd.DataFrame | None, index: pd.DataFrame | None, pred: pd.DataFrame | None) -> pd.DataFrame:
    """All points to draw: the study's labelled points and the store's patches (union by sample_id),
    with ``has_patch`` (the store holds a patch) and, when a run is given, its split/prob/pred/outcome."""
    cols = ["sample_id", "label", "set", "lon", "lat"]
    frames = []
    if index is not None and len(index):
        frames.append(index[cols].assign(has_patch=True))
    if study is not None and len(study):
        frames.append(study[cols].assign(has_patch=False))
    if not frames:
        return pd.DataFrame(columns=[*cols, "has_patch", "split", "prob", "pred", "outcome"])
    df = pd.concat(frames, ignore_index=True).drop_duplicates("sample_id", keep="first")
    df["label"] = df["label"].astype(int)
    if pred is not None and len(pred):
        p = pred[["sample_id", "split", "prob", "pred"]].drop_duplicates("sample_id")
        df = df.merge(p, on="sample_id", how="left")
        ok = df["pred"].notna()
        pr = df.loc[ok, "pred"].astype(int)
        lab = df.loc[ok, "label"]
        df["outcome"] = ""
        df.loc[ok, "outcome"] = np.select([(pr == 1) & (lab == 1), (pr == 0) & (lab == 0), (pr == 1) & (lab == 0)],
                                          ["TP", "TN", "FP"], "FN")
    else:
        df = df.assign(split=None, prob=np.nan, pred=np.nan, outcome="")
    return df.reset_index(drop=True)


@st.cache_data(max_entries=8, show_spinner=False)
def _map_points(store_name: str | None, run_id: str | None, store_v: float, run_v: float) -> pd.DataFrame:
    try:
        study = study_points()
    except Exception:  # shown as a warning by the page; the store's points are still drawn
        study = None
    try:
        index = store_index(store_name) if store_name else None
    except Exception:
        index = None
    try:
        pred = predictions(run_id) if run_id else None
    except Exception:
        pred = None
    return combine_points(study, index, pred)


def map_points(store_name: str | None, run_id: str | None) -> pd.DataFrame:
    """``combine_points`` of the study points, the store's patches and the run's predictions, cached per
    version of the store and the run."""
    return _map_points(store_name, run_id, store_version(store_name) if store_name else 0.0,
                       _run_version(run_id) if run_id else 0.0)


def filter_points(df: pd.DataFrame, sets: Sequence[str] | None = None, labels: Sequence[int] | None = None,
                  predicted: Sequence[int] | None = None, errors_only: bool = False,
                  splits: Sequence[str] | None = None) -> pd.DataFrame:
    """The map filters: set, true label, split and predicted class of the selected run (points outside its
    validation/test predictions have split 'other'), and errors only (FP/FN)."""
    out = df
    if splits is not None:
        out = out[out["split"].fillna("other").isin(list(splits))]
    if sets is not None:
        out = out[out["set"].isin(list(sets))]
    if labels is not None:
        out = out[out["label"].isin(list(labels))]
    if predicted is not None:
        out = out[out["pred"].isin(list(predicted))]
    if errors_only:
        out = out[out["outcome"].isin(["FP", "FN"])]
    return out


def no_patch_message(sid: str, store_name: str, point_set: str | None = None) -> str:
    """What to tell a user who clicked a labelled point without a patch in the store: how to fetch one with
    the sources this machine has, or that none is available."""
    from asgm.points import STUDY_SETS

    if point_set not in STUDY_SETS:
        return (f"No patch for **{sid}** in store `{store_name}`, and none is available: this point is not one of "
                f"the study's point sets that `asgm patches fetch` can fetch.")
    how = [f"`asgm patches fetch --source stac --points {point_set}` (Earth Search, Level-2A; needs the internet, "
           f"no account)"]
    if imagery_source() == "gee":
        how.insert(0, f"`asgm patches fetch --source gee --points {point_set}` (Earth Engine, the study's Level-1C; "
                      f"credentials are configured)")
    else:
        how.append("`--source gee` once Earth Engine credentials are set up (docs/sources.md)")
    return (f"No patch for **{sid}** in store `{store_name}`. Fetch patches for the study's *{point_set}* points with "
            + " or ".join(how) + ", then pick the new store in the sidebar.")


def nearest_point(points: pd.DataFrame, lon: float, lat: float) -> tuple[pd.Series | None, float]:
    """The point nearest to (lon, lat) and its distance in metres (None, inf when there are no points)."""
    if points.empty:
        return None, float("inf")
    from asgm.points import haversine_m

    d = haversine_m(points["lon"].to_numpy(), points["lat"].to_numpy(), np.float64(lon), np.float64(lat))
    i = int(np.argmin(d))
    return points.iloc[i], float(d[i])


def imagery_source() -> str | None:
    """Name of a configured Sentinel-2 source ('gee' when Earth Engine credentials exist), else None.
    Only checks that a credentials file exists; never reads or shows it."""
    ee_creds = Path.home() / ".config" / "earthengine" / "credentials"
    if ee_creds.exists() or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return "gee"
    if os.environ.get("ASGM_STAC_URL"):
        return "stac"
    return None


# -- first start: demo pack + default model -----------------------------------------------------------
DEFAULT_EPOCHS = 8


def default_config() -> ExperimentConfig:
    """The small first-start model: demo pack, 48 px, RGB, curated negatives, a few epochs."""
    return ExperimentConfig(name="default (demo, 48 px, RGB)", store="demo", epochs=DEFAULT_EPOCHS)


def _prepare_file() -> Path:
    return data_dir() / "app" / "prepare.json"


def prepare_state() -> dict[str, Any]:
    """State of the background "prepare the demo" job: {state: idle|running|done|failed, message, pid, run_id}."""
    try:
        s = json.loads(_prepare_file().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "idle"}
    from asgm.runs import pid_alive

    if s.get("state") == "running" and not pid_alive(s.get("pid")):
        s = {**s, "state": "failed", "message": (s.get("message") or "") +
             " — the preparation process stopped unexpectedly. Click 'Prepare the demo' to try again."}
    return s


def _write_prepare(**state: Any) -> None:
    atomic.write_json(_prepare_file(), {"updated": time.time(), **state})


def start_prepare() -> dict[str, Any]:
    """Start the background job (no-op while one runs). Never blocks the Streamlit script thread."""
    s = prepare_state()
    if s.get("state") == "running":
        return s
    log = data_dir() / "app" / "prepare.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "asgm.app_support", "prepare"], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(PROJECT_ROOT))
    _write_prepare(state="running", pid=proc.pid, message="starting")
    return prepare_state()


def needs_prepare() -> list[str]:
    """What is missing for click-to-classify: the demo store and/or any trained or training run."""
    missing = []
    if "demo" not in list_stores():
        missing.append("demo patch store")
    runs = list_runs_safe()
    if not any(r.status in ("completed", "running", "queued") for r in runs):
        missing.append("a trained model")
    return missing


def auto_prepare() -> None:
    """On first start (nothing trained), prepare in the background once per data folder; turned off with
    ``ASGM_APP_AUTOPREPARE=0`` (tests, or a deployment that ships its own runs)."""
    if os.environ.get("ASGM_APP_AUTOPREPARE", "1") == "0" or st.session_state.get("_auto_prepare_checked"):
        return
    st.session_state["_auto_prepare_checked"] = True
    if prepare_state().get("state") in ("running", "failed", "done"):
        return  # started before (maybe by another session); a failure waits for the user's click
    if needs_prepare():
        start_prepare()


def _prepare_main() -> int:
    """Body of the background job: build the demo store if missing, then launch the default run."""
    pid = os.getpid()
    try:
        if "demo" not in list_stores():
            _write_prepare(state="running", pid=pid, message="building the demo patch store (real Sentinel-2 chips)")
            from asgm.sources import demo

            demo.build(progress=False)
        from asgm import runs

        existing = [r for r in runs.list_runs() if r.status in ("completed", "running", "queued")]
        if existing:
            _write_prepare(state="done", pid=pid, message="a model exists already", run_id=existing[0].run_id)
            return 0
        _write_prepare(state="running", pid=pid, message="launching the default model's training")
        run_id = runs.launch(default_config())
        _write_prepare(state="done", pid=pid, message="default model training launched", run_id=run_id)
        return 0
    except Exception as exc:  # reported to the page through the state file
        _write_prepare(state="failed", pid=pid, message=f"{type(exc).__name__}: {exc}")
        return 1


def published_rows() -> list[dict[str, Any]]:
    """The study's published Table 1 (``asgm.experiments``) as a list of row dicts, [] when unavailable."""
    try:
        from asgm import experiments
    except ImportError:
        return []
    for name in ("TABLE1_PUBLISHED",):
        value = getattr(experiments, name, None)
        if value is None:
            continue
        if isinstance(value, pd.DataFrame):
            return value.to_dict("records")
        if isinstance(value, dict):
            return [{"exp": k, **(v if isinstance(v, dict) else vars(v))} for k, v in value.items()]
        return [r if isinstance(r, dict) else vars(r) for r in value]
    return []


def ablation_results(run_ids: Sequence[str]) -> pd.DataFrame:
    """OSM ablation results written by ``asgm.experiments.ablation`` (``ablation.json`` in a run folder), one
    row per (run, removed layer, mode) with the change of F1/precision/recall vs the full model."""
    rows = []
    for rid in run_ids:
        path = models_dir() / rid / "ablation.json"
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for entry in data.get("layers", []):
                for mode in ("retrained", "zeroed"):
                    d = entry.get(f"{mode}_delta")
                    if d:
                        rows.append({"full_run": rid, "removed": entry["layer"], "mode": mode,
                                     **{f"delta_{k}": d.get(k) for k in ("f1", "precision", "recall")}})
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as exc:
            st.warning(f"{path} is unreadable ({exc}); rerun `asgm experiments ablation {rid}`.")
    return pd.DataFrame(rows, columns=["full_run", "removed", "mode", "delta_f1", "delta_precision", "delta_recall"])


def credits_markdown() -> str:
    """Credits and licences, for the Home page footer."""
    return "\n".join(f"- {v}" for v in CREDITS.values()) + (
        "\n- Earth Genome data (chips, mining polygons, runway points, holdout): CC BY 4.0."
        "\n- Contains modified Copernicus Sentinel data 2019."
        "\n- © OpenStreetMap contributors, ODbL 1.0."
        "\n- Study (Dissing & Kalo, ASGM-Detector): MIT licence."
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        sys.exit(_prepare_main())
    print("usage: python -m asgm.app_support prepare", file=sys.stderr)
    sys.exit(2)
