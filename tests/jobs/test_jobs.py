"""The job runner with real subprocesses running tiny commands: end states, progress, the one-line
error, cancel (terminate, and the command's own cancel file), kill -9 -> crashed, duplicates refused,
and ``asgm jobs list/cancel``."""

from __future__ import annotations

import json
import os
import signal

import pytest
from _engine import wait_until

from asgm.cli import main as cli_main
from asgm.jobs import runner as jobs
from asgm.jobs.supervisor import pid_alive


def _wait(pred, timeout=60.0):
    return wait_until(pred, timeout, step=0.1)


def _finished(job_id):
    return _wait(lambda: (lambda j: j if not j.active else None)(jobs.get_job(job_id)))


def _py(code: str) -> list[str]:
    return ["-c", code]


SLEEPER = "import time\nwhile True: time.sleep(0.05)"


def test_completed_job_reports_progress_and_log(data_env):
    code = (
        "from asgm.jobs.runner import report_progress\nfor i in range(1, 4): report_progress(i, 3, 'step')\n"
        "print('all done')"
    )
    job = jobs.launch(_py(code), kind="test", title="three steps")
    assert job.status in ("queued", "running") and job.pid
    done = _finished(job.job_id)
    assert done.status == "completed", (done.error, done.log_tail())
    assert done.progress["done"] == 3 and done.fraction == 1.0 and "all done" in done.log_tail()
    assert done.started and done.finished


def test_failed_job_keeps_the_one_line_error(data_env):
    code = "import sys\nprint('progress 10%\\rasgm patches: no scene covers the point; widen the dates', file=sys.stderr)\nsys.exit(1)"  # noqa: E501
    done = _finished(jobs.launch(_py(code), kind="test", title="fails").job_id)
    assert done.status == "failed" and done.error == "asgm patches: no scene covers the point; widen the dates"


def test_cancel_terminates_the_command(data_env):
    job = jobs.launch(_py(SLEEPER), kind="test", title="sleeper")
    running = _wait(lambda: (lambda j: j if j.status == "running" else None)(jobs.get_job(job.job_id)))
    child = json.loads((running.folder / "status.json").read_text())["child_pid"]
    assert pid_alive(child)
    jobs.cancel(job.job_id)
    done = _finished(job.job_id)
    assert done.status == "cancelled"
    _wait(lambda: not pid_alive(child))
    with pytest.raises(jobs.JobError, match="only queued or running"):
        jobs.cancel(job.job_id)


def test_cancel_uses_the_commands_own_cancel_file_first(data_env, tmp_path):
    flag = tmp_path / "cancel-me"
    code = (
        f"import pathlib, time\nwhile not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.05)\n"
        "print('stopped cleanly')"
    )
    job = jobs.launch(_py(code), kind="test", title="polite", cancel_file=flag)
    _wait(lambda: jobs.get_job(job.job_id).status == "running")
    jobs.cancel(job.job_id)
    done = _finished(job.job_id)
    assert done.status == "cancelled" and flag.exists() and "stopped cleanly" in done.log_tail()
    assert json.loads((done.folder / "status.json").read_text())["returncode"] == 0  # not terminated


def test_kill_9_of_the_job_is_reported_crashed_and_leaves_no_orphan(data_env):
    job = jobs.launch(_py(SLEEPER), kind="test", title="victim")
    running = _wait(lambda: (lambda j: j if j.status == "running" else None)(jobs.get_job(job.job_id)))
    child = json.loads((running.folder / "status.json").read_text())["child_pid"]
    os.kill(running.pid, signal.SIGKILL)
    crashed = _wait(lambda: (lambda j: j if not j.active else None)(jobs.get_job(job.job_id)))
    assert crashed.status == "failed" and crashed.error.startswith("crashed") and str(running.pid) in crashed.error
    _wait(lambda: not pid_alive(child))


def test_identical_job_refused_naming_the_running_one_and_job_limit(data_env):
    first = jobs.launch(_py(SLEEPER), kind="test", title="the first")
    try:
        with pytest.raises(jobs.JobError, match=f"already .*{first.job_id} \\(the first\\)"):
            jobs.launch(_py(SLEEPER), kind="test", title="again")
        with pytest.raises(jobs.JobError, match="only 1 job"):
            jobs.launch(_py("pass"), kind="test", title="other", max_active=1)
        other = jobs.launch(_py("pass"), kind="test", title="other")  # no limit: runs beside it
        assert _finished(other.job_id).status == "completed"
    finally:
        jobs.cancel(first.job_id)
    assert _finished(first.job_id).status == "cancelled"
    again = jobs.launch(_py("pass"), kind="test", title="after", key=first.key)  # allowed once it ended
    assert _finished(again.job_id).status == "completed"


