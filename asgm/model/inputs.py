"""Dataset assembly from a patch store: row selection, the study's masked-patch filter, model inputs,
and a streaming ``tf.data`` pipeline.

Model input (DEVELOPING.md): Sentinel-2 DN of ``config.bands`` in the run's input encoding
(``encode_bands``: reflectance = DN / 10000 clipped to [0, 1]; display_rgb_8bit = that reflectance clipped
at 0.3 and quantised to 256 levels, as Earth Genome's chips were made), then the OSM masks (0/1) in
``config.osm_layers`` order. ``encode_bands`` is the one rule: ``prepare_input`` (predict, the app, scans)
and ``PatchSource`` (training, scoring, store prediction) both call it. Nothing is fitted to the data, so
normalisation cannot leak.

Memory: patches are kept (if at all) as their compact on-disk dtypes (uint16 DN, uint8 masks) and are
only turned into float32 one batch at a time inside the pipeline, so 1,259 patches of 256x256x17 never
sit in memory as float32, let alone twice (the study's in-memory arrays peaked at 10 GB; spec §4). The
cache is bounded (``DEFAULT_CACHE_LIMIT_MB``): rows beyond it stream from the GeoTIFFs.

Speed: one numpy call per batch gathers the rows, converts them to float32 and applies the per-sample
D4 augmentation in the same copy; loading overlaps training (prefetch). ``benchmarks/train_speed.py``
measures it against the study's recipe.
TensorFlow is imported lazily: row selection and the filter are usable without it.

Bad patches: ``assemble`` checks every selected file before anything trains (``verify_rows``) and takes
the masked share from the pixels, not the index. A patch that still fails inside the ``tf.data``
pipeline is recorded by its ``PatchSource``; ``run_pipeline`` turns that into one ``DatasetError`` line
naming the sample, after letting go of TensorFlow's error (kept alive, it stopped the process exiting).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from asgm.config import REFLECTANCE, ExperimentConfig, InputEncoding
from asgm.data.store import DN_SCALE, PatchStore
from asgm.errors import AsgmError, one_line

if TYPE_CHECKING:  # pragma: no cover
    pass


#: RAM for compact patch arrays (per dataset); rows beyond it are streamed from disk. 128 MB holds a whole
#: 48-px store of 1,259 patches (84 MB) but only ~65 patches of 256 px: there TF (~0.65 GB) + the batch-16
#: training step (~1.1 GB) + pipeline buffers leave little room under the 2.5 GB target (issue 3 item 9;
#: measured 2.39 GiB peak with 384 MB), and streaming costs little next to a 256-px training step.
DEFAULT_CACHE_LIMIT_MB = 128


class DatasetError(AsgmError):
    """The patch store cannot feed this experiment config; the message says what to change."""


T = TypeVar("T")


@dataclass
class Assembled:
    """The rows of a store an experiment uses, after the masked-patch filter."""

    store: PatchStore
    config: ExperimentConfig
    rows: pd.DataFrame  # sample_id, label, set, lon, lat, masked_fraction (sorted by sample_id)
    dropped: dict[str, int] = field(default_factory=dict)  # masked filter: positives / negatives dropped

    @property
    def counts(self) -> dict[str, Any]:
        """Counts recorded in the run store."""
        return {
            "selected": int(len(self.rows) + sum(self.dropped.values())),
            "kept": int(len(self.rows)),
            "positives": int((self.rows["label"] == 1).sum()),
            "negatives": int((self.rows["label"] == 0).sum()),
            "dropped_masked": dict(self.dropped),
        }


def check_store(store: PatchStore, config: ExperimentConfig) -> None:
    """Raise ``DatasetError`` naming every way the store lacks the config's bands, size or OSM layers
    (``asgm.model.store_fit.store_problems``)."""
    from asgm.model.store_fit import store_problems

    problems = store_problems(store, config)
    if problems:
        raise DatasetError("; ".join(problems) + ".")


def select_rows(store: PatchStore, config: ExperimentConfig) -> pd.DataFrame:
    """Positives plus the negatives the config names ('curated': every label-0 set but 'random';
    'random': the 'random' set), sorted by sample_id so nothing depends on file order (bug B1)."""
    df = store.index()
    if df.empty:
        raise DatasetError(f"store {store.name!r} is empty; build or fetch its patches first")
    pos = df[df["label"] == 1]
    neg = df[df["label"] == 0]
    neg = neg[neg["set"] == "random"] if config.negatives == "random" else neg[neg["set"] != "random"]
    if pos.empty:
        raise DatasetError(f"store {store.name!r} has no positives (label 1)")
    if neg.empty:
        sets = sorted(df.loc[df["label"] == 0, "set"].unique())
        raise DatasetError(
            f"store {store.name!r} has no {config.negatives} negatives (negative sets present: {sets or 'none'}); "
            f"choose negatives={'curated' if config.negatives == 'random' else 'random'}"
        )
    rows = pd.concat([pos, neg]).sort_values("sample_id").reset_index(drop=True)
    return rows[["sample_id", "label", "set", "lon", "lat", "masked_fraction"]].copy()


def masked_filter(
    rows: pd.DataFrame, limit_pos: float = 0.10, limit_neg: float = 0.60
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The study's ``filter_black``: drop positives with a masked share >= ``limit_pos`` and negatives
    with >= ``limit_neg``. Returns the kept rows and how many of each class were dropped."""
    frac = rows["masked_fraction"].astype(float)
    limit = np.where(rows["label"].to_numpy() == 1, limit_pos, limit_neg)
    drop = frac.to_numpy() >= limit
    dropped = {
        "positives": int((drop & (rows["label"].to_numpy() == 1)).sum()),
        "negatives": int((drop & (rows["label"].to_numpy() == 0)).sum()),
    }
    return rows[~drop].reset_index(drop=True), dropped


