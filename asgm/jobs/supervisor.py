"""The supervisor of one background job (``python -m asgm.jobs.supervisor FOLDER``, started by
``asgm.jobs.runner.launch``): it runs the job's commands one after another as its children, writes
``status.json`` and acts on a cancel request. The job folder's layout: ``asgm.jobs.runner``.

The supervisor is started in its own session, so a job outlives page reloads and app restarts. A
cancel is seen by the supervisor within half a second: it writes the command's own cancel file when
it has one (training stops cleanly after the current batch) and otherwise, or after a grace period,
terminates the command. A job whose supervisor died without writing an end state (``kill -9``, out
of memory, reboot) is reported ``failed`` with an error starting "crashed". The child dies with its
supervisor (Linux parent-death signal), so a crash leaves no orphan behind.

No third-party imports: the supervisor starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asgm import atomic
from asgm.config import PROJECT_ROOT

#: Environment variable naming the job folder, set for the command so ``report_progress`` finds it.
JOB_DIR_ENV = "ASGM_JOB_DIR"
POLL_S = 0.5
#: Seconds a command with its own cancel file gets to stop by itself before it is terminated.
DEFAULT_CANCEL_GRACE_S = 60.0


def now() -> str:
    """UTC time in ISO form; milliseconds so that jobs launched within one second keep their order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_json(path: Path) -> dict[str, Any]:
    """A job file's JSON object; {} when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def set_status(folder: Path, status: str, **fields: Any) -> None:
    """Merge ``fields`` and ``status`` into the job's ``status.json`` (atomically), stamped with the time."""
    current = read_json(folder / "status.json")
    current.update(fields, status=status, updated=now())
    atomic.write_json(folder / "status.json", current)


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (non-zombie) process."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{int(pid)}/stat")
    try:
        # Field 3 is the state; 'Z' is a zombie (finished, not yet reaped by its parent).
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies (Linux), so no orphan is left."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _last_line(log: Path) -> str:
    """The last non-empty log line (the CLI's one-line error), progress-bar carriage returns removed."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [seg.strip() for line in text.splitlines() for seg in line.split("\r")[-1:] if seg.strip()]
    return lines[-1][:500] if lines else ""


def _run_step(
    folder: Path, spec: dict[str, Any], step: list[str], log: Path, cancel_file: Path | None, index: int
) -> int:
    """Run one command of the job to its end, acting on a cancel request; returns its exit status."""
    env = {**os.environ, JOB_DIR_ENV: str(folder), "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        out.write(f"[{now()}] job {folder.name} step {index + 1}: python {' '.join(step)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, *step],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(PROJECT_ROOT),
            preexec_fn=_die_with_parent,
        )
    set_status(
        folder,
        "running",
        pid=os.getpid(),
        child_pid=proc.pid,
        step=index + 1,
        **({"started": now()} if index == 0 else {}),
    )
    cancelled_at: float | None = None
    terminated = False
    while True:
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            pass
        if cancelled_at is None and (folder / "cancel").exists():
            cancelled_at = time.monotonic()
            if cancel_file is not None:
                atomic.write_text(cancel_file, now() + "\n")  # the command stops itself cleanly
            else:
                proc.terminate()
                terminated = True
        elif (
            cancelled_at is not None
            and not terminated
            and time.monotonic() - cancelled_at > float(spec.get("cancel_grace_s", DEFAULT_CANCEL_GRACE_S))
        ):
            proc.terminate()
            terminated = True
        elif terminated and cancelled_at is not None and time.monotonic() - cancelled_at > 30:
            proc.kill()


def supervise(folder: Path) -> int:
    """Run the job in ``folder`` to its end state (the body of ``python -m asgm.jobs.supervisor FOLDER``)."""
    spec = read_json(folder / "job.json")
    log = Path(spec["log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    cancel_file = Path(spec["cancel_file"]) if spec.get("cancel_file") else None
    if (folder / "cancel").exists():
        set_status(folder, "cancelled", finished=now(), error="cancelled before it started")
        return 0
    code = 0
    for i, step in enumerate(spec.get("steps") or [spec["command"]]):
        code = _run_step(folder, spec, step, log, cancel_file, i)
        if code != 0 or (folder / "cancel").exists():
            break
    cancelled = (folder / "cancel").exists() or (cancel_file is not None and cancel_file.exists())
    if cancelled:
        set_status(folder, "cancelled", finished=now(), returncode=code, error="cancelled on request")
    elif code == 0:
        set_status(folder, "completed", finished=now(), returncode=code, error=None)
    else:
        why = _last_line(log) or f"the command exited with status {code}"
        set_status(folder, "failed", finished=now(), returncode=code, error=why)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2:
        sys.exit(supervise(Path(sys.argv[1])))
    print("usage: python -m asgm.jobs.supervisor JOB_FOLDER", file=sys.stderr)
    sys.exit(2)
