"""Background work: the one job runner (runner; a supervisor process per job: supervisor), every job command,
the Dask client.

May import: the shared base (config, errors, atomic, net, grid, registry).
"""