def verify_rows(store: PatchStore, sample_ids: Sequence[str]) -> dict[str, float]:
    """Check the files of ``sample_ids`` (present, readable, right size, dtype and bands) and return
    their masked shares computed from the pixels; any unusable patch is a ``DatasetError`` naming it."""
    from asgm.data.store_check import check_store

    report = check_store(store, sample_ids, pixels=True)
    if not report.ok:
        raise DatasetError(
            f"{report.summary()}. Re-fetch or rebuild them, or list every problem with "
            f"`asgm patches check --store {store.name}`"
        )
    return report.masked_fraction


def assemble(store: PatchStore, config: ExperimentConfig) -> Assembled:
    """Check the store against the config, select rows, verify their files and apply the masked-patch
    filter to the masked shares of the pixels (the index may be stale)."""
    check_store(store, config)
    rows = select_rows(store, config)
    rows["masked_fraction"] = rows["sample_id"].map(verify_rows(store, rows["sample_id"]))
    rows, dropped = masked_filter(rows, config.masked_limit_pos, config.masked_limit_neg)
    if (rows["label"] == 1).sum() == 0:
        raise DatasetError(f"every positive of store {store.name!r} was dropped by the masked-patch filter")
    return Assembled(store=store, config=config, rows=rows, dropped=dropped)


def validate_pixels(sample_id: str, data: np.ndarray) -> None:
    """The pixel check of ``asgm patches check`` and training, for every prediction path: a patch's pixels
    must be the store's uint16 DN (a float patch, NaN or not, or an 8-bit one would be classified as
    nonsense without a word). Raises ``DatasetError`` in the words ``asgm.data.store_check.inspect_file`` uses."""
    dtype = np.asarray(data).dtype
    if dtype != np.uint16:
        raise DatasetError(
            f"patch {sample_id!r}: pixels are {dtype}, the store holds uint16 DN; re-fetch or "
            "rebuild it (`asgm patches check` lists every such file)"
        )


def validate_patch(
    sample_id: str, data: np.ndarray, bands: Sequence[str | None], size: int, want: Sequence[str]
) -> None:
    """The checks of ``asgm patches check`` on a patch already read, for every prediction path: ``size`` x
    ``size`` px, the store's bands ``want`` (count and names) and uint16 DN. Raises ``DatasetError`` in the words
    ``asgm.data.store_check.inspect_file`` uses, with what to do (the patch is bad, not the run)."""
    fix = "re-fetch or rebuild it (`asgm patches check` lists every such file)"
    shape = np.shape(data)
    if len(shape) != 3 or shape[1:] != (size, size):
        px = f"{shape[2]}x{shape[1]} px" if len(shape) == 3 else f"an array of shape {shape}"
        raise DatasetError(f"patch {sample_id!r}: {px}, the store holds {size}x{size} px; {fix}")
    if shape[0] != len(want):
        raise DatasetError(
            f"patch {sample_id!r}: {shape[0]} bands, the store holds {len(want)} ({','.join(want)}); {fix}"
        )
    validate_pixels(sample_id, data)
    if tuple(bands) != tuple(want):
        names = "no band names" if not any(bands) else f"bands {list(bands)}"
        raise DatasetError(f"patch {sample_id!r}: {names}, the store holds {list(want)}; {fix}")


