"""The run store ``models/<run_id>/`` (root ``asgm.config.models_dir()``): run ids, run folders, list and
inspect runs, the default model (launching and cancelling a training run: ``asgm.model.run_jobs``).

Run folder layout (every file written atomically; ``asgm.training.train`` and ``asgm.training.evaluate`` write it)::

    config.json       the ExperimentConfig
    status.json       status (queued|running|completed|failed|cancelled), pid, times, error
    progress.json     after every epoch: epoch, losses, validation metrics, best epoch, ETA
    history.json      per-epoch metrics
    split.csv         sample_id, label, lon, lat, cluster, split (the spatial split actually used)
    predictions.csv   validation and test predictions: sample_id, label, prob, pred, split, cluster, lon, lat
    metrics.json      threshold, test metrics with CIs, best epoch, counts
    model.keras       the weights of the best epoch (by validation PR-AUC)
    cancel            present when a cancel was requested
    error.txt         traceback of a crash

No TensorFlow at import (the app's map pages import this module); only ``load_model`` loads Keras.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from asgm import atomic
from asgm.config import ExperimentConfig, invalid_fields, models_dir
from asgm.errors import AsgmError, one_line
from asgm.jobs.supervisor import pid_alive
from asgm.model.store_fit import with_store_encoding

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class RunError(AsgmError):
    """A run-store problem a user can act on; the message says what to do."""


class RunNotFound(RunError):
    """No run folder with that id."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(config: ExperimentConfig) -> str:
    """A fresh, sortable run id: UTC time, a slug of the name (or store), random suffix."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.name or config.store).strip("-").lower()[:32] or "run"
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(3)}"


@dataclass
class RunFolder:
    """Paths and atomic writers of one run folder."""

    run_id: str
    root: Path

    @classmethod
    def of(cls, run_id: str, root: Path | None = None) -> RunFolder:
        if not _RUN_ID_RE.match(run_id or ""):
            raise RunNotFound(f"invalid run id {run_id!r}; list runs with `asgm runs list`")
        return cls(run_id, Path(root or models_dir()) / run_id)

    def file(self, name: str) -> Path:
        return self.root / name

    @property
    def model_path(self) -> Path:
        return self.root / "model.keras"

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text(encoding="utf-8"))

    def write_json(self, name: str, obj: Any) -> None:
        atomic.write_json(self.file(name), obj)

    def status(self) -> dict[str, Any]:
        try:
            return self.read_json("status.json")
        except FileNotFoundError:
            return {}

    def set_status(self, status: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json and set the status."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; one of {STATUSES}")
        current = self.status() if self.file("status.json").exists() else {}
        current.update(fields, status=status, run_id=self.run_id, updated=now())
        self.write_json("status.json", current)
        return current

    def cancel_requested(self) -> bool:
        return self.file("cancel").exists()


def create_run(config: ExperimentConfig, run_id: str | None = None, status: str = "queued") -> RunFolder:
    """Make the run folder with its config and an initial status."""
    folder = RunFolder.of(run_id or new_run_id(config))
    fresh = not folder.root.exists()
    folder.root.mkdir(parents=True, exist_ok=True)
    try:
        atomic.write_text(folder.file("config.json"), config.to_json() + "\n")
        if not folder.file("status.json").exists():
            folder.set_status(status, created=now(), pid=None, error=None)
    except BaseException:
        if fresh:  # e.g. a full disk: leave no half-made run behind to be listed as corrupt
            shutil.rmtree(folder.root, ignore_errors=True)
        raise
    return folder


def refuse_reuse(run_id: str, config: ExperimentConfig) -> None:
    """``RunError`` when ``run_id`` names a folder that already holds a run, unless it is the queued folder
    ``launch`` made for this very config (the background child trains into it). Nothing is written."""
    folder = RunFolder.of(run_id)
    if not folder.root.exists():
        return
    state = folder.status().get("status") if folder.file("status.json").is_file() else None
    try:
        queued = ExperimentConfig.model_validate_json(folder.file("config.json").read_text(encoding="utf-8"))
        same = with_store_encoding(queued) == with_store_encoding(config)
    except (OSError, ValueError):
        same = False
    holds = any(folder.file(n).exists() for n in ("model.keras", "metrics.json", "status.json", "config.json"))
    if holds and not (state == "queued" and same):
        raise RunError(
            f"run folder {folder.root} already holds run {run_id!r} ({state or 'unknown status'}); "
            "--run-id never reuses a run: leave it out for a fresh id or pick a new one"
        )


def read_run_config(folder: RunFolder) -> ExperimentConfig:
    """The run's ``config.json`` (its input encoding filled in from its training store when it was trained
    before encodings were recorded); a missing or invalid one is a ``RunError`` saying what to do."""
    path = folder.file("config.json")
    try:
        return with_store_encoding(ExperimentConfig.model_validate_json(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunError(f"run {folder.run_id!r} has no config.json ({path}); delete the run folder") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSON and pydantic errors are ValueErrors
        why = invalid_fields(exc) if isinstance(exc, ValidationError) else one_line(exc)
        raise RunError(
            f"run {folder.run_id!r} has an invalid config.json ({path}: {why}); restore it or delete the run folder"
        ) from None


def load_keras_model(path: Path) -> Any:
    """Load a ``.keras`` file with Keras safe mode; a missing or corrupt file is a ``RunError``."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"no model file at {path}: the run did not finish; retrain it with `asgm train`")
    import keras

    from asgm.model.ensemble import register

    register()  # an ensemble run's model holds the MeanLogit head
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises several types for a damaged archive
        raise RunError(
            f"model file {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
            "delete the run folder and retrain it with `asgm train`"
        ) from exc


