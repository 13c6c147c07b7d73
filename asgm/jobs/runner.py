"""The one background job runner: everything long that the app starts (patch fetch, OSM fetch and
rasterize, training, the demo preparation) runs as a detached job.

A job is a supervisor process (``python -m asgm.jobs.supervisor FOLDER``) that runs one command (normally an
``asgm`` CLI command, ``python -m asgm ...``) as its child and owns the job folder ``<data>/jobs/<job_id>/``:

    job.json       what to run: command, kind, title, duplicate key, log/progress/cancel files
    status.json    status (queued|running|completed|failed|cancelled), pids, times, one-line error
    progress.json  written by the command through ``report_progress`` (done, total, message)
    log.txt        the command's stdout and stderr (a training job logs into its run folder instead)
    cancel         present when a cancel was requested

This module launches, lists, cancels and restarts jobs; the supervisor (its loop, cancel handling, crash
detection) is ``asgm.jobs.supervisor``. No third-party imports at module level: the app's pages stay light.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asgm import atomic
from asgm.config import PROJECT_ROOT, data_dir
from asgm.errors import AsgmError
from asgm.jobs.supervisor import DEFAULT_CANCEL_GRACE_S, JOB_DIR_ENV, now, pid_alive, read_json, set_status

__all__ = [
    "JobError",
    "JobInfo",
    "STATES",
    "ACTIVE",
    "jobs_dir",
    "launch",
    "list_jobs",
    "get_job",
    "active_jobs",
    "cancel",
    "relaunch",
    "report_progress",
]

STATES = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE = ("queued", "running")
#: Finished jobs whose folders (log, status) are kept; older ones are removed when a job is launched.
KEEP_FINISHED = 50

#: Popen handles of supervisors started by this process: polling them reaps finished children, whose
#: pids would otherwise linger as zombies.
_CHILDREN: dict[str, subprocess.Popen] = {}


class JobError(AsgmError):
    """A job cannot be started, found or cancelled; the message says why and what to do."""


def jobs_dir() -> Path:
    """Root of the job folders (``<ASGM_DATA_DIR>/jobs``)."""
    return data_dir() / "jobs"


@dataclass
class JobInfo:
    """What the app and ``asgm jobs list`` show about one job."""

    job_id: str
    kind: str
    title: str
    status: str
    error: str | None
    created: str
    started: str | None
    finished: str | None
    progress: dict[str, Any]
    log: Path
    folder: Path
    command: list[str]
    key: str
    extra: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1], or None when the command has not said how much there is."""
        done, total = self.progress.get("done"), self.progress.get("total")
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            return max(0.0, min(1.0, float(done) / float(total)))
        return None

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the command's own estimate, else extrapolated from the elapsed time."""
        if isinstance(self.progress.get("eta_s"), (int, float)):
            return float(self.progress["eta_s"])
        frac = self.fraction
        if not self.active or not frac or not self.started:
            return None
        try:
            elapsed = time.time() - datetime.fromisoformat(self.started).timestamp()
        except ValueError:
            return None
        return max(0.0, elapsed * (1 - frac) / frac)

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the log ('' when there is none)."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - n_chars))
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``--json``)."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": self.progress,
            "fraction": self.fraction,
            "eta_s": self.eta_s,
            "log": str(self.log),
            "folder": str(self.folder),
            "command": self.command,
            "key": self.key,
            "extra": self.extra,
            "pid": self.pid,
        }