def _encode(dn: np.ndarray, encoding: InputEncoding) -> np.ndarray:
    """The encoding rule on any numeric DN array (float64 arithmetic), as float32 model input."""
    if encoding.name == "display_rgb_8bit":
        dn = encoding.levels_to_dn(encoding.display_levels(dn))
    # DN -> float32 first, then / 10000 in float32: uint16 -> float32 is exact, so the LUT equals this.
    return np.clip(np.asarray(dn).astype(np.float32) / np.float32(DN_SCALE), 0.0, 1.0)


_luts: dict[InputEncoding, np.ndarray] = {}


def _lut(encoding: InputEncoding) -> np.ndarray:
    """``_encode`` of every uint16 DN (256 KB), so a batch is encoded by one gather."""
    lut = _luts.get(encoding)
    if lut is None:
        lut = _luts[encoding] = _encode(np.arange(65536, dtype=np.uint16), encoding)
    return lut


def encode_bands(dn: np.ndarray, encoding: InputEncoding | None, out: np.ndarray | None = None) -> np.ndarray:
    """Model input (float32, same shape) of band DN (reflectance x 10000) in a run's input ``encoding``
    (None: reflectance). The one rule every input goes through; idempotent, so pixels already encoded
    (the gallery chips) come out as they went in. uint16 DN (store patches, composites) are encoded by a
    lookup table built with the same rule; ``out`` receives the result when given."""
    dn = np.asarray(dn)
    encoding = encoding or REFLECTANCE
    if dn.dtype == np.uint16:
        return np.take(_lut(encoding), dn, out=out, mode="clip")  # clip: no bounds pass (uint16 fits)
    x = _encode(dn, encoding)
    if out is None:
        return x
    out[...] = x
    return out


def prepare_input(
    data: np.ndarray, bands: Sequence[str], osm: tuple[np.ndarray, Sequence[str]] | None, config: ExperimentConfig
) -> np.ndarray:
    """One model input (H, W, C) float32 from a (bands, H, W) DN array and optional OSM masks: the bands in
    the run's encoding (``encode_bands``), then the masks."""
    try:
        idx = [list(bands).index(b) for b in config.bands]
    except ValueError:
        raise DatasetError(f"patch has bands {list(bands)}, the model needs {list(config.bands)}") from None
    x = encode_bands(np.asarray(data)[idx], config.encoding)
    if config.osm_layers:
        if osm is None:
            raise DatasetError(
                f"the model needs OSM layers {list(config.osm_layers)} but this patch has no OSM masks; "
                "run `asgm osm rasterize` on the store"
            )
        masks, names = osm
        lacking = [x for x in config.osm_layers if x not in names]
        if lacking:
            raise DatasetError(f"OSM masks lack layers {lacking} (have {list(names)}); rerun `asgm osm rasterize`")
        m = np.asarray(masks)[[list(names).index(x) for x in config.osm_layers]]
        # Masks are 0/1 by construction; clip guards against 0/255 encodings.
        x = np.concatenate([x, np.clip(m, 0, 1).astype(np.float32)], axis=0)
    return np.ascontiguousarray(x.transpose(1, 2, 0))


