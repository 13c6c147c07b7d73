"""What the job runner costs: time from ``jobs.launch`` to the command running and to the job's end state,
and the memory of the supervisor process, beside same-run references (a bare ``python -c pass`` started
with subprocess, and that interpreter's RSS).

Usage: ``python benchmarks/job_overhead.py [--n 10]`` (uses a temporary ASGM_DATA_DIR).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10, help="jobs to start (default 10)")
    args = ap.parse_args()
    os.environ["ASGM_DATA_DIR"] = tempfile.mkdtemp(prefix="asgm-jobs-bench-")
    from asgm.jobs import runner as jobs
    from asgm.jobs import supervisor

    jobs.list_jobs()  # warm-up: the first listing imports the run store (pandas)
    bare, to_running, to_done, sup_rss, ref_rss = [], [], [], [], []
    for _ in range(args.n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        job = jobs.launch(["-c", "import time; time.sleep(1.0)"], kind="bench", title="sleep 1 s")
        while jobs.get_job(job.job_id).status != "running":
            time.sleep(0.005)
        t_run = time.perf_counter()
        to_running.append(t_run - t0)
        sup_rss.append(rss_mb(jobs.get_job(job.job_id).pid))
        ref = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
        time.sleep(0.3)
        ref_rss.append(rss_mb(ref.pid))
        ref.wait()
        while jobs.get_job(job.job_id).active:
            time.sleep(0.005)
        to_done.append(time.perf_counter() - t_run - 1.0)
    med = statistics.median
    print(f"jobs: {args.n}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"launch -> running: median {med(to_running) * 1000:.0f} ms (bare `python -c pass`: {med(bare) * 1000:.0f} ms, "
        f"ratio {med(to_running) / med(bare):.1f}x)"
    )
    print(
        f"running -> ended for a 1 s command: median {med(to_done) * 1000:.0f} ms beyond the 1 s (includes the "
        f"command's own interpreter start; supervisor poll interval {supervisor.POLL_S * 1000:.0f} ms)"
    )
    print(
        f"supervisor RSS: median {med(sup_rss):.1f} MB (bare interpreter: {med(ref_rss):.1f} MB, "
        f"ratio {med(sup_rss) / med(ref_rss):.1f}x)"
    )


if __name__ == "__main__":
    main()
