"""Dask ``distributed`` clients for work that scales out: region-scan tiles (``asgm.scan``) and Table 1's
runs (``asgm.training.experiments``). A LocalCluster on this machine, or a real scheduler started with
``dask scheduler`` / ``dask worker`` (docs/scan.md)."""

from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

from asgm.errors import AsgmError


class ClusterError(AsgmError):
    """The Dask scheduler cannot be reached or used; the message says how to start one."""


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` local worker processes may give TensorFlow/BLAS: the cores shared out,
    at least 1 (more would oversubscribe the cores: the workers run their tiles at the same time)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def worker_env(workers: int, cores: int | None = None) -> dict[str, str]:
    """Environment of local worker processes: TensorFlow's intra-op and OpenMP threads set to
    ``worker_threads`` (read by TensorFlow when it starts in the worker), one inter-op thread (a tile's
    forward pass is one op chain)."""
    n = str(worker_threads(workers, cores))
    return {
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": n,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


#: Dask settings of local worker processes: the statistical profiler off (it samples every thread's
#: stack 100 times a second; the tiles need the CPU, nobody reads the profile of a scan).
WORKER_CONFIG: dict[str, Any] = {"distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """``__main__`` replaced by an empty module while worker processes are spawned."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class dask_client:
    """Context manager giving a ``distributed.Client`` for ``scheduler``: None (no Dask: yields None),
    ``"local"`` (a LocalCluster of ``workers`` worker processes, one task at a time each, TensorFlow
    threads per ``worker_env``), a ``tcp://host:8786`` address,
    or an existing Client (left open)."""

    def __init__(self, scheduler: Any, workers: int = 2, processes: bool = True):
        self.scheduler, self.workers, self.processes = scheduler, workers, processes
        self._own: list[Any] = []

    def __enter__(self) -> Any:
        if self.scheduler is None:
            return None
        if not isinstance(self.scheduler, str):
            return self.scheduler
        from distributed import Client, LocalCluster

        if self.scheduler == "local":
            import dask

            kw: dict[str, Any] = {"env": worker_env(self.workers)} if self.processes else {}
            # Nannies hand the config they are created under to their worker processes (after the
            # environment, so this cannot go as an environment variable).
            # Worker processes are spawned, and spawn re-runs the parent's ``__main__`` file in each. Under
            # Streamlit (and AppTest) that module is a page script, which must not run in a worker.
            with dask.config.set(WORKER_CONFIG), _bare_main():
                cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=self.processes, dashboard_address=None, **kw
                )
            client = Client(cluster)
            self._own = [client, cluster]
            return client
        try:
            client = Client(self.scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.scheduler} ({type(exc).__name__}); start one "
                "with `dask scheduler` and workers with `dask worker tcp://HOST:8786` (docs/scan.md, "
                "'Scaling out with Dask')"
            ) from None
        self._own = [client]
        return client

    def __exit__(self, *exc: object) -> None:
        for thing in self._own:
            thing.close()
