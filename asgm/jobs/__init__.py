"""Background work: the one job runner (a supervisor process per job), every job command, the Dask client.

May import: the shared base (config, errors, atomic, net, grid, registry).
"""
