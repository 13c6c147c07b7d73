"""Dask ``distributed`` clients for work that scales out: region-scan tiles (``asgm.scan``) and Table 1's
runs (``asgm.experiments``). A LocalCluster on this machine, or a real scheduler started with
``dask scheduler`` / ``dask worker`` (docs/scan.md)."""

from __future__ import annotations

from typing import Any

from asgm.errors import AsgmError


class ClusterError(AsgmError):
    """The Dask scheduler cannot be reached or used; the message says how to start one."""


class dask_client:
    """Context manager giving a ``distributed.Client`` for ``scheduler``: None (no Dask: yields None),
    ``"local"`` (a LocalCluster of ``workers`` single-threaded workers), a ``tcp://host:8786`` address,
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
            # One thread per worker, and one TensorFlow thread each: workers are the parallelism.
            env = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
            kw: dict[str, Any] = {"env": env} if self.processes else {}
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                                   dashboard_address=None, **kw)
            client = Client(cluster)
            self._own = [client, cluster]
            return client
        try:
            client = Client(self.scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.scheduler} ({type(exc).__name__}); start one "
                               "with `dask scheduler` and workers with `dask worker tcp://HOST:8786` (docs/scan.md, "
                               "'Scaling out with Dask')") from None
        self._own = [client]
        return client

    def __exit__(self, *exc: object) -> None:
        for thing in self._own:
            thing.close()