class PatchSource:
    """Loads model inputs by row position, from a compact in-RAM cache or straight from disk.

    The cache holds the first ``capacity`` rows (as many as ``cache_limit_mb`` allows) in two
    preallocated arrays of the on-disk dtypes, already in (H, W, C) layout: uint16 DN of the bands used
    and uint8 0/1 OSM masks. Rows beyond the capacity are read from the GeoTIFFs every time, so memory
    stays bounded by the limit whatever the store size. ``cached`` is True when every row fits."""

    def __init__(
        self,
        store: PatchStore,
        config: ExperimentConfig,
        sample_ids: Sequence[str],
        cache_limit_mb: float = DEFAULT_CACHE_LIMIT_MB,
    ):
        self.store, self.config = store, config
        self.sample_ids = list(sample_ids)
        size = int(config.patch_size)
        self._nb, self._no = len(config.bands), len(config.osm_layers)
        bytes_per = size * size * (2 * self._nb + self._no)
        n = len(self.sample_ids)
        self.capacity = int(min(n, max(0.0, cache_limit_mb) * 1e6 // bytes_per)) if bytes_per else n
        self.cached = self.capacity >= n
        # np.empty only reserves address space: pages become resident as rows are filled in.
        self._dn = np.empty((self.capacity, size, size, self._nb), dtype=np.uint16)
        self._mk = np.empty((self.capacity, size, size, self._no), dtype=np.uint8) if self._no else None
        self._have = np.zeros(self.capacity, dtype=bool)
        #: The first patch that could not be loaded (see ``run_pipeline``), as a one-line error.
        self.failure: DatasetError | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.config.patch_size), int(self.config.patch_size), len(self.config.channels))

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W, bands) uint16 and (H, W, layers) uint8 0/1 views of row ``i``, from disk."""
        sid = self.sample_ids[i]
        patch = self.store.read_patch(sid)
        meta = self.store.meta
        validate_patch(sid, patch.data, patch.bands, int(meta.size), tuple(meta.bands))
        try:
            idx = [list(patch.bands).index(b) for b in self.config.bands]
        except ValueError:
            raise DatasetError(
                f"patch {sid!r} has bands {list(patch.bands)}, the model needs {list(self.config.bands)}"
            ) from None
        dn = patch.data[idx].transpose(1, 2, 0)  # uint16, only the bands used
        masks = None
        if self._no:
            osm = self.store.read_osm(sid)
            if osm is None:
                raise DatasetError(f"patch {sid!r} has no OSM masks; rerun `asgm osm rasterize` on {self.store.name!r}")
            arr, names = osm
            lacking = [x for x in self.config.osm_layers if x not in names]
            if lacking:
                raise DatasetError(f"OSM masks of {sid!r} lack layers {lacking}")
            # Masks are 0/1 by construction; clip guards against 0/255 encodings.
            masks = np.clip(arr[[list(names).index(x) for x in self.config.osm_layers]], 0, 1).astype(np.uint8)
            masks = masks.transpose(1, 2, 0)
        return dn, masks

    def _compact(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i >= self.capacity:
            return self._read(i)
        if not self._have[i]:
            dn, masks = self._read(i)
            self._dn[i] = dn
            if masks is not None and self._mk is not None:
                self._mk[i] = masks
            self._have[i] = True  # set last: a concurrent reader never sees a half-filled row
        return self._dn[i], (self._mk[i] if self._mk is not None else None)

    def load(self, i: int) -> np.ndarray:
        """Model input (H, W, C) float32 of row ``i``."""
        return self.load_batch(np.array([i]))[0]

    def load_batch(self, idx: np.ndarray, d4: np.ndarray | None = None) -> np.ndarray:
        """Stacked inputs (B, H, W, C) float32 of the given row positions.

        ``d4`` (optional, one code 0-7 per row) applies a symmetry of the square to each row while it
        is copied into the batch (bit 0: transpose, bit 1: horizontal flip, bit 2: vertical flip), so
        augmentation costs no extra pass over the data."""
        idx = np.asarray(idx).reshape(-1)
        nb = self._nb
        out = np.empty((len(idx), *self.shape), dtype=np.float32)
        codes = np.zeros(len(idx), dtype=np.int64) if d4 is None else np.asarray(d4).reshape(-1)
        for k, (i, code) in enumerate(zip(idx.tolist(), codes.tolist(), strict=True)):
            try:
                dn, masks = self._compact(int(i))
                # The run's encoding written straight into the batch.
                encode_bands(_d4(dn, code), self.config.encoding, out=out[k, :, :, :nb])
                if masks is not None:
                    out[k, :, :, nb:] = _d4(masks, code)
            except Exception as exc:  # e.g. a file replaced by a 47-px one: numpy's shape error
                sid = self.sample_ids[int(i)]
                cause = str(exc) if isinstance(exc, AsgmError) else f"patch {sid!r}: {one_line(exc)}"
                self.failure = self.failure or DatasetError(cause)
                raise DatasetError(cause) from exc
        return out

    def warm(self) -> None:
        """Fill the compact cache up front (rows beyond the capacity are not touched)."""
        for i in range(self.capacity):
            self._compact(i)


def run_pipeline(fn: Callable[[], T], *sources: Any) -> T:
    """Run ``fn`` (a Keras fit or predict fed by ``sources``' pipelines). When a patch failed inside a
    pipeline, raise that patch's one-line ``DatasetError`` instead of TensorFlow's error, and only after
    releasing the latter: its traceback holds the pipeline iterator, whose threads then blocked the
    process from ever exiting."""
    failure = None
    try:
        return fn()
    except Exception:
        failure = next((s.failure for s in sources if getattr(s, "failure", None) is not None), None)
        if failure is None:
            raise
    gc.collect()  # tear the iterator down now, while the interpreter is fully alive
    raise DatasetError(str(failure))


def _d4(a: np.ndarray, code: int) -> np.ndarray:
    """A view of an (H, W, C) array under D4 element ``code`` (bit 0 transpose, 1 h-flip, 2 v-flip)."""
    if code & 1:
        a = a.transpose(1, 0, 2)
    if code & 2:
        a = a[:, ::-1]
    if code & 4:
        a = a[::-1]
    return a
