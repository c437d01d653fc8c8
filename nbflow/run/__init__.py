"""Execution: a run prepared (`prepare`), driven by the one scheduling loop (`loop`) through an executor (`jobs`,
`executors`: `local`, `dask`), from start to end (`start`); the dry run (`plan`)."""