def _progress_of(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The command's progress as {done, total, message, eta_s, ...}; a training run's progress.json
    (epoch/epochs) is read as done/total."""
    path = Path(spec.get("progress_file") or folder / "progress.json")
    p = read_json(path)
    if "done" not in p and "epoch" in p:
        p = {**p, "done": p.get("epoch"), "total": p.get("epochs"), "message": p.get("message") or "epochs"}
    return p


def _read_pid(folder: Path) -> int | None:
    try:
        return int((folder / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _info(folder: Path) -> JobInfo:
    """Read one job folder; a job whose supervisor died without an end state is 'failed' (crashed)."""
    spec = read_json(folder / "job.json")
    status = read_json(folder / "status.json")
    state: str = status["status"] if status.get("status") in STATES else "failed"
    error = status.get("error")
    if not spec:
        error = error or f"job.json is missing or unreadable in {folder}; delete the folder"
    child = _CHILDREN.get(folder.name)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(folder.name, None)  # reaped
    pid = status.get("pid") or _read_pid(folder)
    if state in ACTIVE and pid and not pid_alive(pid):
        state = "failed"
        error = (
            f"crashed: the job process (pid {pid}) died without finishing (killed or out of "
            f"memory); see {spec.get('log') or folder / 'log.txt'} and start it again"
        )
    return JobInfo(
        job_id=folder.name,
        kind=str(spec.get("kind", "?")),
        title=str(spec.get("title", folder.name)),
        status=state,
        error=error,
        created=str(spec.get("created") or status.get("created") or ""),
        started=status.get("started"),
        finished=status.get("finished"),
        progress=_progress_of(spec, folder),
        log=Path(spec.get("log") or folder / "log.txt"),
        folder=folder,
        command=list(spec.get("command", [])),
        key=str(spec.get("key", "")),
        extra=dict(spec.get("extra") or {}),
        pid=pid,
    )


def list_jobs(root: Path | None = None) -> list[JobInfo]:
    """Every job, newest first. Never raises because of one damaged folder."""
    root = Path(root or jobs_dir())
    if not root.is_dir():
        return []
    out = [_info(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    return sorted(out, key=lambda j: (j.created, j.job_id), reverse=True)


def active_jobs() -> list[JobInfo]:
    """Queued and running jobs, newest first."""
    return [j for j in list_jobs() if j.active]


def get_job(job_id: str) -> JobInfo:
    """One job by id; an unknown id is a ``JobError`` listing recent ones."""
    folder = jobs_dir() / job_id
    if "/" in job_id or job_id.startswith(".") or not (folder / "job.json").is_file():
        recent = ", ".join(j.job_id for j in list_jobs()[:5])
        raise JobError(
            f"no job {job_id!r} in {jobs_dir()}."
            + (f" Recent jobs: {recent}." if recent else " There are no jobs yet.")
        )
    return _info(folder)


def prune(keep: int = KEEP_FINISHED, root: Path | None = None) -> list[str]:
    """Remove the folders of finished jobs beyond the newest ``keep``; returns the removed job ids.

    Queued and running jobs are never touched. A job's output (a run folder, a store, a scan) lives
    elsewhere and stays; only the job's own folder (its log, status, progress) goes."""
    import shutil

    if keep < 0:
        raise JobError(f"keep must be 0 or more, got {keep}")
    finished = [j for j in list_jobs(root) if not j.active]
    removed = []
    for j in finished[keep:]:
        shutil.rmtree(j.folder, ignore_errors=True)
        removed.append(j.job_id)
    return removed


def _new_id(kind: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(2)}"


def launch(
    command: Sequence[str],
    *,
    kind: str,
    title: str,
    key: str | None = None,
    max_active: int | None = None,
    log: Path | None = None,
    progress_file: Path | None = None,
    cancel_file: Path | None = None,
    cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    then: Sequence[Sequence[str]] = (),
) -> JobInfo:
    """Start ``python <command>`` (then each of ``then`` in turn, while they succeed) as a detached job and
    return its info at once.

    ``key`` identifies identical jobs (default: the command line): a second one is refused while the
    first is queued or running (``JobError`` naming it). ``max_active`` refuses any job while that many
    run (a public deployment's one-at-a-time rule). ``cancel_file`` is the command's own cancel signal
    (a training run's ``cancel``), written on cancel before the command is terminated."""
    command = [str(c) for c in command]
    steps = [command, *([str(c) for c in step] for step in then)]
    key = key or " && ".join(" ".join(step) for step in steps)
    with _launch_lock():  # two sessions clicking at once must not both pass the duplicate check
        return _launch_locked(
            command,
            steps,
            kind=kind,
            title=title,
            key=key,
            max_active=max_active,
            log=log,
            progress_file=progress_file,
            cancel_file=cancel_file,
            cancel_grace_s=cancel_grace_s,
            extra=extra,
            env=env,
        )


@contextlib.contextmanager
def _launch_lock() -> Iterator[None]:
    """An exclusive lock on ``<jobs>/.lock`` (POSIX ``flock``; elsewhere no lock)."""
    root = jobs_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as fh:
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _launch_locked(
    command: list[str],
    steps: list[list[str]],
    *,
    kind: str,
    title: str,
    key: str,
    max_active: int | None,
    log: Path | None,
    progress_file: Path | None,
    cancel_file: Path | None,
    cancel_grace_s: float,
    extra: dict[str, Any] | None,
    env: dict[str, str] | None,
) -> JobInfo:
    prune(KEEP_FINISHED)
    active = active_jobs()
    for j in active:
        if j.key == key:
            raise JobError(
                f"the same job is already {j.status}: {j.job_id} ({j.title}); wait for it or cancel it "
                f"(`asgm jobs cancel {j.job_id}`)"
            )
    if max_active is not None and len(active) >= max_active:
        names = ", ".join(f"{j.job_id} ({j.title})" for j in active)
        raise JobError(
            f"only {max_active} job(s) may run at a time here and {names} is running; wait for it to "
            f"finish or cancel it"
        )
    job_id = _new_id(kind)
    folder = jobs_dir() / job_id
    folder.mkdir(parents=True, exist_ok=False)
    spec = {
        "job_id": job_id,
        "kind": kind,
        "title": title,
        "key": key,
        "command": command,
        "steps": steps,
        "created": now(),
        "log": str(log or folder / "log.txt"),
        "progress_file": str(progress_file) if progress_file else None,
        "cancel_file": str(cancel_file) if cancel_file else None,
        "cancel_grace_s": float(cancel_grace_s),
        "extra": extra or {},
    }
    atomic.write_json(folder / "job.json", spec)
    set_status(folder, "queued", created=spec["created"], pid=None, error=None)
    child_env = {**os.environ, **(env or {})}
    # The supervisor and its command must import this very package even when launched from elsewhere.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p)
    with open(folder / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asgm.jobs.supervisor", str(folder)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=str(PROJECT_ROOT),
            start_new_session=True,
        )
    _CHILDREN[job_id] = proc
    # Not in status.json: the supervisor may already be writing it ("running").
    atomic.write_text(folder / "pid", f"{proc.pid}\n")
    return _info(folder)


def relaunch(job_id: str, max_active: int | None = None) -> JobInfo:
    """Start a failed or cancelled job again with the same commands (fetches resume where they stopped)."""
    old = get_job(job_id)
    if old.active or old.status == "completed":
        raise JobError(f"job {job_id} is {old.status}; only failed or cancelled jobs can be started again")
    spec = read_json(old.folder / "job.json")
    steps = spec.get("steps") or [spec["command"]]

    def path(name: str) -> Path | None:
        return Path(spec[name]) if spec.get(name) else None

    log = path("log")
    return launch(
        steps[0],
        then=steps[1:],
        kind=old.kind,
        title=old.title,
        key=old.key,
        max_active=max_active,
        log=None if log == old.folder / "log.txt" else log,  # a job's own log stays in its own folder
        progress_file=path("progress_file"),
        cancel_file=path("cancel_file"),
        cancel_grace_s=float(spec.get("cancel_grace_s", DEFAULT_CANCEL_GRACE_S)),
        extra=old.extra,
    )


def cancel(job_id: str) -> JobInfo:
    """Ask a queued or running job to stop; returns its info. The supervisor acts within ~0.5 s."""
    info = get_job(job_id)
    if not info.active:
        raise JobError(f"job {job_id} is {info.status}; only queued or running jobs can be cancelled")
    atomic.write_text(info.folder / "cancel", now() + "\n")
    return info


def report_progress(
    done: int | float | None = None,
    total: int | float | None = None,
    message: str | None = None,
    min_interval_s: float = 0.5,
    **fields: Any,
) -> None:
    """Record the progress of the job this process runs in (no-op outside a job). Throttled: at most
    one write per ``min_interval_s`` unless the work is finished or the message changed."""
    folder = os.environ.get(JOB_DIR_ENV)
    if not folder:
        return
    last = _LAST_REPORT
    t = time.monotonic()
    finished = done is not None and total is not None and done >= total
    if not finished and message == last.get("message") and t - last.get("t", -1e9) < min_interval_s:
        return
    last.update(t=t, message=message)
    atomic.write_json(
        Path(folder) / "progress.json", {"done": done, "total": total, "message": message, "updated": now(), **fields}
    )


_LAST_REPORT: dict[str, Any] = {}
