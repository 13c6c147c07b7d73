"""Every background job's commands, built in one place: the ``asgm`` CLI argv (after the interpreter) that the
app and the run store hand to ``asgm.jobs.runner.launch``. Callers check their inputs first (store names,
dates); this module only spells the commands, so the CLI and the jobs cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def asgm_command(*args: str) -> list[str]:
    """The argv (after the interpreter) of an ``asgm`` CLI command."""
    return ["-m", "asgm", *args]


def prepare_demo() -> list[str]:
    """``asgm demo prepare``: the app's first start (demo store, default model, OSM when online)."""
    return asgm_command("demo", "prepare")


def train(run_id: str, config_file: Path) -> list[str]:
    """Train the queued run ``run_id`` from its saved config."""
    return asgm_command("train", "--run-id", run_id, "--config", str(config_file))


def train_store(store: str, osm: str, epochs: int, name: str) -> list[str]:
    """Train a new run on ``store`` with the OSM layers ``osm`` (comma-separated or 'all')."""
    return asgm_command("train", "--store", store, "--osm", osm, "--epochs", str(epochs), "--name", name)


def train_with_labels(
    parent_run: str, run_id: str, epochs: int | None, holdout_fraction: float, fetch: str | None = None
) -> list[str]:
    """``asgm labels train``: "train with my labels" from ``parent_run`` into the queued run ``run_id`` (``fetch``:
    the source that fetches the imagery of reviewed items with none here)."""
    args = [
        "labels",
        "train",
        "--from-run",
        parent_run,
        "--run-id",
        run_id,
        "--holdout-fraction",
        f"{holdout_fraction:g}",
    ]
    if epochs:
        args += ["--epochs", str(int(epochs))]
    if fetch:
        args += ["--fetch", fetch]
    return asgm_command(*args)


def fetch_patches(
    *,
    source: str,
    store: str,
    size: int,
    start: str,
    end: str,
    point_sets: Sequence[str] = (),
    points_file: Path | None = None,
    limit: int | None = None,
) -> list[str]:
    """``asgm patches fetch`` for the given points (a saved upload, or named point sets)."""
    args = [
        "patches",
        "fetch",
        "--source",
        source,
        "--store",
        store,
        "--size",
        str(size),
        "--start",
        start,
        "--end",
        end,
        "--no-progress",
    ]
    args += ["--points-file", str(points_file)] if points_file else ["--points", ",".join(point_sets)]
    if limit:
        args += ["--limit", str(limit)]
    return asgm_command(*args)


def osm_fetch(
    store: str,
    date: str,
    keys: Sequence[str] = (),
    retries: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
) -> list[str]:
    """``asgm osm fetch --store``: the OSM snapshot of ``date`` around a store's patches."""
    args = ["osm", "fetch", "--store", store, "--date", date]
    if keys:
        args += ["--keys", *keys]
    for flag, value in (("--retries", retries), ("--backoff", backoff_s), ("--timeout", timeout_s)):
        if value is not None:
            args += [flag, f"{value:g}"]
    return asgm_command(*args)


def osm_rasterize(
    store: str,
    layers: Sequence[str] = (),
    buffer_m: float | None = None,
    all_touched: bool | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
) -> list[str]:
    """``asgm osm rasterize``: the store's OSM vectors burnt onto each patch grid."""
    args = ["osm", "rasterize", "--store", store]
    if layers:
        args += ["--layers", *layers]
    if buffer_m is not None:
        args += ["--buffer", f"{buffer_m:g}"]
    if all_touched is not None:
        args.append("--all-touched" if all_touched else "--no-all-touched")
    for e in exclude:
        args += ["--exclude", e]
    for i in include:
        args += ["--include", i]
    return asgm_command(*args)


def synthetic_mosaic(
    out: Path, lon: float, lat: float, size_px: int, mines: int, year: int, seed: int = 0
) -> list[str]:
    """``asgm synthetic mosaic``: a SYNTHETIC 12-band mosaic with known mine sites."""
    return asgm_command(
        "synthetic",
        "mosaic",
        "--out",
        str(out),
        "--lon",
        f"{lon:.6f}",
        "--lat",
        f"{lat:.6f}",
        "--size-px",
        str(size_px),
        "--mines",
        str(mines),
        "--year",
        str(year),
        "--seed",
        str(seed),
        "--json",
    )


def scan(
    *,
    aoi_file: Path,
    year: int,
    run_id: str,
    source: str,
    out: Path,
    scheduler: str,
    stac_url: str | None = None,
    spatial_prior: bool = False,
) -> list[str]:
    """``asgm scan run`` of an area for one year into ``out`` (with Earth Genome's spatial prior when asked)."""
    args = [
        "scan",
        "run",
        "--aoi",
        str(aoi_file),
        "--year",
        str(year),
        "--run",
        run_id,
        "--source",
        source,
        "--out",
        str(out),
        "--scheduler",
        scheduler,
        "--json",
    ]
    if stac_url and source == "stac":
        args += ["--stac-url", stac_url]
    if spatial_prior:
        args.append("--spatial-prior")
    return asgm_command(*args)