__all__ = [
    "RunInfo",
    "RunError",
    "RunNotFound",
    "list_runs",
    "get_run",
    "default_run_id",
    "default_choice",
    "load_model",
    "predictions",
]


@dataclass
class RunInfo:
    """What the app and CLI show about one run."""

    run_id: str
    path: Path
    config: ExperimentConfig | None
    status: str  # queued | running | completed | failed | cancelled | corrupt
    progress: dict[str, Any]
    metrics: dict[str, Any] | None
    error: str | None
    created: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``--json``)."""
        return {
            "run_id": self.run_id,
            "path": str(self.path),
            "status": self.status,
            "created": self.created,
            "error": self.error,
            "config": self.config.model_dump() if self.config else None,
            "progress": self.progress,
            "metrics": self.metrics,
        }


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def model_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a saved Keras model (missing, empty, not a zip archive), or None.
    Cheap enough for every listing: a stat and the zip directory, no Keras."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "model.keras is missing"
    except OSError as exc:
        return f"model.keras is unreadable ({exc.strerror})"
    if size == 0:
        return "model.keras is empty (0 bytes)"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return "model.keras is not a Keras archive (damaged or cut short)"
    if not {"config.json", "model.weights.h5"} <= names:
        return "model.keras lacks the model config or weights"
    return None


#: metrics.json values every list and page formats as numbers.
NUMERIC_METRICS = ("f1", "precision", "recall", "threshold", "pr_auc", "temperature", "ece")


def metrics_problem(metrics: Any) -> str | None:
    """Why a parsed metrics.json cannot be shown (not an object, a non-numeric metric), or None."""
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        return "metrics.json is not a JSON object"
    bad = [
        k
        for k in NUMERIC_METRICS
        if metrics.get(k) is not None and (isinstance(metrics[k], bool) or not isinstance(metrics[k], int | float))
    ]
    return f"metrics.json has non-numeric {', '.join(f'{k}={metrics[k]!r}' for k in bad)}" if bad else None


def _info(folder: RunFolder) -> RunInfo:
    """Read one run folder; problems become status 'corrupt' with an error instead of raising."""
    errors: list[str] = []
    config = None
    try:
        config = ExperimentConfig.model_validate_json(folder.file("config.json").read_text(encoding="utf-8"))
        config = with_store_encoding(config)  # runs trained before encodings were recorded
    except FileNotFoundError:
        errors.append("config.json is missing")
    except Exception as exc:  # pydantic or JSON errors: report, never raise while listing
        errors.append(f"config.json is unreadable ({type(exc).__name__})")
    status: dict[str, Any] = {}
    try:
        status = _read_json(folder.file("status.json"))
    except FileNotFoundError:
        errors.append("status.json is missing")
    except (json.JSONDecodeError, UnicodeDecodeError):
        errors.append("status.json is unreadable")
    progress: dict[str, Any] = {}
    if folder.file("progress.json").exists():
        try:
            progress = _read_json(folder.file("progress.json"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            errors.append("progress.json is unreadable")
    metrics = None
    if folder.file("metrics.json").exists():
        try:
            metrics = _read_json(folder.file("metrics.json"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            errors.append("metrics.json is unreadable")
        bad = metrics_problem(metrics)
        if bad:
            errors.append(bad)
            metrics = None
    state = status.get("status", "corrupt")
    error = status.get("error")
    if state in ("running", "queued") and status.get("pid") and not pid_alive(status.get("pid")):
        # The process is gone but never wrote an end state: it was killed (OOM, kill -9, reboot).
        state = "failed"
        # Only detached runs write log.txt; a foreground run's output went to its terminal.
        log = folder.file("log.txt")
        see = f"see {log} and " if log.is_file() else ""
        error = (
            f"the training process (pid {status.get('pid')}) died without finishing (killed or out of "
            f"memory); {see}start the run again"
        )
    if state == "completed" and metrics is None:
        errors.append("metrics.json is missing")
    if state == "completed":
        problem = model_file_problem(folder.model_path)
        if problem:
            errors.append(problem)
    if errors:
        state = "corrupt"
        error = "; ".join(errors) + f" in {folder.root}; delete the folder or retrain"
    created = status.get("created") or ""
    if not created:
        try:
            created = datetime.fromtimestamp(folder.root.stat().st_mtime, UTC).isoformat()
        except OSError:
            created = ""
    return RunInfo(folder.run_id, folder.root, config, state, progress, metrics, error, created)


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder, newest first. Never raises on a damaged folder: it is listed as 'corrupt'."""
    root = Path(root or models_dir())
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if not p.is_dir() or p.name.startswith((".", "_")) or p.name == "experiments":
            continue
        try:
            out.append(_info(RunFolder(p.name, p)))
        except Exception as exc:  # last resort: listing must never fail because of one folder
            out.append(RunInfo(p.name, p, None, "corrupt", {}, None, f"unreadable run folder: {exc}", ""))
    return sorted(out, key=lambda r: (r.created, r.run_id), reverse=True)


