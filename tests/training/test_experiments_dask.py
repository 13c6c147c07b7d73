"""``asgm experiments table1`` rows as Dask tasks on a local cluster of 2 workers."""

from __future__ import annotations

from pathlib import Path

from _engine import toy_store

from asgm.training import experiments


def test_table1_rows_run_as_dask_tasks_in_table_order(data_env):
    from distributed import Client, LocalCluster

    toy_store(data_env / "data" / "stores", name="toy48", n_pos=10, n_neg=12)
    seen = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        out = experiments.run_table1(["toy48"], epochs=1, only=[7, 3], on_row=seen.append, scheduler=client)
        ran_on = {w for w in client.run(lambda: 1)}
    assert len(ran_on) == 2
    assert [r["exp"] for r in out["rows"]] == [3, 7] and len(seen) == 2
    by_exp = {r["exp"]: r for r in out["rows"]}
    assert by_exp[3]["status"] == "completed" and by_exp[3]["f1"] is not None
    assert (Path(data_env) / "models" / by_exp[3]["run_id"] / "model.keras").is_file()
    assert by_exp[7]["status"] == "skipped" and "256" in by_exp[7]["reason"]
    assert Path(out["path"]).is_file()