def test_cli_lists_and_cancels(data_env, capsys):
    job = jobs.launch(_py(SLEEPER), kind="test", title="for the cli")
    assert cli_main(["jobs", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["job_id"] for r in rows] == [job.job_id] and rows[0]["title"] == "for the cli"
    assert cli_main(["jobs", "cancel", job.job_id]) == 0
    assert f"cancel requested for job {job.job_id}" in capsys.readouterr().out
    assert _finished(job.job_id).status == "cancelled"
    assert cli_main(["jobs", "cancel", "nope"]) == 1
    assert "no job 'nope'" in capsys.readouterr().err
    assert cli_main(["jobs", "list", "--active", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_steps_run_in_turn_and_stop_at_the_first_failure(data_env, tmp_path):
    mark = tmp_path / "second-ran"
    ok = jobs.launch(_py("print('one')"), kind="test", title="two steps", then=[_py(f"open({str(mark)!r}, 'w')")])
    assert _finished(ok.job_id).status == "completed" and mark.exists()
    mark.unlink()
    bad = jobs.launch(
        _py("import sys; print('asgm osm: step one broke'); sys.exit(1)"),
        kind="test",
        title="broken",
        then=[_py(f"open({str(mark)!r}, 'w')")],
    )
    done = _finished(bad.job_id)
    assert done.status == "failed" and done.error == "asgm osm: step one broke" and not mark.exists()


def test_a_failed_job_can_be_started_again_with_the_same_commands(data_env, tmp_path):
    flag = tmp_path / "second-try"
    code = (
        f"import pathlib, sys\np = pathlib.Path({str(flag)!r})\nif not p.exists():\n    p.write_text('x')\n"
        "    print('asgm patches: network cut'); sys.exit(1)\nprint('resumed')"
    )
    first = _finished(jobs.launch(_py(code), kind="patches", title="flaky").job_id)
    assert first.status == "failed" and first.error == "asgm patches: network cut"
    with pytest.raises(jobs.JobError, match="only failed or cancelled"):
        jobs.relaunch(_finished(jobs.launch(_py("pass"), kind="test", title="fine").job_id).job_id)
    again = _finished(jobs.relaunch(first.job_id).job_id)
    assert again.status == "completed" and again.title == "flaky" and again.job_id != first.job_id
    assert again.log != first.log and again.log_tail().endswith("resumed\n") and first.job_id not in again.log_tail()


def test_identical_launches_at_the_same_moment_start_one_job(data_env):
    import threading

    results: list[object] = []

    def go() -> None:
        try:
            results.append(jobs.launch(_py(SLEEPER), kind="test", title="racer"))
        except jobs.JobError as exc:
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results if isinstance(r, jobs.JobInfo)]
    assert len(started) == 1 and sum(isinstance(r, jobs.JobError) for r in results) == 3
    jobs.cancel(started[0].job_id)
    assert _finished(started[0].job_id).status == "cancelled"


def test_old_finished_jobs_are_pruned_running_ones_never(data_env, monkeypatch, capsys):
    quick = [jobs.launch(_py(f"print({i})"), kind="test", title=f"quick {i}") for i in range(3)]
    for j in quick:
        _finished(j.job_id)
    running = jobs.launch(_py(SLEEPER), kind="test", title="sleeper")
    # Launching with room for one finished job removes the two older ones, not the running sleeper.
    monkeypatch.setattr(jobs, "KEEP_FINISHED", 1)
    fourth = jobs.launch(_py("print(4)"), kind="test", title="quick 4")
    left = {j.job_id for j in jobs.list_jobs()}
    assert left == {quick[2].job_id, running.job_id, fourth.job_id}
    assert not quick[0].folder.exists() and not quick[1].folder.exists()
    _finished(fourth.job_id)
    assert cli_main(["jobs", "prune", "--keep", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["removed"]) == sorted([quick[2].job_id, fourth.job_id])
    assert [j.job_id for j in jobs.list_jobs()] == [running.job_id]
    jobs.cancel(running.job_id)
    _finished(running.job_id)