def get_run(run_id: str) -> RunInfo:
    """One run by id; an unknown id raises ``RunNotFound`` with the way out."""
    folder = RunFolder.of(run_id)
    if not folder.root.is_dir():
        known = [r.run_id for r in list_runs()[:5]]
        hint = f" Recent runs: {', '.join(known)}." if known else " There are no runs yet; start one with `asgm train`."
        raise RunNotFound(f"no run {run_id!r} in {folder.root.parent}.{hint}")
    return _info(folder)


def unusable_reason(run_id: str) -> str | None:
    """Why ``run_id`` (e.g. from a shared link) cannot be used as a model, or None when it can."""
    try:
        info = get_run(run_id)
    except RunNotFound:
        return "no run with that id exists here"
    if info.status == "completed":
        return None
    return f"that run is {info.status}" + (f" ({info.error})" if info.error else "")


#: File in the run store naming the run the app uses by default (a run folder committed with the project).
DEFAULT_FILE = "DEFAULT"
#: File of a run trained with reviewed labels (``asgm labels train``): such a run is the default only when named.
REVIEWED_MARKER = "review_request.json"


def default_choice(root: Path | None = None) -> tuple[str | None, str]:
    """(run id, why) of the run the app classifies with by default.

    ``models/DEFAULT`` (committed, naming the shipped ``detector-default``) decides: a newer run, however
    recent, never replaces it silently. Only when that file is absent or names no completed run does the
    newest completed run stand in, and the reason says so (the sidebar shows it); a run trained with reviewed
    labels stands in only when no other run is there (it becomes the default by a user's choice)."""
    root = Path(root or models_dir())
    done = [r for r in list_runs(root) if r.status == "completed" and r.config is not None]
    reviewed = {r.run_id for r in done if (r.path / REVIEWED_MARKER).exists()}
    done = [r for r in done if r.run_id not in reviewed] + [r for r in done if r.run_id in reviewed]
    try:
        named = (root / DEFAULT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    if named and any(r.run_id == named for r in done):
        return named, f"named in {DEFAULT_FILE} of the models folder"
    if not done:
        return None, "no completed run yet"
    if named:
        return done[0].run_id, (
            f"{DEFAULT_FILE} names {named!r}, which is not a completed run here; using the newest completed run"
        )
    return done[0].run_id, f"no {DEFAULT_FILE} file in the models folder; using the newest completed run"


def default_run_id(root: Path | None = None) -> str | None:
    """The run the app classifies with by default (``default_choice``), or None when nothing is trained."""
    return default_choice(root)[0]


def load_model(run_id: str) -> Any:
    """The run's Keras model (safe mode). Missing or corrupt file: ``RunError`` saying what to do."""
    info = get_run(run_id)
    path = info.path / "model.keras"
    if not path.exists():
        why = {
            "running": "it is still training",
            "queued": "it has not started",
            "failed": f"it failed ({info.error})",
            "cancelled": "it was cancelled",
        }.get(info.status, "no model was saved")
        raise RunError(f"run {run_id!r} has no model file ({why}); pick a completed run or retrain")
    return load_keras_model(path)


def predictions(run_id: str) -> pd.DataFrame:
    """Validation and test predictions: sample_id, label, prob, pred, split, cluster, lon, lat."""
    import pandas as pd  # here, not at the top: the app's first page lists runs without pandas

    info = get_run(run_id)
    path = info.path / "predictions.csv"
    if not path.exists():
        raise RunError(f"run {run_id!r} has no predictions yet (status {info.status}); wait for it to complete")
    try:
        df = pd.read_csv(path, dtype={"sample_id": str, "split": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is corrupt ({exc}); rerun `asgm evaluate {run_id}`") from exc
    missing = {"sample_id", "label", "prob", "pred", "split", "cluster", "lon", "lat"} - set(df.columns)
    if missing:
        raise RunError(f"{path} lacks columns {sorted(missing)}; rerun `asgm evaluate {run_id}`")
    return df
